"""mode=threshold: point estimates held to fixed numbers."""

from __future__ import annotations

import pytest

from app.judge.builtin_checks import CHECKS
from app.judge.checks import Source
from app.judge.distributions import Outcomes
from app.judge.findings import Outcome
from app.judge.threshold_rules import classify
from tests.support.observations import observed

BY_NAME = {check.name: check for check in CHECKS}


def rule(name: str, canary, stable=None, limit: float | None = None):
    check = BY_NAME[name]
    return classify(check, check.limit.default if limit is None else limit, canary, stable or observed(), "5m")


@pytest.mark.parametrize(
    ("name", "canary", "outcome"),
    [
        ("p95_latency", observed(p95=0.31), Outcome.FAIL),
        ("p95_latency", observed(p95=0.29), Outcome.PASS),
        ("p95_latency", observed(p95=20), Outcome.FAIL),  # past the top bucket: reads 10 s
        ("error_rate", observed(error_rate=0.021), Outcome.FAIL),
        ("error_rate", observed(error_rate=0.019), Outcome.PASS),
        ("canary_traffic", observed(requests=49), Outcome.INCONCLUSIVE),
        ("canary_traffic", observed(requests=50), Outcome.PASS),
    ],
)
def test_slo_and_gate(name: str, canary, outcome: Outcome) -> None:
    assert rule(name, canary).outcome is outcome


def test_values_at_the_limit_pass() -> None:
    # 0.1 + 0.2 is 0.30000000000000004: a rounding error must not fail a canary at the SLO.
    assert rule("error_rate", {Source.REQUESTS: Outcomes(ok=0.7, errors=0.1 + 0.2)}, limit=0.3).outcome is Outcome.PASS


def test_relative_checks_hold_the_canary_to_the_stable() -> None:
    latency = rule("p95_latency_vs_stable", observed(p95=0.25), observed(p95=0.2))
    assert latency.outcome is Outcome.FAIL
    assert latency.limit == pytest.approx(0.24)
    assert latency.reason == "canary P95 latency 250 ms exceeds 1.2 x stable (200 ms) = 240 ms"
    errors = rule("error_rate_vs_stable", observed(error_rate=0.015), observed(error_rate=0.004))
    assert errors.outcome is Outcome.FAIL
    assert errors.limit == pytest.approx(0.014)
    assert errors.reason == "canary error rate 1.50% exceeds stable (0.40%) + 1.00% = 1.40%"
    assert rule("error_rate_vs_stable", observed(error_rate=0.013), observed(error_rate=0.004)).outcome is Outcome.PASS


def test_no_canary_data_is_inconclusive_not_pass() -> None:
    finding = rule("p95_latency", observed(p95=None))
    assert finding.outcome is Outcome.INCONCLUSIVE
    assert finding.reason == "no canary P95 latency data in the last 5m"
    zero = rule("error_rate", observed(requests=0, p95=None))
    assert zero.outcome is Outcome.INCONCLUSIVE  # 0/0 is no error rate, not 0 %


def test_stable_without_the_number_skips_only_that_comparison() -> None:
    finding = rule("p95_latency_vs_stable", observed(), observed(p95=None))
    assert finding.outcome is Outcome.SKIPPED
    assert finding.reason == "skipped: the stable has no P95 latency data to compare with"
    assert rule("error_rate_vs_stable", observed(), observed(p95=None)).outcome is Outcome.PASS


def test_pass_reasons_say_what_held() -> None:
    assert rule("canary_traffic", observed()).reason == "canary request count 1,000 meets the minimum of 50"
    assert rule("p95_latency", observed(p95=0.2)).reason == "canary P95 latency 200 ms is within the SLO of 300 ms"
