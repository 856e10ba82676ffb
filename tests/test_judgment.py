"""The judgment on plain numbers: no Prometheus, no HTTP."""

from __future__ import annotations

import math

import pytest

from app.judgment import (
    CHECKS,
    ERROR_RATE,
    P95_LATENCY,
    REQUESTS,
    Bound,
    CheckSpec,
    Outcome,
    Thresholds,
    Unit,
    Verdict,
    format_value,
    judge,
)


def numbers(requests: float | None = 1000, error_rate: float | None = 0.001, p95: float | None = 0.1) -> dict:
    return {REQUESTS: requests, ERROR_RATE: error_rate, P95_LATENCY: p95}


def outcomes(judgment) -> dict[str, Outcome]:
    return {check.spec.name: check.outcome for check in judgment.checks}


def test_healthy_canary_passes() -> None:
    judgment = judge(Thresholds(), numbers(), numbers(), "5m")
    assert judgment.verdict is Verdict.PASS
    assert set(outcomes(judgment).values()) == {Outcome.PASS}
    assert judgment.reasons == ("all 5 checks passed",)


@pytest.mark.parametrize(
    ("canary", "failed"),
    [
        (numbers(p95=0.31), {"p95_latency", "p95_latency_vs_stable"}),
        (numbers(error_rate=0.021), {"error_rate", "error_rate_vs_stable"}),
        (numbers(p95=math.inf), {"p95_latency", "p95_latency_vs_stable"}),
    ],
)
def test_slo_breach_fails(canary: dict, failed: set[str]) -> None:
    judgment = judge(Thresholds(), canary, numbers(), "5m")
    assert judgment.verdict is Verdict.FAIL
    assert {name for name, o in outcomes(judgment).items() if o is Outcome.FAIL} == failed


def test_values_at_the_threshold_pass() -> None:
    # 0.1 + 0.2 is 0.30000000000000004: a rounding error must not fail a canary at the SLO.
    judgment = judge(Thresholds(), numbers(p95=0.1 + 0.2, error_rate=0.02), numbers(p95=0.3, error_rate=0.01), "5m")
    assert judgment.verdict is Verdict.PASS


def test_relative_checks_hold_the_canary_to_the_stable() -> None:
    judgment = judge(Thresholds(), numbers(p95=0.25, error_rate=0.015), numbers(p95=0.2, error_rate=0.004), "5m")
    result = outcomes(judgment)
    assert result["p95_latency"] is Outcome.PASS and result["error_rate"] is Outcome.PASS
    assert result["p95_latency_vs_stable"] is Outcome.FAIL  # 0.25 > 0.2 * 1.2
    assert result["error_rate_vs_stable"] is Outcome.FAIL  # 0.015 > 0.004 + 0.01
    limits = {c.spec.name: c.threshold for c in judgment.checks}
    assert limits["p95_latency_vs_stable"] == pytest.approx(0.24)
    assert limits["error_rate_vs_stable"] == pytest.approx(0.014)
    assert judgment.reasons[0] == "canary P95 latency 250 ms exceeds 1.2 x stable (200 ms) = 240 ms"


@pytest.mark.parametrize(
    ("requests", "phrase"),
    [
        (None, "no canary requests found in the last 5m"),
        (math.nan, "no canary requests found"),
        (0, "served only 0 requests"),
        (49, "served only 49 requests"),
    ],
)
def test_too_little_canary_traffic_is_inconclusive_even_when_numbers_look_bad(
    requests: float | None, phrase: str
) -> None:
    judgment = judge(Thresholds(), numbers(requests=requests, error_rate=1.0, p95=9.0), numbers(), "5m")
    assert judgment.verdict is Verdict.INCONCLUSIVE
    assert phrase in judgment.reasons[0]
    assert Outcome.FAIL not in outcomes(judgment).values()
    assert len(judgment.reasons) == 1  # the gate's reason, not four copies of it


def test_no_baseline_skips_the_relative_checks_and_says_why() -> None:
    judgment = judge(Thresholds(), numbers(), numbers(requests=10, p95=0.01), "5m")
    result = outcomes(judgment)
    assert judgment.verdict is Verdict.PASS
    assert result["p95_latency_vs_stable"] is Outcome.SKIPPED
    assert result["error_rate_vs_stable"] is Outcome.SKIPPED
    assert judgment.reasons == (
        "all 3 judged checks passed",
        "skipped: no stable baseline (the stable served 10 requests in the last 5m, fewer than 50)",
    )


def test_no_stable_at_all_still_fails_on_the_slo() -> None:
    empty = {REQUESTS: None, ERROR_RATE: None, P95_LATENCY: None}
    judgment = judge(Thresholds(), numbers(p95=0.5), empty, "5m")
    assert judgment.verdict is Verdict.FAIL
    assert "no stable requests found" in judgment.reasons[-1]


def test_nan_canary_value_is_inconclusive_not_pass() -> None:
    judgment = judge(Thresholds(), numbers(p95=math.nan), numbers(), "5m")
    assert judgment.verdict is Verdict.INCONCLUSIVE
    assert outcomes(judgment)["p95_latency"] is Outcome.INCONCLUSIVE
    assert judgment.reasons[0] == "no canary P95 latency data in the last 5m"


def test_stable_without_the_signal_skips_only_that_comparison() -> None:
    judgment = judge(Thresholds(), numbers(), numbers(p95=math.nan), "5m")
    assert judgment.verdict is Verdict.PASS
    assert outcomes(judgment)["p95_latency_vs_stable"] is Outcome.SKIPPED
    assert outcomes(judgment)["error_rate_vs_stable"] is Outcome.PASS


def test_a_failure_outranks_inconclusive() -> None:
    judgment = judge(Thresholds(), numbers(error_rate=math.nan, p95=0.9), numbers(), "5m")
    assert judgment.verdict is Verdict.FAIL
    assert "P95" in judgment.reasons[0]
    assert "no canary error rate data" in judgment.reasons[2]


def test_threshold_overrides() -> None:
    judgment = judge(Thresholds(p95_max_seconds=1, p95_ratio_max=10), numbers(p95=0.9), numbers(), "5m")
    assert judgment.verdict is Verdict.PASS
    assert judge(Thresholds(min_requests=5000), numbers(), numbers(), "5m").verdict is Verdict.INCONCLUSIVE


def test_a_new_check_slots_in_as_data() -> None:
    stricter = (*CHECKS, CheckSpec("p95_tight", P95_LATENCY, Bound.AT_MOST, "p95_max_seconds"))
    judgment = judge(Thresholds(p95_max_seconds=0.05), numbers(), numbers(), "5m", checks=stricter)
    assert outcomes(judgment)["p95_tight"] is Outcome.FAIL
    assert len(judgment.checks) == len(CHECKS) + 1


def test_gates_are_judged_first_whatever_their_position() -> None:
    reordered = tuple(reversed(CHECKS))
    judgment = judge(Thresholds(), numbers(requests=3, p95=5), numbers(), "5m", checks=reordered)
    assert judgment.verdict is Verdict.INCONCLUSIVE


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (0.1234, Unit.SECONDS, "123 ms"),
        (0.0004, Unit.SECONDS, "0.4 ms"),
        (2.5, Unit.SECONDS, "2.5 s"),
        (0.0125, Unit.RATIO, "1.25%"),
        (12345.6, Unit.COUNT, "12,346"),
        (math.inf, Unit.SECONDS, "+Inf"),
        (None, Unit.RATIO, "n/a"),
    ],
)
def test_format_value(value: float | None, unit: Unit, text: str) -> None:
    assert format_value(value, unit) == text
