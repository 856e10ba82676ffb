"""The ASGI application: `uvicorn app.main:app`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app import api
from app.models import ErrorResponse
from app.prometheus import PrometheusClient, build_http_client
from app.settings import Settings, get_settings

MAX_ECHOED_INPUT = 200


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # One connection pool for the app's lifetime: every analysis reuses it.
        async with build_http_client(settings) as http:
            app.state.prometheus = PrometheusClient(http)
            yield

    app = FastAPI(
        title="canary-analyzer",
        summary="Canary judge for Argo Rollouts' web metric provider.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.include_router(api.router)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(Exception, _internal_error)
    return app


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
    body = ErrorResponse(error="invalid_request", detail=problems, trace_id=getattr(request.state, "trace_id", None))
    return JSONResponse(body.model_dump(mode="json"), status_code=422)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    body = ErrorResponse(
        error="internal_error", detail=type(exc).__name__, trace_id=getattr(request.state, "trace_id", None)
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=500)


app = create_app()
