"""Kubernetes probes, Prometheus' state, and the /metrics endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from app.prometheus import PrometheusClient, PrometheusError

# Under the readiness probe's 3 s timeout, and a deadline: the client gives up however Prometheus trickles.
PROMETHEUS_CHECK_SECONDS = 2.0

router = APIRouter(tags=["operations"])


@router.get("/health/live")
async def live() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok"}


@router.get("/health/startup")
async def startup(request: Request) -> JSONResponse:
    """Settings were valid and the Prometheus client exists."""
    started = _client(request) is not None
    return JSONResponse({"status": "started" if started else "starting"}, status_code=200 if started else 503)


@router.get("/health/ready")
async def ready(request: Request) -> JSONResponse:
    """The analyzer can serve analyses. Prometheus' state is no part of it: with every pod unready while
    Prometheus is down, Argo would get "connection refused" instead of a 503 naming the cause, and taking pods
    out of the Service brings no Prometheus back. /health/prometheus tells that state."""
    if _client(request) is None:
        return JSONResponse({"status": "starting"}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get("/health/prometheus")
async def prometheus(request: Request) -> JSONResponse:
    """Prometheus answers a trivial query within 2 s; 503 with the cause otherwise."""
    client = _client(request)
    if client is None:
        return JSONResponse({"status": "starting"}, status_code=503)
    tenants = request.app.state.settings.tenants
    if tenants:
        # Mimir answers nobody without a tenant; `1` reads no tenant's data, so any one will do.
        client = client.for_tenant(min(tenants.values()))
    try:
        await client.ready(PROMETHEUS_CHECK_SECONDS)
    except PrometheusError as exc:
        return JSONResponse({"status": "unavailable", "cause": exc.cause, "detail": exc.detail}, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def _client(request: Request) -> PrometheusClient | None:
    return getattr(request.app.state, "prometheus", None)
