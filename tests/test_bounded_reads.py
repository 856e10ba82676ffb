"""What one answer of Prometheus may cost: bytes (decompressed), series, samples and time, with the analyzer's
memory measured from outside while it refuses answers hundreds of megabytes large."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable

import pytest

from app.prometheus import Cause, PrometheusClient, PrometheusError, build_http_client
from app.settings import Settings
from tests.support.hostile_prometheus import (
    MB,
    HostilePrometheus,
    Reply,
    empty_answers,
    gzipped,
    json_reply,
    many_series,
    padded_answer,
    silence,
    streamed_reply,
    trickle,
)
from tests.support.processes import peak_resident_kib, reset_peak_resident, resident_kib
from tests.support.servers import AnalyzerServer

pytestmark = pytest.mark.anyio

MEMORY_GROWTH_LIMIT = 50 * MB
KIB = 1024

ATTACKS: dict[str, Reply] = {
    "200 MB body, no length": streamed_reply(lambda: padded_answer(200 * MB)),
    "200 MB body, length declared": streamed_reply(lambda: padded_answer(200 * MB), {"Content-Length": str(200 * MB)}),
    "300 MB gzip bomb": streamed_reply(lambda: gzipped(padded_answer(300 * MB)), {"Content-Encoding": "gzip"}),
    "a million series": streamed_reply(lambda: many_series(1_000_000)),
}


@pytest.fixture(scope="module")
def exposed_analyzer(start_analyzer: Callable[..., AnalyzerServer], hostile: HostilePrometheus) -> AnalyzerServer:
    return start_analyzer(prometheus_url=hostile.url)


@pytest.mark.parametrize("attack", ATTACKS)
def test_oversized_answers_are_refused_in_bounded_memory(
    exposed_analyzer: AnalyzerServer, hostile: HostilePrometheus, attack: str
) -> None:
    hostile.reply = empty_answers  # a range query (the last hour's minutes) answers a matrix
    assert exposed_analyzer.analyze(service="checkout").status_code == 200  # warmed up: allocations done once
    before = resident_kib(exposed_analyzer.pid) * KIB
    reset_peak_resident(exposed_analyzer.pid)
    hostile.reply = ATTACKS[attack]
    started = time.monotonic()
    response = exposed_analyzer.analyze(service="checkout")
    seconds = time.monotonic() - started
    after, peak = resident_kib(exposed_analyzer.pid) * KIB, peak_resident_kib(exposed_analyzer.pid) * KIB

    assert response.status_code == 503, response.text
    assert response.json()["cause"] == "too_large"
    assert "PROMETHEUS_MAX_RESPONSE_BYTES" in response.json()["detail"]
    growth = {"rss": after - before, "peak": peak - before}
    assert max(growth.values()) < MEMORY_GROWTH_LIMIT, f"{attack}: grew {growth} bytes"
    assert seconds < 5, f"{attack}: took {seconds:.1f}s"  # abandoned early, not read to the end


# In process: the client against the same server, for the caps' edges.


async def query(url: str, **settings: object) -> None:
    async with build_http_client(Settings(prometheus_url=url, **settings)) as http:
        await PrometheusClient(http).query("up", at=1700000000, timeout=5)


async def refusal(url: str, **settings: object) -> PrometheusError:
    with pytest.raises(PrometheusError) as caught:
        await query(url, **settings)
    return caught.value


def vector_of(count: int) -> dict:
    result = [{"metric": {"le": str(n)}, "value": [1700000000, "1"]} for n in range(count)]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


@pytest.mark.parametrize("declare_length", [False, True])
async def test_an_answer_of_exactly_the_cap_is_read_and_one_byte_more_is_not(
    hostile: HostilePrometheus, declare_length: bool
) -> None:
    cap = 64 * 1024  # the smallest allowed

    def answer(size: int) -> Reply:
        return streamed_reply(lambda: padded_answer(size), {"Content-Length": str(size)} if declare_length else {})

    hostile.reply = answer(cap)
    await query(hostile.url, prometheus_max_response_bytes=cap)
    hostile.reply = answer(cap + 1)
    assert (await refusal(hostile.url, prometheus_max_response_bytes=cap)).cause is Cause.TOO_LARGE


async def test_the_cap_counts_decompressed_bytes(hostile: HostilePrometheus) -> None:
    answer = json.dumps(vector_of(5)).encode()
    hostile.reply = streamed_reply(lambda: [gzip.compress(answer)], {"Content-Encoding": "gzip"})
    await query(hostile.url)  # a gzipped answer is read
    hostile.reply = streamed_reply(lambda: [gzip.compress(answer + b" " * (100 * 1024))], {"Content-Encoding": "gzip"})
    error = await refusal(hostile.url, prometheus_max_response_bytes=100 * 1024)
    assert error.cause is Cause.TOO_LARGE


@pytest.mark.parametrize(
    ("chunks", "headers"),
    [
        ([gzip.compress(b'{"status": "success"}')[:-12]], {"Content-Encoding": "gzip"}),  # cut short
        ([b"not gzip at all"], {"Content-Encoding": "gzip"}),
        ([b"{}"], {"Content-Encoding": "br"}),  # not asked for
    ],
)
async def test_undecodable_answers_are_bad_responses(
    hostile: HostilePrometheus, chunks: list[bytes], headers: dict[str, str]
) -> None:
    hostile.reply = streamed_reply(lambda: chunks, headers)
    assert (await refusal(hostile.url)).cause is Cause.BAD_RESPONSE


async def test_series_beyond_the_cap_are_refused(hostile: HostilePrometheus) -> None:
    hostile.reply = json_reply(200, vector_of(10))
    await query(hostile.url, prometheus_max_series=10)
    hostile.reply = json_reply(200, vector_of(11))
    error = await refusal(hostile.url, prometheus_max_series=10)
    assert error.cause is Cause.TOO_LARGE and "PROMETHEUS_MAX_SERIES" in error.detail


async def test_samples_beyond_the_cap_are_refused(hostile: HostilePrometheus) -> None:
    def matrix(points: int) -> dict:
        values = [[1700000000 + i, "1"] for i in range(points)]
        series = [{"metric": {"le": str(n)}, "values": values} for n in range(3)]
        return {"status": "success", "data": {"resultType": "matrix", "result": series}}

    async def query_range(**settings: object) -> None:
        async with build_http_client(Settings(prometheus_url=hostile.url, **settings)) as http:
            await PrometheusClient(http).query_range("up", start=1, end=2, step=1, timeout=5)

    hostile.reply = json_reply(200, matrix(10))
    await query_range(prometheus_max_samples=30)
    hostile.reply = json_reply(200, matrix(11))
    with pytest.raises(PrometheusError) as caught:
        await query_range(prometheus_max_samples=30)
    assert caught.value.cause is Cause.TOO_LARGE and "PROMETHEUS_MAX_SAMPLES" in caught.value.detail


async def test_no_first_byte_in_time_is_a_timeout(hostile: HostilePrometheus) -> None:
    hostile.reply = silence(hostile)
    started = time.monotonic()
    error = await refusal(hostile.url, prometheus_first_byte_timeout_seconds=0.5)
    assert error.cause is Cause.TIMEOUT and "PROMETHEUS_FIRST_BYTE_TIMEOUT_SECONDS" in error.detail
    assert time.monotonic() - started < 2  # the first-byte limit, not the 5 s of the whole query


async def test_a_trickling_answer_is_cut_at_the_deadline(hostile: HostilePrometheus) -> None:
    """One byte every 0.2 s never trips a read timeout; only the deadline ends it."""
    hostile.reply = trickle(hostile, interval=0.2)
    started = time.monotonic()
    async with build_http_client(Settings(prometheus_url=hostile.url, prometheus_first_byte_timeout_seconds=1)) as http:
        with pytest.raises(PrometheusError) as caught:
            await PrometheusClient(http).query("up", at=1700000000, timeout=1.5)
    assert caught.value.cause is Cause.TIMEOUT
    assert 1.4 < time.monotonic() - started < 3
