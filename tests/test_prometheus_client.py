"""The Prometheus client's mapping of every failure a real server cannot easily produce (respx)."""

from __future__ import annotations

import asyncio
import math

import httpx
import pytest
import respx

from app.analysis import run_analysis
from app.models import AnalysisRequest
from app.prometheus import Cause, PrometheusClient, PrometheusError, build_http_client
from app.promql import Conventions
from app.settings import Settings

BASE = "http://prometheus.test:9090/prefix"
QUERY_URL = f"{BASE}/api/v1/query"

pytestmark = pytest.mark.anyio


def vector(*values: str, warnings: list[str] | None = None) -> dict:
    body: dict = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": {}, "value": [1700000000, v]} for v in values],
        },
    }
    if warnings:
        body["warnings"] = warnings
    return body


async def query(mock: respx.MockRouter, **response: object) -> float | None:
    mock.post(QUERY_URL).mock(**response)
    async with build_http_client(Settings(prometheus_url=BASE)) as http:
        return (await PrometheusClient(http).query("up", at=1700000000, timeout=2)).value


async def failure(mock: respx.MockRouter, **response: object) -> PrometheusError:
    with pytest.raises(PrometheusError) as caught:
        await query(mock, **response)
    return caught.value


@pytest.fixture
def mock() -> respx.MockRouter:
    with respx.mock(assert_all_called=False) as router:
        yield router


async def test_value_and_request_shape(mock: respx.MockRouter) -> None:
    route = mock.post(QUERY_URL).mock(return_value=httpx.Response(200, json=vector("0.25")))
    async with build_http_client(Settings(prometheus_url=BASE)) as http:
        assert (await PrometheusClient(http).query('up{job="x"}', at=1700000000.5, timeout=2)).value == 0.25
    sent = dict(httpx.QueryParams(route.calls.last.request.content.decode()))
    assert sent == {"query": 'up{job="x"}', "time": "1700000000.500", "timeout": "2000ms"}


@pytest.mark.parametrize(("text", "check"), [("NaN", math.isnan), ("+Inf", math.isinf), ("-Inf", math.isinf)])
async def test_special_float_strings(mock: respx.MockRouter, text: str, check) -> None:
    assert check(await query(mock, return_value=httpx.Response(200, json=vector(text))))


async def test_empty_vector_is_no_value(mock: respx.MockRouter) -> None:
    assert await query(mock, return_value=httpx.Response(200, json=vector())) is None


async def test_scalar_result(mock: respx.MockRouter) -> None:
    body = {"status": "success", "data": {"resultType": "scalar", "result": [1700000000, "3"]}}
    assert await query(mock, return_value=httpx.Response(200, json=body)) == 3


async def test_connection_refused(mock: respx.MockRouter) -> None:
    error = await failure(mock, side_effect=httpx.ConnectError("Connection refused"))
    assert error.cause is Cause.CONNECTION


async def test_timeout(mock: respx.MockRouter) -> None:
    error = await failure(mock, side_effect=httpx.ReadTimeout("timed out"))
    assert error.cause is Cause.TIMEOUT


@pytest.mark.parametrize("status", [400, 401, 404, 422, 500, 502, 503])
async def test_http_errors(mock: respx.MockRouter, status: int) -> None:
    body = {"status": "error", "errorType": "bad_data", "error": "parse error"}
    error = await failure(mock, return_value=httpx.Response(status, json=body))
    assert error.cause is Cause.HTTP_STATUS
    assert f"HTTP {status}" in error.detail and "parse error" in error.detail


async def test_http_error_with_html_body(mock: respx.MockRouter) -> None:
    error = await failure(mock, return_value=httpx.Response(502, text="<html>Bad Gateway</html>"))
    assert error.cause is Cause.HTTP_STATUS and "Bad Gateway" in error.detail


async def test_status_error_in_a_200(mock: respx.MockRouter) -> None:
    body = {"status": "error", "errorType": "execution", "error": "query timed out"}
    error = await failure(mock, return_value=httpx.Response(200, json=body))
    assert error.cause is Cause.QUERY_ERROR and "query timed out" in error.detail


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="{not json"),
        httpx.Response(200, text="<html>login</html>"),
        httpx.Response(200, json=[1, 2]),
        httpx.Response(200, json={"status": "success", "data": {"resultType": "matrix", "result": []}}),
        httpx.Response(200, json={"status": "success", "data": {"resultType": "vector", "result": [{"x": 1}]}}),
        httpx.Response(200, json=vector("not-a-number")),
        httpx.Response(200, json=vector("1", "2")),
    ],
)
async def test_bad_responses(mock: respx.MockRouter, response: httpx.Response) -> None:
    assert (await failure(mock, return_value=response)).cause is Cause.BAD_RESPONSE


async def test_warnings_are_passed_on(mock: respx.MockRouter) -> None:
    mock.post(QUERY_URL).mock(return_value=httpx.Response(200, json=vector("1", warnings=["partial data"])))
    async with build_http_client(Settings(prometheus_url=BASE)) as http:
        result = await PrometheusClient(http).query("up", at=1700000000, timeout=2)
    assert result.warnings == ("partial data",)


async def test_auth_and_extra_headers_are_sent(mock: respx.MockRouter) -> None:
    route = mock.post(QUERY_URL).mock(return_value=httpx.Response(200, json=vector("1")))
    settings = Settings(
        prometheus_url=BASE, prometheus_bearer_token="s3cret", prometheus_headers={"X-Scope-OrgID": "team-a"}
    )
    async with build_http_client(settings) as http:
        await PrometheusClient(http).query("up", at=1, timeout=1)
    headers = route.calls.last.request.headers
    assert headers["authorization"] == "Bearer s3cret"
    assert headers["x-scope-orgid"] == "team-a"


async def test_basic_auth_is_sent(mock: respx.MockRouter) -> None:
    route = mock.post(QUERY_URL).mock(return_value=httpx.Response(200, json=vector("1")))
    settings = Settings(prometheus_url=BASE, prometheus_username="reader", prometheus_password="pw")
    async with build_http_client(settings) as http:
        await PrometheusClient(http).query("up", at=1, timeout=1)
    assert route.calls.last.request.headers["authorization"] == "Basic cmVhZGVyOnB3"


def test_bearer_token_and_basic_auth_are_exclusive() -> None:
    with pytest.raises(ValueError, match="either"):
        Settings(prometheus_bearer_token="t", prometheus_username="u")


async def test_one_failed_query_fails_the_whole_analysis(mock: respx.MockRouter) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if "histogram_quantile" in request.content.decode():
            return httpx.Response(503, text="overloaded")
        return httpx.Response(200, json=vector("1000"))

    mock.post(QUERY_URL).mock(side_effect=answer)
    async with build_http_client(Settings(prometheus_url=BASE)) as http:
        with pytest.raises(PrometheusError) as caught:
            await run_analysis(AnalysisRequest(service="checkout"), PrometheusClient(http), Conventions(), 2)
    assert caught.value.cause is Cause.HTTP_STATUS


async def test_queries_run_concurrently_within_the_budget(mock: respx.MockRouter) -> None:
    in_flight, peak = 0, 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.2)
        in_flight -= 1
        return httpx.Response(200, json=vector("1000"))

    mock.post(QUERY_URL).mock(side_effect=slow)
    async with build_http_client(Settings(prometheus_url=BASE)) as http:
        analysis = await run_analysis(AnalysisRequest(service="checkout"), PrometheusClient(http), Conventions(), 1)
    assert peak == 6
    assert analysis.prometheus_seconds < 1.0  # six 0.2 s queries one after another would take 1.2 s


async def test_budget_exceeded_is_a_timeout(mock: respx.MockRouter) -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, json=vector("1"))

    mock.post(QUERY_URL).mock(side_effect=hang)
    async with build_http_client(Settings(prometheus_url=BASE)) as http:
        with pytest.raises(PrometheusError) as caught:
            await run_analysis(AnalysisRequest(service="checkout"), PrometheusClient(http), Conventions(), 0.3)
    assert caught.value.cause is Cause.TIMEOUT
