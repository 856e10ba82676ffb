"""Kubernetes probes and the /metrics endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from app.prometheus import PrometheusClient, PrometheusError

READY_TIMEOUT_SECONDS = 2.0

router = APIRouter(tags=["operations"])


@router.get("/health/live")
async def live() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok"}


@router.get("/health/startup")
async def startup(request: Request) -> JSONResponse:
    """Settings were valid and the Prometheus client exists."""
    started = getattr(request.app.state, "prometheus", None) is not None
    return JSONResponse({"status": "started" if started else "starting"}, status_code=200 if started else 503)


@router.get("/health/ready")
async def ready(request: Request) -> JSONResponse:
    """Prometheus answers a trivial query within a short timeout."""
    client: PrometheusClient = request.app.state.prometheus
    try:
        await client.ready(READY_TIMEOUT_SECONDS)
    except PrometheusError as exc:
        return JSONResponse({"status": "unavailable", "cause": exc.cause, "detail": exc.detail}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
