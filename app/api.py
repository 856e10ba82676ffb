"""The /analyze routes: parse and validate, run the analysis, render JSON or the report."""

import time
from collections import Counter
from typing import Annotated

import structlog
from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from opentelemetry import trace

from app import metrics, report
from app.analysis import Analysis, evaluation_time, run_analysis
from app.models import (
    BUILTIN,
    AnalysisQuery,
    AnalysisRequest,
    AnalysisResponse,
    ErrorResponse,
    RequestModels,
    Statistics,
    preset_problem,
)
from app.negotiation import wants_html
from app.presets import Preset
from app.prometheus import PrometheusClient, PrometheusError
from app.responses import analysis_response
from app.settings import Settings
from app.tenancy.admission import Admitted, admit

AUDIT_LOGGER = "canary_analyzer.audit"
audit = structlog.get_logger(AUDIT_LOGGER)
tracer = trace.get_tracer(__name__)

# The report is a page of its own: no script, no fetch, styles only from this server.
HTML_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Vary": "Accept",
}
HTML_CONTENT = {"text/html": {"schema": {"type": "string"}}}


def error_response(description: str, html: bool = False) -> dict:
    """An answer in the OpenAPI: the JSON error body, and the report's HTML page where a person may get it."""
    return {"model": ErrorResponse, "description": description, **({"content": HTML_CONTENT} if html else {})}


# What any route may answer, whatever it does: refusals at the edge (app/limits.py, uvicorn, routing) and the
# last-resort 500. Each is the JSON error body, whatever the Accept header asked.
EDGE_RESPONSES: dict[int | str, dict] = {
    400: error_response("Not HTTP, or a body that could not be read as JSON text."),
    405: error_response("The path does not take this method; `Allow` lists those it does."),
    408: error_response("Headers or body slower than HEADER_TIMEOUT_SECONDS / BODY_TIMEOUT_SECONDS; closed."),
    413: error_response("A body larger than MAX_BODY_BYTES; the connection is closed."),
    414: error_response("A query string longer than MAX_QUERY_BYTES."),
    422: error_response("More query parameters than MAX_QUERY_PARAMETERS."),
    500: error_response("An unexpected error; `trace_id` leads to its log line."),
    503: error_response("More connections than MAX_CONNECTIONS; the connection is closed."),
}
INVALID = "Invalid input (or more query parameters than MAX_QUERY_PARAMETERS); nothing was queried."
# With TENANCY on (app/tenancy/): always the JSON error body, the report's too.
REFUSED: dict[int | str, dict] = {
    401: error_response("TENANCY on: no credential, or one not valid here; `WWW-Authenticate: Bearer`."),
    403: error_response("TENANCY on: the credential does not cover the service in that namespace."),
}
UNMEASURED = "Prometheus could not be queried (Argo counts an Error and retries), or more connections than allowed."


def router(models: RequestModels = BUILTIN) -> APIRouter:
    """The /analyze routes for a set of checks: their request models carry a field per check limit.

    (This module does without `from __future__ import annotations`: FastAPI must read the parameter
    types below as classes, and they are this function's locals.)"""
    routes = APIRouter()
    query_model, request_model = models.query, models.request

    @routes.get(
        "/analyze",
        response_model=AnalysisResponse,
        responses={
            200: {"content": HTML_CONTENT, "description": "JSON, or the report"},
            **REFUSED,
            422: error_response(INVALID, html=True),
            503: error_response(UNMEASURED, html=True),
        },
    )
    async def analyze_get(request: Request, params: Annotated[query_model, Query()]) -> Response:  # type: ignore[valid-type]
        """Judge a canary against its stable; the inputs come in the query string.

        JSON unless the caller prefers HTML (`Accept: text/html` ranked above JSON, or `format=html`).
        """
        _refuse_repeated_parameters(request)
        analysis_request = params.analysis_request()
        if wants_html(request.headers.get("accept"), params.format):
            return await _report(request, analysis_request, params)
        response = await _json(request, analysis_request)
        response.headers["Vary"] = "Accept"
        return response

    @routes.post(
        "/analyze",
        response_model=AnalysisResponse,
        responses={**REFUSED, 422: error_response(INVALID), 503: error_response(UNMEASURED)},
    )
    async def analyze_post(request: Request, body: request_model) -> Response:  # type: ignore[valid-type]
        """Judge a canary against its stable; the inputs come as a JSON body (Argo's `jsonBody`)."""
        return await _json(request, body)

    return routes


def _refuse_repeated_parameters(request: Request) -> None:
    """`service=a&service=b` would be judged on one of the two, silently: refuse it instead."""
    counts = Counter(key for key, _ in request.query_params.multi_items())
    repeated = [key for key, count in counts.items() if count > 1]
    if repeated:
        raise RequestValidationError(
            [
                {"loc": ("query", key), "msg": "given more than once", "type": "repeated", "input": None}
                for key in repeated
            ]
        )


async def _json(request: Request, analysis_request: AnalysisRequest) -> Response:
    try:
        _, body, _ = await _judge(request, analysis_request)
    except PrometheusError as exc:
        problem = ErrorResponse(
            error="prometheus_unavailable", cause=exc.cause, detail=exc.detail, trace_id=request.state.trace_id
        )
        return JSONResponse(problem.model_dump(mode="json"), status_code=503)
    # pydantic's own serializer: a third of the time of a dict through json.dumps
    return Response(body.model_dump_json(), media_type="application/json")


async def _report(request: Request, analysis_request: AnalysisRequest, params: AnalysisQuery) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    trace_id: str = request.state.trace_id
    form = {k: str(v) for k, v in params.model_dump(mode="json", exclude_none=True).items()}
    try:
        analysis, body, client = await _judge(request, analysis_request)
    except PrometheusError as exc:
        page = report.render_problem(
            503, "Prometheus could not be queried", [f"{exc.cause}: {exc.detail}"], form, trace_id
        )
        return HTMLResponse(page, status_code=503, headers=HTML_HEADERS)
    history = await report.fetch_history(analysis, client, params.lookback, settings.analysis_timeout_seconds)
    judged = report.judged_history(analysis, history)
    charts = report.check_charts(analysis, body, history, judged)
    page = report.render_report(body, charts, history, report.verdict_strip(judged, history), params.lookback, form)
    return HTMLResponse(page, headers=HTML_HEADERS)


async def _judge(
    request: Request, analysis_request: AnalysisRequest
) -> tuple[Analysis, AnalysisResponse, PrometheusClient]:
    """Runs the analysis and builds its answer, counting and auditing it; with the client it was
    measured through (the caller's backend tenant), for any further query about it. Raises
    PrometheusError when it cannot measure, and Refused when the caller may not ask this."""
    settings: Settings = request.app.state.settings
    admitted = _admitted(request, analysis_request, settings)
    analysis_request = analysis_request.model_copy(update={"namespace": admitted.namespace})
    client: PrometheusClient = request.app.state.prometheus.for_tenant(admitted.tenant)
    inputs = analysis_request.model_dump(mode="json", exclude_none=True)
    preset = _preset(analysis_request, settings)
    at = evaluation_time(analysis_request, settings.evaluation_resolution_seconds)

    async def analyzed() -> tuple[Analysis, AnalysisResponse]:
        analysis = await run_analysis(
            analysis_request, client, preset, settings.analysis_timeout_seconds, at, request.app.state.canary_lives
        )
        return analysis, analysis_response(analysis, settings)

    started = time.perf_counter()
    with tracer.start_as_current_span("analysis") as span:
        span.set_attributes({f"canary.{key}": str(value) for key, value in inputs.items()})
        try:
            # The request names the preset, and the settings are the same for every caller.
            (analysis, answer), shared = await request.app.state.analyses.run((analysis_request, at), analyzed)
        except PrometheusError as exc:
            seconds = time.perf_counter() - started
            metrics.record_error(analysis_request.namespace, analysis_request.service, seconds)
            audit.warning(
                "analysis", inputs=inputs, verdict=None, cause=exc.cause, detail=exc.detail, total_ms=_ms(seconds)
            )
            span.set_status(trace.StatusCode.ERROR, str(exc))
            raise
        span.set_attributes({"canary.verdict": analysis.judgment.verdict, "canary.shared": shared})
    body = answer.model_copy(update={"trace_id": request.state.trace_id})
    request.state.verdict = body.verdict.value  # for the request's access line
    seconds = time.perf_counter() - started
    metrics.record_analysis(body, analysis_request.namespace, seconds)
    _audit(body, inputs, analysis.prometheus_seconds, seconds, shared, admitted.who)
    return analysis, body, client


def _admitted(request: Request, analysis_request: AnalysisRequest, settings: Settings) -> Admitted:
    grants = getattr(request.state, "grants", None) if settings.tenancy else None
    namespace, service = analysis_request.namespace, analysis_request.service
    try:
        return admit(namespace, service, grants, settings.tenants, analysis_request.selects_namespace)
    except ValueError as exc:
        raise RequestValidationError(
            [{"loc": ("namespace",), "msg": str(exc), "type": "missing", "input": None}]
        ) from None


def _preset(analysis_request: AnalysisRequest, settings: Settings) -> Preset:
    """The request's preset, or the service's; an empty stable only where the preset allows it."""
    preset = settings.preset(analysis_request.preset)
    problem = preset_problem(analysis_request, preset)
    if problem:
        raise RequestValidationError([{"loc": ("stable",), "msg": problem, "type": "value_error", "input": ""}])
    return preset


def _audit(
    body: AnalysisResponse, inputs: dict, prometheus_seconds: float, seconds: float, shared: bool, who: str | None
) -> None:
    audit.info(
        "analysis",
        caller=who,  # whose credential (its name, never the token); None with tenancy off
        inputs=inputs,
        verdict=body.verdict,
        reason=body.reasons[0],
        checks=[
            {
                "name": check.name,
                "verdict": check.verdict,
                "canary": check.canary,
                "stable": check.stable,
                "threshold": check.threshold,
                # What decided: the data judged as a whole, or a recent span of the canary's life (since when).
                **(_decided_on(check.statistics) if check.statistics else {}),
            }
            for check in body.checks
        ],
        prometheus_ms=_ms(prometheus_seconds),
        total_ms=_ms(seconds),
        shared=shared,  # joined an identical analysis already in flight: its queries, not new ones
    )


def _decided_on(statistics: Statistics) -> dict:
    return statistics.model_dump(mode="json", include={"scope", "since", "span"})  # as the answer writes them


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)
