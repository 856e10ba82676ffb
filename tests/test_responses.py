"""The result view, built once: what the JSON, the report, the CLI, the audit line and the metrics read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.analysis import plan_for, run_analysis
from app.models import AnalysisRequest
from app.presets import PRESETS, Preset
from app.responses import analysis_response
from app.settings import Settings
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
    assert versus.shown.startswith(f"{versus.estimate:.3g}x (")
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
