"""The /analyze routes: parse and validate, run the analysis, render the answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from app.analysis import run_analysis
from app.models import AnalysisRequest, AnalysisResponse, ErrorResponse
from app.prometheus import PrometheusClient, PrometheusError
from app.responses import analysis_response
from app.settings import Settings

router = APIRouter()

ERROR_RESPONSES: dict[int | str, dict] = {
    422: {"model": ErrorResponse, "description": "Invalid input; nothing was queried."},
    503: {
        "model": ErrorResponse,
        "description": "Prometheus could not be queried; Argo counts an Error and retries.",
    },
}


@router.get("/analyze", response_model=AnalysisResponse, responses=ERROR_RESPONSES)
async def analyze_get(request: Request, params: Annotated[AnalysisRequest, Query()]) -> JSONResponse:
    """Judge a canary against its stable; the inputs come in the query string."""
    return await _analyze(request, params)


@router.post("/analyze", response_model=AnalysisResponse, responses=ERROR_RESPONSES)
async def analyze_post(request: Request, body: AnalysisRequest) -> JSONResponse:
    """Judge a canary against its stable; the inputs come as a JSON body (Argo's `jsonBody`)."""
    return await _analyze(request, body)


async def _analyze(request: Request, analysis_request: AnalysisRequest) -> JSONResponse:
    settings: Settings = request.app.state.settings
    client: PrometheusClient = request.app.state.prometheus
    trace_id = getattr(request.state, "trace_id", None)
    try:
        analysis = await run_analysis(analysis_request, client, settings.conventions, settings.analysis_timeout_seconds)
    except PrometheusError as exc:
        return prometheus_unavailable(exc, trace_id)
    body = analysis_response(analysis, settings, trace_id)
    return JSONResponse(body.model_dump(mode="json"))


def prometheus_unavailable(exc: PrometheusError, trace_id: str | None) -> JSONResponse:
    body = ErrorResponse(error="prometheus_unavailable", cause=exc.cause, detail=exc.detail, trace_id=trace_id)
    return JSONResponse(body.model_dump(mode="json"), status_code=503)
