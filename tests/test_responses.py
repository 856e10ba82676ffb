"""The result view, built once: what the JSON, the report, the CLI, the audit line and the metrics read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.analysis import plan_for, run_analysis
from app.judge.builtin_checks import CHECKS
from app.judge.distributions import Outcomes
from app.models import AnalysisRequest, RequestModels
from app.presets import PRESETS, Preset
from app.responses import analysis_response
from app.settings import Settings
from tests.support.business import CONVERSION_FLOOR
from tests.support.fake_prometheus import FakePrometheus
from tests.support.observations import observed

pytestmark = pytest.mark.anyio
AT = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
STARTED = AT - timedelta(minutes=12)  # when the canary's series began


def fake_for(request: AnalysisRequest, preset: Preset, canary, stable) -> FakePrometheus:
    span = "12m" if request.mode == "statistical" and request.guarantee == "anytime" else request.window
    plan = plan_for(request, preset, span)
    return FakePrometheus(plan, {"canary": canary, "stable": stable}, canary_started=STARTED.timestamp())


async def view(canary, stable, **fields):
    request = AnalysisRequest(service="checkout", at=AT, **fields)
    analysis = await run_analysis(request, fake_for(request, Preset(), canary, stable), Preset(), budget_seconds=2)
    return analysis_response(analysis, Settings(prometheus_url="http://prom:9090"))


async def test_each_check_reads_as_a_person_would() -> None:
    body = await view(observed(requests=600, p95=0.45), observed(requests=3000, p95=0.12), mode="threshold")
    checks = {check.name: check for check in body.checks}
    p95 = checks["p95_latency"]
    assert p95.verdict == "fail" and p95.unit == "seconds" and p95.title == "P95 latency"
    assert (p95.shown.canary, p95.shown.stable, p95.shown.threshold) == ("450 ms", "120 ms", "300 ms")
    # The P95 shown interpolates inside a bucket; the bucket bounds where the true P95 lies.
    assert (p95.canary_bucket.low, p95.canary_bucket.high) == (0.25, 0.5)
    assert (p95.stable_bucket.low, p95.stable_bucket.high) == (0.1, 0.25)
    assert checks["error_rate"].canary_bucket is None
    assert checks["canary_traffic"].shown.canary == "600"
    assert body.confidence is None and p95.statistics is None  # threshold mode runs no test


async def test_statistical_checks_carry_their_evidence() -> None:
    body = await view(observed(requests=600, p95=0.45), observed(requests=3000, p95=0.12))
    assert body.mode == "statistical"
    checks = {check.name: check for check in body.checks}
    versus = checks["p95_latency_vs_stable"].statistics
    assert versus.method == "brunner-munzel, anytime"
    assert versus.shown.startswith(
        f"{versus.estimate:.3g}x the stable's latency (1.1x tolerated); a fail needs the lower bound above the "
        f"limit: {versus.interval.low:.3g}x (99.875% confidence at any look)"
    )
    errors = checks["error_rate"].statistics
    assert (errors.method, errors.unit, errors.estimate) == ("e-process", "ratio", pytest.approx(0.001))
    assert errors.interval.low <= errors.estimate <= errors.interval.high


async def test_the_answer_says_which_guarantee_applied_and_on_what_data() -> None:
    anytime = (await view(observed(), observed(), polls=8, failure_limit=2)).confidence
    assert (anytime.guarantee, anytime.data, anytime.span) == ("anytime", "since_canary_start", "12m")
    assert anytime.since == STARTED and anytime.alpha_per_check == pytest.approx(0.0025)
    # However many polls the request names, they do not enter the anytime guarantee: the answer does not show them.
    assert (anytime.polls, anytime.failure_limit) == (None, None)
    fixed = (await view(observed(), observed(), guarantee="fixed_polls")).confidence
    assert (fixed.guarantee, fixed.data, fixed.span) == ("fixed_polls", "window", "5m")
    assert fixed.since == AT - timedelta(minutes=5) and fixed.alpha_per_check == pytest.approx(0.001)
    assert (fixed.polls, fixed.failure_limit) == (5, 1)


async def test_the_answer_keeps_its_fields_and_adds_the_queries_sent() -> None:
    body = await view(observed(), observed(), p95_max_seconds=0.5)
    assert body.thresholds == {
        "min_requests": 50,
        "current_share_min": 0.1,
        "p95_max_seconds": 0.5,
        "error_rate_max": 0.02,
        "p95_ratio_max": 1.1,
        "error_rate_delta_max": 0.005,
    }
    old_rules = await view(observed(), observed(), mode="threshold")
    assert (old_rules.thresholds["p95_ratio_max"], old_rules.thresholds["error_rate_delta_max"]) == (1.2, 0.01)
    assert set(body.queries) == {"families"}  # request counts and latency buckets, in one query
    assert set(body.links.prometheus) == {
        f"{role}_{key}"
        for role in ("canary", "stable")
        for key in ("requests", "current_requests", "error_rate", "p95_seconds")
    }
    assert all(url.startswith("http://prom:9090/graph?") for url in body.links.prometheus.values())


async def test_numbers_that_are_not_finite_travel_as_null() -> None:
    body = await view(observed(requests=600, p95=20), observed(requests=0, p95=None))
    checks = {check.name: check for check in body.checks}
    assert checks["p95_latency"].canary == 10  # histogram_quantile's top finite bound
    assert checks["p95_latency"].canary_bucket.high is None  # the +Inf bucket: unbounded
    assert checks["error_rate_vs_stable"].stable is None  # 0/0
    assert checks["error_rate_vs_stable"].shown.stable == "n/a"


async def test_grafana_link_opens_the_presets_dashboard() -> None:
    request = AnalysisRequest(service="reviews", canary="v2", stable="v1", preset="istio", at=AT)
    preset = PRESETS["istio"]
    analysis = await run_analysis(request, fake_for(request, preset, observed(), observed()), preset, budget_seconds=2)
    settings = Settings(prometheus_url="http://prom:9090", grafana_url="https://grafana.example")
    body = analysis_response(analysis, settings)
    assert body.links.grafana.startswith("https://grafana.example/d/canary-vs-stable-istio/")


async def test_each_estimate_says_what_it_estimates() -> None:
    """A P95 check's estimate is a share of requests: said so, beside the P95 in the canary column."""
    body = await view(observed(requests=600, p95=0.45), observed(requests=3000, p95=0.12))
    checks = {check.name: check.statistics for check in body.checks if check.statistics}
    slower = checks["p95_latency"]
    assert slower.estimate_shown == f"{slower.estimate * 100:.2f}% slower than 300 ms (5.00% allowed)"
    assert slower.limit_shown == "5.00% allowed" and slower.limit == pytest.approx(0.05)
    errors = checks["error_rate"]
    assert errors.estimate_shown == "0.10% error rate (2.00% allowed)"
    factor = checks["p95_latency_vs_stable"]
    assert factor.estimate_shown == f"{factor.estimate:.3g}x the stable's latency (1.1x tolerated)"
    # A difference between two shares is in points: +0.00 pp, not "0.00%" as if it were a share.
    difference = checks["error_rate_vs_stable"]
    assert difference.estimate_shown == "+0.00 pp error rate vs the stable's (+0.50 pp tolerated)"
    assert difference.shown.startswith(difference.estimate_shown + "; a fail needs the lower bound above the limit: -")
    assert " pp (99.875% confidence at any look); a pass needs the upper bound within it: +" in difference.shown


async def test_each_bound_is_shown_as_what_it_is() -> None:
    """The two ends are one-sided bounds at different confidences, each deciding one outcome: not one interval."""
    body = await view(observed(requests=600, p95=0.45), observed(requests=3000, p95=0.12))
    errors = next(check.statistics for check in body.checks if check.name == "error_rate")
    fail, passing = errors.fail_bound, errors.pass_bound
    assert (fail.side, fail.value, fail.confidence, fail.anytime) == ("lower", errors.interval.low, 0.99875, True)
    assert (passing.side, passing.value, passing.confidence, passing.anytime) == (
        "upper",
        errors.interval.high,
        0.6,
        False,
    )
    low, high = f"{fail.value * 100:.2f}%", f"{passing.value * 100:.2f}%"
    assert fail.shown == f"≥ {low} with 99.875% confidence at any look"
    assert passing.shown == f"≤ {high} with 60% confidence"
    assert errors.shown == (
        f"0.10% error rate (2.00% allowed); a fail needs the lower bound above the limit: {low} (99.875% confidence "
        f"at any look); a pass needs the upper bound within it: {high} (60% confidence)"
    )
    # On a window, the fail side's confidence is per answer (alpha split over the polls), not at any look.
    fixed = await view(observed(requests=600, p95=0.45), observed(requests=3000, p95=0.12), guarantee="fixed_polls")
    errors = next(check.statistics for check in fixed.checks if check.name == "error_rate")
    assert (errors.fail_bound.confidence, errors.fail_bound.anytime) == (pytest.approx(0.999), False)
    assert "(99.9% confidence); a pass needs" in errors.shown and "any look" not in errors.shown


async def test_where_lower_is_worse_the_upper_bound_decides_a_fail() -> None:
    """A share that must stay above its SLO (a conversion rate) fails on its upper bound, passes on its lower."""
    request = RequestModels.of((*CHECKS, CONVERSION_FLOOR)).request(service="checkout", at=AT)
    visits = {"check:conversion": Outcomes(ok=4000 - 240, errors=240)}  # 240 orders in 4,000 visits: 6 %
    canary, stable = {**observed(), **visits}, {**observed(), **visits}
    analysis = await run_analysis(request, fake_for(request, Preset(), canary, stable), Preset(), budget_seconds=2)
    body = analysis_response(analysis, Settings(prometheus_url="http://prom:9090"))
    [conversion] = [check for check in body.checks if check.name == "conversion"]
    statistics = conversion.statistics
    assert conversion.verdict == "fail"
    assert (statistics.fail_bound.side, statistics.pass_bound.side) == ("upper", "lower")
    assert statistics.fail_bound.value == statistics.interval.high < 0.1
    assert statistics.fail_bound.shown.startswith("≤ ") and statistics.fail_bound.anytime
    assert statistics.estimate_shown == "6.00% conversion rate (10.00% needed)"
    assert "; a fail needs the upper bound below the limit: " in statistics.shown
    assert "; a pass needs the lower bound within it: " in statistics.shown


async def test_a_number_from_too_few_requests_is_shown_as_such() -> None:
    """6 canary requests against the 50 min_requests needs: their P95 of 2 s means nothing yet, and says so."""
    body = await view(observed(requests=6, p95=2.0), observed(requests=3000, p95=0.087))
    checks = {check.name: check for check in body.checks}
    assert body.verdict == "inconclusive"
    assert checks["canary_traffic"].shown.canary == "6"  # the count itself is exact
    for name in ("p95_latency", "error_rate", "p95_latency_vs_stable", "error_rate_vs_stable"):
        assert checks[name].shown.canary == "6 requests: not yet meaningful", name
    assert checks["p95_latency"].canary == pytest.approx(2.0)  # the JSON's number stays as measured
    assert checks["p95_latency"].shown.stable == "87 ms"
    # The stable's numbers alike: 10 requests, under the 50 needed (its own numbers are never judged).
    thin_stable = await view(observed(requests=600, p95=0.12), observed(requests=10, p95=0.3))
    p95 = next(check for check in thin_stable.checks if check.name == "p95_latency")
    assert (p95.shown.canary, p95.shown.stable, p95.stable) == ("120 ms", "10 requests: not yet meaningful", 0.3)
    # As many as the gate needs: a number like any other.
    enough = await view(observed(requests=50, p95=0.2), observed(requests=3000, p95=0.087), min_requests=50)
    assert next(check for check in enough.checks if check.name == "p95_latency").shown.canary == "200 ms"
