"""Bad input gets a clear 422 and changes nothing: no query reaches Prometheus."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest

from app.judge.builtin_checks import CHECKS
from app.judge.checks import Mode
from tests.support.recorder import RecordingPrometheus
from tests.support.servers import AnalyzerServer


@pytest.fixture(scope="module")
def server(start_analyzer: Callable[..., AnalyzerServer], recorder: RecordingPrometheus) -> AnalyzerServer:
    return start_analyzer(prometheus_url=recorder.url)


BAD_QUERY_STRINGS = [
    "",  # service missing
    "service=",
    'service=checkout"} or vector(1) #',
    "service=check out",
    "service=%0Acheckout",
    "service=" + "a" * 254,
    "service=checkout&canary=can\\ary",
    "service=checkout&stable=st%22able",
    "service=checkout&window=5",
    "service=checkout&window=0s",
    "service=checkout&window=2d",
    "service=checkout&window=5m])%20or%20vector(1",
    "service=checkout&p95_max_seconds=-1",
    "service=checkout&p95_max_seconds=nan",
    "service=checkout&p95_max_seconds=inf",
    "service=checkout&error_rate_max=2",
    "service=checkout&min_requests=0",
    "service=checkout&min_requests=1.5",
    "service=checkout&canary=v1&stable=v1",
    "service=checkout&unknown=1",
    "service=checkout&Service=x",
    "service=checkout&at=2999-01-01T00:00:00Z",  # the future has no data to judge
    "service=checkout&at=2026-11-22T08:00:00",  # no time zone: ambiguous
    "service=checkout&at=yesterday",
    "service=checkout&at=0",  # a number is no moment: not 1970
    "service=checkout&at=1700000000",
    "service=checkout&at=2026-11-22T08:00Z",  # RFC 3339 has seconds
    "service=checkout&window=%D9%A5m",  # an Arabic-Indic five: a digit to Python, not to Prometheus
    "service=checkout&service=payments",  # ambiguous: which one would be judged?
    "service=checkout&window=5m&window=1h",
    "service=checkout&preset=envoy",
    "service=checkout&stable=",  # an empty stable only where the preset says its stable has no version label
    "service=checkout&stable=&preset=istio",
    "service=checkout&canary=&preset=ingress-nginx",
]


@pytest.mark.parametrize("query", BAD_QUERY_STRINGS)
def test_bad_get_is_422_and_queries_nothing(server: AnalyzerServer, recorder: RecordingPrometheus, query: str) -> None:
    before = len(recorder.queries)
    response = httpx.get(f"{server.url}/analyze?{query}", timeout=10)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_request"
    assert body["detail"] and all(problem["msg"] for problem in body["detail"])
    assert len(recorder.queries) == before


BAD_BODIES = [
    {},
    {"service": 'x"}'},
    {"service": "checkout", "window": "forever"},
    {"service": "checkout", "surprise": True},
    {"service": "checkout", "min_requests": -5},
    {"service": ["checkout"]},
    {"service": "checkout", "error_rate_delta_max": "lots"},
    {"service": "checkout", "at": 0},  # would have been judged as of 1970
    {"service": "checkout", "at": 1700000000.5},
    {"service": "checkout", "at": "1700000000"},
    {"service": "checkout", "at": "2026-11-22 08:00:00Z"},
    {"service": "checkout", "at": "2026-11-22"},
    # JSON's true would be read as 1: a limit, a count or a name that is a yes/no is a mistake.
    {"service": "checkout", "polls": True},
    {"service": "checkout", "p95_max_seconds": True},
    {"service": True},
]


@pytest.mark.parametrize("body", BAD_BODIES)
def test_bad_post_is_422_and_queries_nothing(server: AnalyzerServer, recorder: RecordingPrometheus, body: dict) -> None:
    before = len(recorder.queries)
    response = httpx.post(f"{server.url}/analyze", json=body, timeout=10)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_request"
    assert len(recorder.queries) == before


@pytest.mark.parametrize("content", [b"{not json", b"null", b"[]", b'"service"', b"\xff\xfe"])
def test_malformed_post_bodies(server: AnalyzerServer, recorder: RecordingPrometheus, content: bytes) -> None:
    before = len(recorder.queries)
    response = httpx.post(
        f"{server.url}/analyze", content=content, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/json")
    assert len(recorder.queries) == before


def test_a_body_that_is_not_text_is_a_json_400(server: AnalyzerServer, recorder: RecordingPrometheus) -> None:
    before = len(recorder.queries)
    response = httpx.post(
        f"{server.url}/analyze", content=b"\x80", headers={"Content-Type": "application/json"}, timeout=10
    )
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
    assert response.json()["trace_id"] == response.headers["X-Trace-ID"]
    assert len(recorder.queries) == before


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "text/html;q=0.5, application/json"])
@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", "/no/such/path", 404, None),
        ("GET", "/static/no-such.css", 404, None),
        ("DELETE", "/analyze", 405, "GET, POST"),  # both /analyze routes, not only the first
        ("OPTIONS", "/analyze", 405, "GET, POST"),
        ("POST", "/health/live", 405, "GET"),
    ],
)
def test_routing_errors_are_json(
    server: AnalyzerServer, accept: str | None, method: str, path: str, status: int, allow: str | None
) -> None:
    headers = {"Accept": accept} if accept else {}
    response = httpx.request(method, f"{server.url}{path}", headers=headers, timeout=10)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json()["trace_id"] == response.headers["X-Trace-ID"]
    assert response.headers.get("Allow") == allow


@pytest.mark.parametrize(
    ("query", "accept", "html"),
    [
        ("format=html&format=json", None, False),  # repeated: it asks for nothing, and the 422 says so
        ("format=json&format=html", None, False),
        ("format=html&lookback=1s", None, True),  # asked for the report: the form shows what was wrong
        ("format=xml", None, False),
        ("canary=stable", "text/html", True),  # a browser
        ("canary=stable", "text/html;q=0.5, */*", False),
    ],
)
def test_only_a_client_that_asked_for_html_gets_an_html_422(
    server: AnalyzerServer, query: str, accept: str | None, html: bool
) -> None:
    headers = {"Accept": accept} if accept else {}
    response = httpx.get(f"{server.url}/analyze?service=checkout&{query}", headers=headers, timeout=10)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html" if html else "application/json")


def test_huge_input_is_refused_without_echoing_it(server: AnalyzerServer) -> None:
    response = httpx.get(f"{server.url}/analyze", params={"service": "a" * 4_000}, timeout=10)  # within 4 KiB
    assert response.status_code == 422
    assert len(response.content) < 2_000


def test_valid_input_does_reach_prometheus(server: AnalyzerServer, recorder: RecordingPrometheus) -> None:
    """The control for the tests above: the recorder sees the analyzer's queries when input is valid."""
    before = len(recorder.queries)
    response = httpx.get(f"{server.url}/analyze", params={"service": "a.b:c-d_e", "canary": "7f9c5d"}, timeout=10)
    assert response.status_code == 200
    assert response.json()["verdict"] == "inconclusive"  # the recorder has no data
    # When the canary started, over the hour (and at the same time the last hour's minutes), then over the
    # day (the recorder answers nothing: a canary there all day); both families, both versions since.
    *first, families = recorder.queries[before:]
    starts = [query for query in first if query.startswith("max_over_time")]
    assert len(first) == 3 and len(starts) == 2 and "[1h:1m]" in starts[0] and "[1d:1m]" in starts[1]
    assert all('service="a.b:c-d_e"' in query and "7f9c5d" in query for query in first)
    for start in starts:
        assert start.count('service="a.b:c-d_e"') == start.count('version="7f9c5d"') == 1
    assert families.count('service="a.b:c-d_e"') == families.count('version=~"7f9c5d|stable"') >= 2


def test_an_unknown_preset_is_refused_naming_the_known_ones(server: AnalyzerServer) -> None:
    [problem] = httpx.get(f"{server.url}/analyze?service=checkout&preset=envoy", timeout=10).json()["detail"]
    assert "'default', 'grpc', 'ingress-nginx', 'istio', 'linkerd' or 'otel'" in problem["msg"]


def test_ingress_nginx_takes_an_empty_stable(server: AnalyzerServer, recorder: RecordingPrometheus) -> None:
    before = len(recorder.queries)
    body = {"service": "shop", "canary": "shop-canary", "stable": "", "preset": "ingress-nginx"}
    response = httpx.post(f"{server.url}/analyze", json=body, timeout=10)
    assert response.status_code == 200, response.text
    *first, families = recorder.queries[before:]  # over the hour (and its minutes), then the day
    starts = [query for query in first if query.startswith("max_over_time")]
    assert len(first) == 3 and len(starts) == 2 and all('canary="shop-canary"' in start for start in starts)
    assert 'canary=~"shop\\\\-canary|"' in families


def test_blank_optional_fields_from_the_report_form_mean_default(server: AnalyzerServer) -> None:
    response = httpx.get(f"{server.url}/analyze?service=checkout&at=&lookback=&min_requests=&format=", timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["thresholds"]["min_requests"] == 50
    # A label value that resolved to nothing is still refused, never replaced by the default.
    assert httpx.get(f"{server.url}/analyze?service=checkout&canary=", timeout=10).status_code == 422


def test_openapi_describes_the_request(server: AnalyzerServer) -> None:
    spec = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    get_params = {p["name"]: p for p in spec["paths"]["/analyze"]["get"]["parameters"]}
    assert {"service", "canary", "stable", "window"} <= set(get_params)
    body_schema = spec["components"]["schemas"]["AnalysisRequest"]["properties"]
    for check in CHECKS:  # every limit, with the range and default its check declares
        for described in (get_params[check.limit.field]["schema"], body_schema[check.limit.field]):
            [number] = [s for s in described["anyOf"] if s["type"] != "null"]
            assert number["maximum"] == check.limit.maximum
            assert f"default {check.limit.default_for(Mode.STATISTICAL):g}" in described["description"]
    assert "requestBody" in spec["paths"]["/analyze"]["post"]
    # What the validation enforces, the schema says.
    at = next(s for s in body_schema["at"]["anyOf"] if s["type"] == "string")
    assert at["format"] == "date-time" and re.fullmatch(at["pattern"], "2026-11-22T08:00:00Z")
    assert not re.fullmatch(at["pattern"], "1700000000")
    for duration in (body_schema["window"], get_params["lookback"]["schema"]):
        assert re.fullmatch(duration["pattern"], "1h30m") and not re.fullmatch(duration["pattern"], "5")
    # Every answer the service can give, on every operation.
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            declared = set(operation["responses"])
            assert {"200", "400", "405", "408", "413", "414", "422", "500", "503"} <= declared, (method, path)
    for status in ("200", "422", "503"):  # the report, for a person who asked for it
        assert "text/html" in spec["paths"]["/analyze"]["get"]["responses"][status]["content"]
    assert httpx.get(f"{server.url}/docs", timeout=10).status_code == 200
