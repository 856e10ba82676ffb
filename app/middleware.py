"""One middleware for every request: trace id, access log, HTTP metrics, last-resort 500."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterable, Sequence

import structlog
from opentelemetry import trace
from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics

TRACE_HEADER = "X-Trace-ID"
# A caller's trace id lands in headers and log lines: short, and nothing that could break either.
SANE_TRACE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
QUIET_PREFIXES = ("/health/", "/metrics")
MAX_LOGGED_PATH = 200

access_log = structlog.get_logger("canary_analyzer.access")


def trace_id_for(headers: Headers) -> str:
    span = trace.get_current_span().get_span_context()
    if span.is_valid:  # OpenTelemetry is on: its trace id (from traceparent, or new) wins
        return format(span.trace_id, "032x")
    supplied = headers.get(TRACE_HEADER, "")
    if SANE_TRACE_ID.fullmatch(supplied):
        return supplied
    parent = TRACEPARENT.fullmatch(headers.get("traceparent", ""))
    if parent and parent.group(1) != "0" * 32:
        return parent.group(1)
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    """The path of the route that served this request (`/analyze`), never the raw URL."""
    # FastAPI records its own routes in the scope; plain Starlette routes (/docs) are matched here.
    path = getattr(scope.get("route"), "path", None)
    return path or _matching_path(getattr(scope.get("app"), "routes", ()), scope) or metrics.UNMATCHED_PATH


def _matching_path(routes: Iterable[BaseRoute], scope: Scope) -> str | None:
    """For requests no route served: a wrong method (405), or refused before routing (413, 414, 408)."""
    for route in routes:
        # FastAPI keeps an included router whole, as one route that holds its routes.
        included = getattr(getattr(route, "original_router", None), "routes", None)
        if included is not None:
            path = _matching_path(included, scope)
        elif route.matches(scope)[0] is not Match.NONE:
            path = getattr(route, "path", None)
        else:
            continue
        if path:
            return path
    return None


class RequestMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trace_id = trace_id_for(Headers(scope=scope))
        scope.setdefault("state", {})["trace_id"] = trace_id
        status, started = 500, time.perf_counter()
        response_started = False

        async def send_with_trace_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                MutableHeaders(scope=message)[TRACE_HEADER] = trace_id
            await send(message)

        with structlog.contextvars.bound_contextvars(trace_id=trace_id):
            try:
                await self.app(scope, receive, send_with_trace_id)
            except Exception:
                access_log.exception("unhandled error")
                if response_started:
                    raise
                await _internal_error(send_with_trace_id, trace_id)
            finally:
                self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        method, path = metrics.method_label(scope["method"]), route_template(scope)
        metrics.HTTP_REQUESTS.labels(method=method, path=path, status=str(status)).inc()
        metrics.HTTP_DURATION.labels(method=method, path=path).observe(seconds)
        log = access_log.debug if scope["path"].startswith(QUIET_PREFIXES) else access_log.info
        # An analysis' verdict too, so that its one access line says how it went (the demo shows only these).
        verdict = scope.get("state", {}).get("verdict")
        log(
            "request",
            method=method,
            path=scope["path"][:MAX_LOGGED_PATH],
            route=path,
            status=status,
            duration_ms=round(seconds * 1000, 2),
            **({"verdict": verdict} if verdict else {}),
        )


async def _internal_error(send: Send, trace_id: str) -> None:
    await send_error(send, 500, "internal_error", trace_id)


def error_body(error: str, trace_id: str, detail: object = None, cause: str | None = None) -> bytes:
    """The service's JSON error body (app.models.ErrorResponse), for answers given below FastAPI: its four
    keys always, null where there is nothing to say, as every other error answer."""
    return json.dumps({"error": error, "cause": cause, "detail": detail, "trace_id": trace_id}).encode()


async def send_error(
    send: Send,
    status: int,
    error: str,
    trace_id: str,
    detail: object = None,
    cause: str | None = None,
    close: bool = False,
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """Answers with the JSON error body; `close` ends the connection after it (the rest of the request
    was not read, so the connection cannot carry another one)."""
    body = error_body(error, trace_id, detail, cause)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += extra_headers
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
