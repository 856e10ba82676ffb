"""Identical analyses in flight together share one run; nothing is kept once it ends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.single_flight import SingleFlight
from tests.support.logs import log_lines
from tests.support.recorder import RecordingPrometheus
from tests.support.servers import AnalyzerServer

pytestmark = pytest.mark.anyio
# The stand-in answers nothing, as for a canary there all day: a first look asks for its start over the
# hour and for the last hour's minutes, then for its start over the day, then for every family over the day.
QUERIES_PER_ANALYSIS = 4


class Work:
    """A run that takes `seconds` and counts how often it was started."""

    def __init__(self, seconds: float = 0.05, fails: bool = False) -> None:
        self.seconds, self.fails, self.started = seconds, fails, 0

    async def __call__(self) -> str:
        self.started += 1
        await asyncio.sleep(self.seconds)
        if self.fails:
            raise RuntimeError("Prometheus fell over")
        return f"result {self.started}"


async def test_callers_of_one_key_in_flight_share_one_run() -> None:
    flights: SingleFlight[str] = SingleFlight()
    work = Work()
    answers = await asyncio.gather(*(flights.run("checkout", work) for _ in range(20)))
    assert work.started == 1
    assert {result for result, _ in answers} == {"result 1"}
    assert sorted(joined for _, joined in answers) == [False] + [True] * 19
    assert len(flights) == 0  # forgotten once answered


async def test_other_keys_run_apart() -> None:
    flights: SingleFlight[str] = SingleFlight()
    work = Work()
    await asyncio.gather(flights.run("checkout", work), flights.run("payments", work))
    assert work.started == 2


async def test_nothing_is_kept_after_a_run_ends() -> None:
    flights: SingleFlight[str] = SingleFlight()
    work = Work(seconds=0)
    first, _ = await flights.run("checkout", work)
    second, joined = await flights.run("checkout", work)
    assert (first, second, joined, work.started) == ("result 1", "result 2", False, 2)


async def test_a_failed_run_fails_every_caller_and_is_forgotten() -> None:
    flights: SingleFlight[str] = SingleFlight()
    failing = Work(fails=True)
    outcomes = await asyncio.gather(*(flights.run("checkout", failing) for _ in range(3)), return_exceptions=True)
    assert failing.started == 1 and all(isinstance(o, RuntimeError) for o in outcomes)
    result, _ = await flights.run("checkout", Work(seconds=0))
    assert result == "result 1"  # a new run, not the failure


async def test_a_caller_giving_up_does_not_cancel_the_others() -> None:
    flights: SingleFlight[str] = SingleFlight()
    work = Work(seconds=0.2)
    impatient = asyncio.ensure_future(flights.run("checkout", work))
    patient = asyncio.ensure_future(flights.run("checkout", work))
    await asyncio.sleep(0.05)
    impatient.cancel()
    assert await patient == ("result 1", True)
    assert impatient.cancelled() and work.started == 1


@pytest.fixture(scope="module")
def slow_prometheus() -> Iterator[RecordingPrometheus]:
    with RecordingPrometheus(delay=0.5) as recorder:
        yield recorder


@pytest.fixture(scope="module")
def server(start_analyzer: Callable[..., AnalyzerServer], slow_prometheus: RecordingPrometheus) -> AnalyzerServer:
    return start_analyzer(prometheus_url=slow_prometheus.url)


async def test_identical_analyses_in_flight_send_one_query(
    server: AnalyzerServer, slow_prometheus: RecordingPrometheus
) -> None:
    params = {"service": "checkout", "at": "2026-11-23T10:00:00Z"}
    before = len(slow_prometheus.queries)
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as client:
        answers = await asyncio.gather(*(client.get("/analyze", params=params) for _ in range(20)))
    assert [a.status_code for a in answers] == [200] * 20
    # One run: when the canary started, then every family since, asked once for all twenty.
    assert len(slow_prometheus.queries) == before + QUERIES_PER_ANALYSIS
    assert len({a.json()["trace_id"] for a in answers}) == 20  # each answer its own trace
    assert len({a.json()["verdict"] for a in answers}) == 1
    shared = [line["shared"] for line in log_lines(server.logs()) if line.get("event") == "analysis"][-20:]
    assert sorted(shared) == [False] + [True] * 19

    # Asked again once answered: asked of Prometheus again, nothing kept but where the canary started
    # (there all day): the families, with the minutes since checked inside, in one query.
    await asyncio.to_thread(server.analyze, **params)
    assert len(slow_prometheus.queries) == before + QUERIES_PER_ANALYSIS + 1


async def test_other_inputs_are_other_analyses(server: AnalyzerServer, slow_prometheus: RecordingPrometheus) -> None:
    before = len(slow_prometheus.queries)
    variants = [{"p95_max_seconds": "0.5"}, {"p95_max_seconds": "0.6"}, {"canary": "v2"}, {"window": "10m"}]
    same = {"service": "payments", "at": "2026-11-23T10:00:00Z"}  # a canary no other test has asked about
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as client:
        await asyncio.gather(*(client.get("/analyze", params=same | variant) for variant in variants))
    assert len(slow_prometheus.queries) == before + QUERIES_PER_ANALYSIS * len(variants)


def test_now_is_rounded_down_to_the_second(server: AnalyzerServer) -> None:
    before = datetime.now(UTC)
    evaluated_at = datetime.fromisoformat(server.analyze(service="checkout").json()["evaluated_at"])
    assert evaluated_at.microsecond == 0
    assert before - timedelta(seconds=1) < evaluated_at <= datetime.now(UTC)
