"""One analysis in process: what data it judges, the plan, the measurement through a fake Prometheus,
the judgment."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from app.analysis import Data, plan_for, run_analysis
from app.canary_lives import CanaryLives
from app.judge.judgment import Verdict
from app.measurement import FAMILIES, Role
from app.models import AnalysisRequest
from app.presets import Preset
from tests.support.fake_prometheus import START_QUERY, FakePrometheus
from tests.support.observations import observed

pytestmark = pytest.mark.anyio
AT = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def fake_for(request, canary, stable, span: str, started: float | None = None) -> FakePrometheus:
    """Both versions as given over the span, and each minute alike."""
    plan = plan_for(request, Preset(), span)
    versions = {Role.CANARY: canary, Role.STABLE: stable}
    return FakePrometheus(plan, versions, canary_started=started, per_minute=versions)


async def test_anytime_judges_everything_since_the_canary_started() -> None:
    """First when the canary's series began, then both versions over the span since: data that only grows."""
    request = AnalysisRequest(service="checkout", at=AT)
    started = (AT - timedelta(minutes=20)).timestamp()
    fake = fake_for(request, observed(p95=0.45), observed(p95=0.12), "20m", started)
    analysis = await run_analysis(request, fake, Preset(), budget_seconds=2)
    # The start, and at the same time the last hour's minutes; then the families, and the minutes since.
    assert len(fake.sent) == 3 and fake.sent[0].startswith(START_QUERY)
    assert 'version="canary"' in fake.sent[0] and "[1h:1m]" in fake.sent[0]  # found within the hour
    assert fake.sent[1] == analysis.plan.minutely().calls()[FAMILIES]
    assert fake.sent[2] == analysis.plan.calls()[FAMILIES] and "[20m]" in fake.sent[2]
    assert analysis.span.data is Data.SINCE_CANARY_START
    assert analysis.span.since == AT - timedelta(minutes=20) and analysis.span.duration == "20m"
    assert analysis.judgment.verdict is Verdict.FAIL
    assert analysis.evaluated_at == AT
    assert analysis.expressions["p95_latency"][Role.CANARY].startswith("histogram_quantile(0.95,")
    assert "[20m]" in analysis.expressions["error_rate"][Role.STABLE]
    assert 'version="stable"' in analysis.expressions["error_rate"][Role.STABLE]


async def test_a_canary_younger_than_the_window_is_judged_on_the_window() -> None:
    request = AnalysisRequest(service="checkout", window="5m", at=AT)
    started = (AT - timedelta(seconds=90)).timestamp()
    analysis = await run_analysis(request, fake_for(request, observed(), observed(), "5m", started), Preset(), 2)
    assert analysis.span.data is Data.SINCE_CANARY_START and analysis.span.duration == "5m"


async def test_a_start_between_seconds_widens_the_span_to_include_it() -> None:
    request = AnalysisRequest(service="checkout", at=AT)
    started = AT.timestamp() - 1200.4
    analysis = await run_analysis(request, fake_for(request, observed(), observed(), "20m1s", started), Preset(), 2)
    assert analysis.span.duration == "20m1s"


async def test_a_canary_there_through_the_hour_is_looked_for_over_the_day() -> None:
    request = AnalysisRequest(service="checkout", at=AT)
    started = (AT - timedelta(hours=5)).timestamp()
    fake = fake_for(request, observed(), observed(), "5h", started)
    analysis = await run_analysis(request, fake, Preset(), 2)
    assert len(fake.sent) == 4 and "[1h:1m]" in fake.sent[0] and "[1d:1m]" in fake.sent[2]
    assert analysis.span.data is Data.SINCE_CANARY_START and analysis.span.since == AT - timedelta(hours=5)


async def test_a_canary_older_than_the_look_back_is_judged_on_its_last_day() -> None:
    request = AnalysisRequest(service="checkout", at=AT)
    fake = fake_for(request, observed(), observed(), "1d", None)
    analysis = await run_analysis(request, fake, Preset(), 2)
    assert analysis.span.data is Data.LAST_DAY and analysis.span.since == AT - timedelta(days=1)
    assert "[1d:1m]" in fake.sent[2]


async def test_a_canary_older_than_the_look_back_is_remembered_so() -> None:
    """A rollout paused for days, its background analysis asking every minute: one query a minute, not three."""
    request = AnalysisRequest(service="checkout", at=AT)
    lives = CanaryLives()
    await run_analysis(request, fake_for(request, observed(), observed(), "1d", None), Preset(), 2, lives=lives)
    later = AnalysisRequest(service="checkout", at=AT + timedelta(minutes=1))
    fake = fake_for(later, observed(), observed(), "1d", None)
    analysis = await run_analysis(later, fake, Preset(), 2, lives=lives)
    assert fake.sent == [analysis.plan.calls()[FAMILIES]] and "[2m:1m]" in fake.sent[0]
    assert analysis.span.data is Data.LAST_DAY and analysis.span.since == AT + timedelta(minutes=1) - timedelta(days=1)


@pytest.mark.parametrize("fields", [{"guarantee": "fixed_polls"}, {"mode": "threshold"}])
async def test_fixed_polls_and_threshold_judge_the_window_in_one_query(fields: dict) -> None:
    request = AnalysisRequest(service="checkout", window="10m", at=AT, **fields)
    fake = fake_for(request, observed(p95=0.45), observed(p95=0.12), "10m")
    analysis = await run_analysis(request, fake, Preset(), budget_seconds=2)
    assert fake.sent == [analysis.plan.calls()[FAMILIES]]
    assert analysis.span.data is Data.WINDOW and analysis.span.since == AT - timedelta(minutes=10)
    assert analysis.judgment.verdict is Verdict.FAIL


async def test_limits_asked_for_reach_the_judgment() -> None:
    request = AnalysisRequest(service="checkout", p95_max_seconds=0.5, p95_ratio_max=5, at=AT)
    started = (AT - timedelta(minutes=10)).timestamp()
    fake = fake_for(request, observed(p95=0.45), observed(), "10m", started)
    analysis = await run_analysis(request, fake, Preset(), 2)
    assert analysis.judgment.verdict is Verdict.PASS


async def test_the_next_analysis_looks_back_only_to_the_last_and_measures_at_once() -> None:
    """Argo asks again a minute later: the start found is checked over the minutes since, in the same
    query as the families measured from it."""
    request = AnalysisRequest(service="checkout", at=AT)
    started = (AT - timedelta(minutes=20)).timestamp()
    lives = CanaryLives()
    first = fake_for(request, observed(), observed(), "20m", started)
    await run_analysis(request, first, Preset(), 2, lives=lives)
    assert "[1h:1m]" in first.sent[0]
    later = AnalysisRequest(service="checkout", at=AT + timedelta(minutes=1))
    fake = fake_for(later, observed(), observed(), "21m", started)
    fake.delay = 0.2
    began = time.perf_counter()
    analysis = await run_analysis(later, fake, Preset(), 2, lives=lives)
    assert time.perf_counter() - began < 0.35  # one round trip
    assert fake.sent == [analysis.plan.calls()[FAMILIES]] and "[2m:1m]" in fake.sent[0]
    assert analysis.plan.start_check is not None and analysis.plan.start_check.startswith(START_QUERY)
    assert analysis.span.duration == "21m" and analysis.span.data is Data.SINCE_CANARY_START


async def test_a_canary_that_came_back_is_measured_again_from_its_new_start() -> None:
    request = AnalysisRequest(service="checkout", at=AT)
    lives = CanaryLives()
    first = fake_for(request, observed(), observed(), "20m", (AT - timedelta(minutes=20)).timestamp())
    await run_analysis(request, first, Preset(), 2, lives=lives)
    # Gone, and back 3 minutes later: 7 minutes since its new start at the next look.
    later = AnalysisRequest(service="checkout", at=AT + timedelta(minutes=10))
    restarted = (AT + timedelta(minutes=3)).timestamp()
    fake = fake_for(later, observed(), observed(), "7m", restarted)
    fake.answers |= fake_for(later, observed(), observed(), "30m", restarted).answers
    analysis = await run_analysis(later, fake, Preset(), 2, lives=lives)
    assert analysis.span.duration == "7m" and fake.sent[-1] == analysis.plan.calls()[FAMILIES]
    # The guess with the short look-back and the ten minutes since the last analysis at the same time, then
    # the families from the new start.
    assert len(fake.sent) == 3 and fake.sent[1] == analysis.plan.minutely().calls()[FAMILIES]
    assert analysis.plan.start_check is None
