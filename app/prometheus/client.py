"""Async client for the Prometheus HTTP API: HTTP and query results, nothing about verdicts."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from opentelemetry import trace

from app import metrics
from app.prometheus.answers import (
    QUOTED_BYTES,
    AnswerLimits,
    Matrix,
    Vector,
    http_error_detail,
    matrix,
    successful_data,
    vector,
)
from app.prometheus.errors import Cause, PrometheusError
from app.prometheus.reading import ACCEPTED_ENCODING, read_body
from app.prometheus.redaction import Redaction
from app.settings import Settings

tracer = trace.get_tracer(__name__)
T = TypeVar("T")
# Turns a successful answer's `data` and notices into what the caller asked for.
Shape = Callable[[Any, tuple[str, ...], AnswerLimits], T]

TENANT_HEADER = "X-Scope-OrgID"
# Asked to fail rather than answer with what the reachable part of the storage holds.
FLAVOR_PARAMS: Mapping[str, Mapping[str, str]] = {
    "thanos": {"partial_response": "false"},
    "victoriametrics": {"deny_partial_response": "1"},
}


@dataclass(frozen=True)
class Backend:
    """What is known of the server behind PROMETHEUS_URL: what to add to each query, what an answer may cost,
    and the credentials its text must never show."""

    query_params: Mapping[str, str]
    limits: AnswerLimits
    redaction: Redaction

    @classmethod
    def from_settings(cls, settings: Settings) -> Backend:
        limits = AnswerLimits(
            max_bytes=settings.prometheus_max_response_bytes,
            max_series=settings.prometheus_max_series,
            max_samples=settings.prometheus_max_samples,
            first_byte_seconds=settings.prometheus_first_byte_timeout_seconds,
        )
        return cls(FLAVOR_PARAMS.get(settings.prometheus_flavor, {}), limits, Redaction.for_settings(settings))


class PrometheusHTTP(httpx.AsyncClient):
    """The connection pool to one Prometheus, with what is known of that backend."""

    def __init__(self, backend: Backend, **client_options: Any) -> None:
        super().__init__(**client_options)
        self.backend = backend


def build_http_client(settings: Settings) -> PrometheusHTTP:
    auth: httpx.Auth | None = None
    # Compressed answers are inflated under the size cap here, so only what can be inflated that way is asked for.
    headers = {**settings.prometheus_headers, "Accept-Encoding": ACCEPTED_ENCODING}
    if settings.prometheus_bearer_token:
        headers["Authorization"] = f"Bearer {settings.prometheus_bearer_token.get_secret_value()}"
    elif basic_auth := settings.prometheus_basic_auth:
        auth = httpx.BasicAuth(*basic_auth)
    verify: ssl.SSLContext | bool = True
    if settings.prometheus_insecure_skip_verify:
        verify = False
    elif settings.prometheus_ca_bundle:
        verify = ssl.create_default_context(cafile=settings.prometheus_ca_bundle)
    return PrometheusHTTP(
        Backend.from_settings(settings),
        # The trailing slash keeps a path prefix such as /prometheus when API paths are joined.
        base_url=settings.prometheus_api_url + "/",
        headers=headers,
        auth=auth,
        verify=verify,
        timeout=httpx.Timeout(settings.analysis_timeout_seconds),
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
    )


class PrometheusClient:
    def __init__(self, http: PrometheusHTTP, tenant: str | None = None) -> None:
        self._http = http
        self._backend = http.backend
        # Mimir/Cortex: the tenant whose data every query of this client reads (app/tenancy/tenants.py).
        self._headers = {TENANT_HEADER: tenant} if tenant is not None else {}

    def for_tenant(self, tenant: str | None) -> PrometheusClient:
        """The same connection pool, asking as `tenant` (X-Scope-OrgID), set here and nowhere else."""
        return PrometheusClient(self._http, tenant)

    async def query(self, promql: str, at: float, timeout: float) -> Vector:
        params = {"query": promql, "time": f"{at:.3f}", "timeout": _duration(timeout)}
        return await self._call("api/v1/query", params, timeout, vector)

    async def query_range(self, promql: str, start: float, end: float, step: float, timeout: float) -> Matrix:
        params = {
            "query": promql,
            "start": f"{start:.3f}",
            "end": f"{end:.3f}",
            "step": f"{step:g}",
            "timeout": _duration(timeout),
        }
        return await self._call("api/v1/query_range", params, timeout, matrix)

    async def ready(self, timeout: float) -> None:
        """Raises PrometheusError unless Prometheus answers a trivial query in time."""
        await self._call("api/v1/query", {"query": "1"}, timeout, _ignored)

    def failed(self, exc: PrometheusError) -> PrometheusError:
        """The error counted, and as it may be shown: redacted and short. Also for an answer found wrong after
        it left here (its detail may quote the answer's labels, which a hostile proxy may fill with a secret)."""
        metrics.QUERY_ERRORS.labels(cause=exc.cause).inc()
        return PrometheusError(exc.cause, self._backend.redaction.excerpt(exc.detail))

    async def _call(self, path: str, params: dict[str, str], timeout: float, shape: Shape[T]) -> T:
        """The answer, shaped. Every PrometheusError leaves through here or `failed`, redacted and short:
        callers show its detail as it is."""
        backend = self._backend
        with tracer.start_as_current_span(f"prometheus {path}", kind=trace.SpanKind.CLIENT) as span:
            span.set_attribute("db.system", "prometheus")
            span.set_attribute("db.query.text", params["query"])
            started = time.perf_counter()
            try:
                data, notices = successful_data(await self._exchange(path, params, timeout))
                answer = shape(data, tuple(map(backend.redaction.excerpt, notices)), backend.limits)
            except PrometheusError as exc:
                shown = self.failed(exc)
                span.set_status(trace.StatusCode.ERROR, str(shown))
                # Without its chain: what caused it may quote the answer, and spans and logs print chains.
                raise shown from None
            finally:
                metrics.QUERY_DURATION.observe(time.perf_counter() - started)
            result = data.get("result") if isinstance(data, dict) else None
            span.set_attribute("prometheus.result.series", len(result) if isinstance(result, list) else 1)
            return answer

    async def _exchange(self, path: str, params: dict[str, str], timeout: float) -> bytes:
        """The body of a 2xx answer, read within the size cap and the deadline."""
        limits = self._backend.limits
        form = {**params, **self._backend.query_params}
        # httpx's read timeout restarts with every byte: a trickling answer is bounded only by a deadline.
        per_read = httpx.Timeout(timeout, read=min(timeout, limits.first_byte_seconds))
        try:
            async with (
                asyncio.timeout(timeout),
                self._http.stream("POST", path, data=form, headers=self._headers, timeout=per_read) as answer,
            ):
                if not answer.is_success:
                    raise PrometheusError(Cause.HTTP_STATUS, await _error_detail(answer))
                return await read_body(answer, limits.max_bytes)
        except TimeoutError:
            raise PrometheusError(Cause.TIMEOUT, f"no complete answer within {timeout:g}s") from None
        except httpx.ReadTimeout:
            waited = f"{per_read.read:g}s (PROMETHEUS_FIRST_BYTE_TIMEOUT_SECONDS)"
            raise PrometheusError(Cause.TIMEOUT, f"nothing received for {waited}") from None
        except httpx.TimeoutException as exc:
            raise PrometheusError(Cause.TIMEOUT, f"no answer within {timeout:g}s ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:  # refused, DNS, TLS, protocol errors
            raise PrometheusError(Cause.CONNECTION, f"{type(exc).__name__}: {exc}") from None


async def _error_detail(answer: httpx.Response) -> str:
    try:
        page = await read_body(answer, QUOTED_BYTES, truncate=True)
    except PrometheusError:  # an encoding we cannot read: the status says enough
        page = b""
    return http_error_detail(answer.status_code, page)


def _ignored(data: Any, notices: tuple[str, ...], limits: AnswerLimits) -> None:
    return None


def _duration(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"
