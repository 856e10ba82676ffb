"""Trace ids, route-template metrics, the last-resort 500 and the one error body, on a real uvicorn."""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from app.settings import Settings
from tests.support import tenancy
from tests.support.logs import lines_with_trace_id
from tests.support.servers import AnalyzerServer, error_of, read_until_closed

GENERATED = re.compile(r"^[0-9a-f]{32}$")
ERROR_KEYS = {"error", "cause", "detail", "trace_id"}
TEAM_A = {"Authorization": f"Bearer {tenancy.TOKENS[tenancy.TEAM_A]}"}
TEAM_A_JSON = {**TEAM_A, "Content-Type": "application/json"}
SHOP = f"/analyze?service={tenancy.SERVICE}"


def lines_for(server: AnalyzerServer, trace_id: str) -> list[dict]:
    """Waits for the access line, which is the last one a request writes."""
    return lines_with_trace_id(server, trace_id, lambda lines: any(line["event"] == "request" for line in lines))


def test_trace_id_is_generated_and_echoed(analyzer: AnalyzerServer) -> None:
    response = analyzer.analyze(service="healthy")
    trace_id = response.headers["X-Trace-ID"]
    assert GENERATED.fullmatch(trace_id)
    assert response.json()["trace_id"] == trace_id
    lines = lines_for(analyzer, trace_id)
    assert {"analysis", "request"} <= {line["event"] for line in lines}
    [access] = [line for line in lines if line["event"] == "request"]
    assert (access["status"], access["verdict"]) == (200, "pass")  # the access line says how the analysis went


def test_callers_trace_id_is_propagated_to_body_header_and_logs(analyzer: AnalyzerServer) -> None:
    trace_id = f"rollout-checkout.{uuid.uuid4().hex[:8]}"
    response = httpx.post(
        f"{analyzer.url}/analyze", json={"service": "healthy"}, headers={"X-Trace-ID": trace_id}, timeout=15
    )
    assert response.headers["X-Trace-ID"] == trace_id
    assert response.json()["trace_id"] == trace_id
    [audit] = [line for line in lines_for(analyzer, trace_id) if line["logger"] == "canary_analyzer.audit"]
    assert audit["verdict"] == "pass"
    assert audit["inputs"]["service"] == "healthy"
    assert {c["name"] for c in audit["checks"]} >= {"p95_latency", "error_rate"}
    assert audit["prometheus_ms"] > 0 and audit["total_ms"] >= audit["prometheus_ms"]


def test_trace_id_without_opentelemetry_falls_back_to_traceparent(analyzer: AnalyzerServer) -> None:
    trace_id = uuid.uuid4().hex
    response = httpx.get(
        f"{analyzer.url}/analyze",
        params={"service": "healthy"},
        headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
        timeout=15,
    )
    assert response.headers["X-Trace-ID"] == trace_id


@pytest.mark.parametrize(
    "supplied",
    ["a" * 10_000, "a" * 65, "has space", "semi;colon", 'quote"d', "ünïcode", "<script>", ""],
)
def test_insane_trace_ids_are_replaced(analyzer: AnalyzerServer, supplied: str) -> None:
    response = httpx.get(f"{analyzer.url}/health/live", headers={"X-Trace-ID": supplied.encode("utf-8")}, timeout=10)
    assert response.status_code == 200
    assert GENERATED.fullmatch(response.headers["X-Trace-ID"])


def test_header_injection_through_the_trace_id_is_impossible(analyzer: AnalyzerServer) -> None:
    """A raw request with a newline-folded trace id: the analyzer must not echo it."""
    with socket.create_connection(("127.0.0.1", analyzer.port), timeout=10) as sock:
        sock.sendall(
            b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Trace-ID: abc\r\n evil: injected\r\nConnection: close\r\n\r\n"
        )
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    assert b"evil" not in raw.split(b"\r\n\r\n")[0]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/analyze?service=bad%20value", 422), ("GET", "/no/such/path", 404), ("DELETE", "/analyze", 405)],
)
def test_errors_carry_the_trace_id(analyzer: AnalyzerServer, method: str, path: str, status: int) -> None:
    response = httpx.request(method, f"{analyzer.url}{path}", headers={"X-Trace-ID": "err-1"}, timeout=10)
    assert response.status_code == status
    assert response.headers["X-Trace-ID"] == "err-1"


def test_prometheus_down_answer_carries_the_trace_id(analyzer_without_prometheus: AnalyzerServer) -> None:
    response = httpx.get(
        f"{analyzer_without_prometheus.url}/analyze", params={"service": "x"}, headers={"X-Trace-ID": "down-1"}
    )
    assert response.status_code == 503
    assert response.headers["X-Trace-ID"] == response.json()["trace_id"] == "down-1"


def test_unhandled_error_is_a_json_500_with_trace_id() -> None:
    app = create_app(Settings(prometheus_url="http://127.0.0.1:1"))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom", headers={"X-Trace-ID": "boom-1"})
    assert response.status_code == 500
    assert response.headers["X-Trace-ID"] == "boom-1"
    assert response.json() == {"error": "internal_error", "cause": None, "detail": None, "trace_id": "boom-1"}


def test_metrics_use_route_templates(start_analyzer: Callable[..., AnalyzerServer], dead_prometheus_url: str) -> None:
    server = start_analyzer(prometheus_url=dead_prometheus_url)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for _ in range(1000):
            client.get(f"/{uuid.uuid4().hex}/{uuid.uuid4().hex[:6]}")
        client.get("/analyze", params={"service": "s1"})
        client.request("BREW", "/analyze")  # no route served these three: still counted under /analyze
        client.post("/analyze", content=b"x" * 100_000)
        client.get("/analyze", params={"p": "x" * 5_000})
        scraped = client.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(scraped)}
    requests = [s for s in families["http_requests"].samples if s.name == "http_requests_total"]
    paths = {s.labels["path"] for s in requests}
    assert paths == {"<unmatched>", "/analyze", "/openapi.json"}  # /openapi.json: the start-up probe
    unmatched = [s for s in requests if s.labels["path"] == "<unmatched>"]
    assert sum(s.value for s in unmatched) == 1000
    assert {s.labels["method"] for s in requests} == {"GET", "POST", "OTHER"}
    analyze = {s.labels["status"] for s in requests if s.labels["path"] == "/analyze"}
    assert analyze == {"503", "405", "413", "414"}
    durations = {s.labels.get("path") for s in families["http_request_duration_seconds"].samples}
    assert durations == paths


@pytest.fixture(scope="module")
def guarded(
    start_analyzer: Callable[..., AnalyzerServer], dead_prometheus_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AnalyzerServer:
    """TENANCY on, a TokenReview API and a Prometheus nobody answers, deadlines of a second: every error the
    service gives is one request away."""
    files = tmp_path_factory.mktemp("guarded")
    (files / "token").write_text(tenancy.ANALYZER_OWN_TOKEN)
    return start_analyzer(
        prometheus_url=dead_prometheus_url,
        tenancy="true",
        access_file=str(tenancy.access_file(files / "access.yaml")),
        token_review_url=dead_prometheus_url,
        token_review_audience=tenancy.AUDIENCE,
        token_review_token_file=str(files / "token"),
        token_review_ca_file=str(files / "no-ca.crt"),
        header_timeout_seconds="1",
        body_timeout_seconds="1",
    )


@pytest.mark.parametrize(
    ("method", "path", "headers", "content", "status", "error", "cause"),
    [
        ("GET", SHOP, {}, None, 401, "unauthorized", "no_credential"),
        ("GET", SHOP, {"Authorization": "Basic eDp5"}, None, 401, "unauthorized", "malformed_authorization"),
        ("GET", f"{SHOP}&namespace={tenancy.TEAM_B}", TEAM_A, None, 403, "forbidden", "not_covered"),
        ("GET", SHOP, {**TEAM_A, "X-Scope-OrgID": tenancy.TEAM_B}, None, 403, "forbidden", "tenant_asked"),
        ("GET", SHOP, {"Authorization": "Bearer sa-unknown"}, None, 503, "authentication_unavailable", "token_review"),
        ("GET", "/no/such/path", {}, None, 404, "not_found", None),
        ("DELETE", "/analyze", TEAM_A, None, 405, "method_not_allowed", None),
        ("POST", "/analyze", TEAM_A_JSON, b"\x80", 400, "bad_request", None),
        ("POST", "/analyze", TEAM_A_JSON, b" " * (64 * 1024 + 1), 413, "content_too_large", None),
        ("GET", f"{SHOP}&x={'a' * 4096}", TEAM_A, None, 414, "uri_too_long", None),
        ("GET", f"{SHOP}&{'&'.join(f'p{n}=1' for n in range(32))}", TEAM_A, None, 422, "invalid_request", None),
        ("GET", f"{SHOP}&window=forever", TEAM_A, None, 422, "invalid_request", None),
        ("GET", SHOP, TEAM_A, None, 503, "prometheus_unavailable", "connection"),
    ],
    ids=[
        "401-no-credential",
        "401-not-bearer",
        "403-not-covered",
        "403-tenant-asked",
        "503-token-review-down",
        "404",
        "405",
        "400-body-not-text",
        "413",
        "414",
        "422-too-many-parameters",
        "422-invalid-field",
        "503-prometheus-down",
    ],
)
def test_every_error_is_the_one_json_body(
    guarded: AnalyzerServer,
    method: str,
    path: str,
    headers: dict[str, str],
    content: bytes | None,
    status: int,
    error: str,
    cause: str | None,
) -> None:
    response = httpx.request(method, f"{guarded.url}{path}", headers=headers, content=content, timeout=15)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    assert (body["error"], body["cause"], body["trace_id"]) == (error, cause, response.headers["X-Trace-ID"])
    assert body["detail"], body


@pytest.mark.parametrize(
    ("sent", "status", "error"),
    [
        (b"NOT HTTP AT ALL\r\n\r\n", 400, "bad_request"),  # uvicorn's own answer, given in JSON
        (b"GET /health/live HTTP/1.1\r\nHost: x\r\n", 408, "request_timeout"),  # headers that never end
        (b"POST /analyze HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{", 408, "request_timeout"),
    ],
    ids=["not-http", "headers-late", "body-late"],
)
def test_errors_below_the_app_are_the_same_body(guarded: AnalyzerServer, sent: bytes, status: int, error: str) -> None:
    with socket.create_connection(("127.0.0.1", guarded.port), timeout=15) as sock:
        sock.sendall(sent)
        answered, _, body = error_of(read_until_closed(sock))
    assert (answered, body["error"], body["cause"]) == (status, error, None)
    assert set(body) == ERROR_KEYS and body["detail"] and body["trace_id"], body
