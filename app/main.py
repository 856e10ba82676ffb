"""The ASGI application: `uvicorn app.main:app`."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from http import HTTPStatus

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from opentelemetry.sdk.trace import SpanProcessor
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from app import api, health, metrics, tracing
from app.api import EDGE_RESPONSES, HTML_HEADERS
from app.canary_lives import CanaryLives
from app.limits import RequestLimits
from app.logs import configure_logging
from app.middleware import RequestMiddleware
from app.models import ErrorResponse, ProbeStatus, RequestModels
from app.negotiation import requested_format, wants_html
from app.prometheus import Cause, PrometheusClient, Redaction, build_http_client
from app.report import render_problem
from app.settings import Settings, get_settings
from app.single_flight import SingleFlight
from app.tenancy.callers import Authentication, Callers, Refused
from app.tenancy.token_review import TokenReviewer, TokenReviews

MAX_ECHOED_INPUT = 200
HTTP_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
# Swagger UI 5 and ReDoc 2 as published on npm, shipped inside the fastapi-offline package: /docs and /redoc
# load nothing from outside, and work air-gapped.
DOCS_ASSETS = "/docs/assets"
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
# Scripts from this server and the page's own inline script (by hash); ReDoc injects its styles and runs its
# search in a worker made from a blob.
DOCS_POLICY = (
    "default-src 'none'; script-src {script_src}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

docs_router = APIRouter(include_in_schema=False)


def create_app(settings: Settings | None = None, span_processor: SpanProcessor | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_format, settings.log_level, Redaction.for_settings(settings))
    provider = tracing.configure_tracing(settings, span_processor)
    metrics.start_at_zero(causes=Cause, checks=settings.checks)

    callers = Callers(settings.access, None, settings.proxies, settings.groups_header)
    reviewer = _token_reviewer(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # One connection pool for the app's lifetime: every analysis reuses it.
        async with build_http_client(settings) as http, AsyncExitStack() as stack:
            if provider:
                tracing.instrument_client(http, provider)
            if reviewer is not None:
                callers.reviews = TokenReviews(reviewer, await stack.enter_async_context(reviewer.client()))
            app.state.prometheus = PrometheusClient(http)
            yield
            app.state.prometheus = None
            callers.reviews = None
        if provider:
            provider.shutdown()

    app = FastAPI(
        title="canary-analyzer",
        summary="Canary judge for Argo Rollouts' web metric provider.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's pages load their scripts from a CDN: ours serve them (docs_router)
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.prometheus = None
    app.state.analyses = SingleFlight()
    app.state.canary_lives = CanaryLives()
    app.include_router(api.router(RequestModels.of(settings.checks)), responses=EDGE_RESPONSES)
    probe_failed = {"model": ProbeStatus | ErrorResponse, "description": "The probe failed, or too many connections."}
    app.include_router(health.router, responses={**EDGE_RESPONSES, 503: probe_failed})
    app.include_router(docs_router)
    app.mount("/static", StaticFiles(packages=[("app", "static")]), name="static")
    app.mount(DOCS_ASSETS, StaticFiles(packages=[("fastapi_offline", "static")]), name="docs-assets")
    # The last added runs first: RequestMiddleware gives a request its trace id before limits may refuse it,
    # and callers prove who they are (with TENANCY on) after that, before anything is parsed.
    if settings.tenancy:
        app.add_middleware(Authentication, callers=callers)
    app.add_middleware(
        RequestLimits,
        max_body_bytes=settings.max_body_bytes,
        body_timeout_seconds=settings.body_timeout_seconds,
        max_query_bytes=settings.max_query_bytes,
        max_query_parameters=settings.max_query_parameters,
    )
    app.add_middleware(RequestMiddleware)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(Refused, _refused)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    if provider:
        tracing.instrument_app(app, provider)
    return app


def _token_reviewer(settings: Settings) -> TokenReviewer | None:
    if not (settings.tenancy and settings.token_review_url and settings.token_review_audience):
        return None
    ca_file = (
        settings.token_review_ca_file
        if settings.token_review_ca_file and settings.token_review_ca_file.exists()
        else None
    )
    return TokenReviewer(
        settings.token_review_url, settings.token_review_audience, settings.token_review_token_file, ca_file
    )


async def _refused(request: Request, exc: Exception) -> JSONResponse:
    """A caller asking beyond its grants: the JSON error body, whatever it asked for (the report too)."""
    assert isinstance(exc, Refused)
    problem = ErrorResponse(error=exc.error, cause=exc.cause, detail=exc.detail, trace_id=request.state.trace_id)
    return JSONResponse(problem.model_dump(mode="json"), status_code=exc.status)


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {
            "loc": [str(part) for part in error.get("loc", ())],
            "msg": error.get("msg", ""),
            "type": error.get("type", ""),
            "input": str(error.get("input", ""))[:MAX_ECHOED_INPUT],
        }
        for error in exc.errors()
    ]
    trace_id = request.state.trace_id
    asked_format = requested_format(request.query_params.getlist("format"))
    if request.method == "GET" and wants_html(request.headers.get("accept"), asked_format):
        lines = [f"{'.'.join(p['loc'][1:]) or 'request'}: {p['msg']}" for p in problems]
        form = {k: v[:MAX_ECHOED_INPUT] for k, v in request.query_params.items()}
        page = render_problem(422, "The analysis was not run: invalid input", lines, form, trace_id)
        return HTMLResponse(page, status_code=422, headers=HTML_HEADERS)
    body = ErrorResponse(error="invalid_request", cause=None, detail=problems, trace_id=trace_id)
    return JSONResponse(body.model_dump(mode="json"), status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """404, 405 and FastAPI's 400 for a body it cannot read: the JSON error body, as every other error."""
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    allowed = allowed_methods(request) if exc.status_code == 405 else []
    if allowed:  # the methods of every route on this path, not only the first route's
        headers["Allow"] = ", ".join(allowed)
    error = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    body = ErrorResponse(error=error, cause=None, detail=exc.detail, trace_id=request.state.trace_id)
    return JSONResponse(body.model_dump(mode="json"), status_code=exc.status_code, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """The methods some route takes on this path: each method is tried against the routes, as routing would.
    (Mounts take any method and decide inside, so they are left out.)"""
    routes = [route for route in request.app.routes if not isinstance(route, Mount)]
    return [
        method
        for method in HTTP_METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]


@docs_router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    assets = f"{root}{DOCS_ASSETS}"
    page = get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - API",
        swagger_js_url=f"{assets}/swagger-ui-bundle.js",
        swagger_css_url=f"{assets}/swagger-ui.css",
        swagger_favicon_url=f"{assets}/favicon.png",
        swagger_ui_parameters={"validatorUrl": None},  # Swagger UI would send the schema to swagger.io
    )
    return _under_docs_policy(page)


@docs_router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    assets = f"{root}{DOCS_ASSETS}"
    page = get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - API",
        redoc_js_url=f"{assets}/redoc.standalone.js",
        redoc_favicon_url=f"{assets}/favicon.png",
        with_google_fonts=False,
    )
    return _under_docs_policy(page)


def _under_docs_policy(page: HTMLResponse) -> HTMLResponse:
    """The page with a Content-Security-Policy that admits its inline script and nothing from elsewhere."""
    scripts = INLINE_SCRIPT.findall(bytes(page.body).decode())
    hashes = [f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in scripts]
    page.headers["Content-Security-Policy"] = DOCS_POLICY.format(script_src=" ".join(["'self'", *hashes]))
    page.headers["X-Content-Type-Options"] = "nosniff"
    return page


app = create_app()
