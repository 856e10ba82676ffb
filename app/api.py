"""The /analyze routes: parse and validate, run the analysis, render the answer."""

from __future__ import annotations

import time
from typing import Annotated

import structlog
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from opentelemetry import trace

from app import metrics
from app.analysis import Analysis, run_analysis
from app.models import AnalysisRequest, AnalysisResponse, ErrorResponse
from app.prometheus import PrometheusClient, PrometheusError
from app.responses import analysis_response, finite_or_none
from app.settings import Settings

router = APIRouter()
audit = structlog.get_logger("canary_analyzer.audit")
tracer = trace.get_tracer(__name__)

ERROR_RESPONSES: dict[int | str, dict] = {
    422: {"model": ErrorResponse, "description": "Invalid input; nothing was queried."},
    503: {"model": ErrorResponse, "description": "Prometheus could not be queried; Argo counts an Error and retries."},
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
    trace_id: str = request.state.trace_id
    inputs = analysis_request.model_dump(exclude_none=True)
    started = time.perf_counter()
    with tracer.start_as_current_span("analysis") as span:
        span.set_attributes({f"canary.{key}": str(value) for key, value in inputs.items()})
        try:
            analysis = await run_analysis(
                analysis_request, client, settings.conventions, settings.analysis_timeout_seconds
            )
        except PrometheusError as exc:
            seconds = time.perf_counter() - started
            metrics.record_analysis("error", analysis_request.service, seconds)
            audit.warning(
                "analysis", inputs=inputs, verdict=None, cause=exc.cause, detail=exc.detail, total_ms=_ms(seconds)
            )
            span.set_status(trace.StatusCode.ERROR, str(exc))
            body = ErrorResponse(error="prometheus_unavailable", cause=exc.cause, detail=exc.detail, trace_id=trace_id)
            return JSONResponse(body.model_dump(mode="json"), status_code=503)
        span.set_attribute("canary.verdict", analysis.judgment.verdict)
    seconds = time.perf_counter() - started
    metrics.record_analysis(analysis.judgment.verdict, analysis_request.service, seconds)
    _audit(analysis, inputs, seconds)
    return JSONResponse(analysis_response(analysis, settings, trace_id).model_dump(mode="json"))


def _audit(analysis: Analysis, inputs: dict, seconds: float) -> None:
    audit.info(
        "analysis",
        inputs=inputs,
        verdict=analysis.judgment.verdict,
        reason=analysis.judgment.reasons[0],
        checks=[
            {
                "name": check.spec.name,
                "verdict": check.outcome,
                "canary": finite_or_none(check.canary),
                "stable": finite_or_none(check.stable),
                "threshold": finite_or_none(check.threshold),
            }
            for check in analysis.judgment.checks
        ],
        prometheus_ms=_ms(analysis.prometheus_seconds),
        total_ms=_ms(seconds),
    )


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)
