"""mode=statistical: three-way decisions with their evidence, calibration and power on fixed seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.judge.builtin_checks import CHECKS
from app.judge.checks import Source
from app.judge.distributions import Histogram, Outcomes
from app.judge.findings import Outcome
from app.judge.judgment import Confidence
from app.judge.statistical_rules import Levels, classify
from tests.support.observations import BOUNDS, sampled

BY_NAME = {check.name: check for check in CHECKS}
LEVELS = Levels(alpha=0.001, pass_confidence=0.6)


def rule(name: str, canary, stable=None, limit: float | None = None, levels: Levels = LEVELS):
    check = BY_NAME[name]
    limit = check.limit.statistical_default or check.limit.default if limit is None else limit
    return classify(check, limit, canary, stable or {}, "5m", levels)


def latency(*per_bucket: float) -> dict:
    """Counts per bucket of the default bounds (5 ms ... 10 s, +Inf), the rest 0."""
    counts = np.zeros(len(BOUNDS))
    counts[: len(per_bucket)] = per_bucket
    return {Source.LATENCY: Histogram(BOUNDS, tuple(np.cumsum(counts)))}


def requests(total: float, errors: float) -> dict:
    return {Source.REQUESTS: Outcomes(ok=total - errors, errors=errors)}


# --- the latency SLO, on the share of requests slower than it ---------------------------------


def test_latency_slo_on_a_bucket_bound() -> None:
    # 1,000 requests, the SLO 250 ms a bucket bound: 200 slower is 20 %, far over the 5 % allowed.
    over = rule("p95_latency", latency(0, 0, 0, 300, 300, 200, 200), limit=0.25)
    assert over.outcome is Outcome.FAIL
    assert over.evidence.estimate == pytest.approx(0.2) and over.evidence.low > 0.05
    assert "20% of canary requests took longer than 250 ms" in over.reason
    under = rule("p95_latency", latency(0, 0, 0, 500, 490, 0, 10), limit=0.25)
    assert under.outcome is Outcome.PASS
    assert under.evidence.high <= 0.05 and "under the 5% allowed" in under.reason
    close = rule("p95_latency", latency(0, 0, 0, 500, 450, 0, 50), limit=0.25)  # exactly 5 %
    assert close.outcome is Outcome.INCONCLUSIVE
    assert "more canary requests would decide it" in close.reason


def test_latency_slo_between_bounds_is_bracketed() -> None:
    # The SLO 300 ms lies between the bounds 250 ms and 500 ms.
    over = rule("p95_latency", latency(0, 0, 0, 0, 700, 200, 0, 100), limit=0.3)  # 10 % over 500 ms
    assert over.outcome is Outcome.FAIL
    assert "between bucket bounds 250 ms and 500 ms" in over.reason
    under = rule("p95_latency", latency(0, 0, 0, 0, 990, 0, 10), limit=0.3)  # 1 % over 250 ms
    assert under.outcome is Outcome.PASS
    unknowable = rule("p95_latency", latency(0, 0, 0, 0, 800, 0, 200), limit=0.3)  # 20 % in (250, 500]
    assert unknowable.outcome is Outcome.INCONCLUSIVE
    assert "add a bucket at 300 ms" in unknowable.reason
    assert unknowable.evidence.estimate is None  # no single share to report, only its bracket


def test_latency_slo_outside_the_buckets() -> None:
    # Under the first bound nothing can pass; over the last finite one nothing can fail.
    assert rule("p95_latency", latency(1000), limit=0.001).outcome is Outcome.INCONCLUSIVE
    assert rule("p95_latency", latency(*[0] * 11, 1000), limit=20).outcome is Outcome.INCONCLUSIVE


# --- the error-rate SLO -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "errors", "outcome"),
    [(1000, 60, Outcome.FAIL), (1000, 5, Outcome.PASS), (1000, 20, Outcome.INCONCLUSIVE), (60, 0, Outcome.PASS)],
)
def test_error_slo(total: float, errors: float, outcome: Outcome) -> None:
    finding = rule("error_rate", requests(total, errors), limit=0.02)
    assert finding.outcome is outcome
    assert f"{errors:,} errors in {total:,} requests" in finding.reason


# --- against the stable ---------------------------------------------------------------------------


def test_latency_vs_stable_names_the_factor() -> None:
    rng = np.random.default_rng(3)
    slow = rule("p95_latency_vs_stable", sampled(rng, 3000, factor=1.5), sampled(rng, 30000))
    assert slow.outcome is Outcome.FAIL
    assert slow.evidence.low > 1.1 and slow.evidence.estimate == pytest.approx(1.5, rel=0.06)
    assert slow.reason.startswith("canary latency is 1.")
    assert "a canary request is slower than a stable one" in slow.reason
    alike = rule("p95_latency_vs_stable", sampled(rng, 3000), sampled(rng, 30000))
    assert alike.outcome is Outcome.PASS and alike.evidence.high <= 1.1
    thin = rule("p95_latency_vs_stable", sampled(rng, 60, factor=1.15), sampled(rng, 30000))
    assert thin.outcome is Outcome.INCONCLUSIVE and "more canary requests would decide it" in thin.reason


def test_latency_vs_stable_threshold_stays_in_seconds() -> None:
    rng = np.random.default_rng(4)
    stable = sampled(rng, 30000)
    finding = rule("p95_latency_vs_stable", sampled(rng, 3000, factor=1.5), stable)
    assert finding.limit == pytest.approx(BY_NAME["p95_latency"].value(stable) * 1.1)


def test_histograms_without_shared_bounds_cannot_be_compared() -> None:
    other = {Source.LATENCY: Histogram((0.3, 0.7, math.inf), (10, 20, 30))}
    finding = rule("p95_latency_vs_stable", other, latency(10, 10, 10))
    assert finding.outcome is Outcome.SKIPPED and "share no bucket bounds" in finding.reason


@pytest.mark.parametrize(
    ("canary", "stable", "outcome"),
    [
        (requests(2000, 80), requests(20000, 200), Outcome.FAIL),  # 4 % vs 1 %
        (requests(2000, 20), requests(20000, 200), Outcome.PASS),
        (requests(200, 4), requests(20000, 200), Outcome.INCONCLUSIVE),
    ],
)
def test_errors_vs_stable(canary: dict, stable: dict, outcome: Outcome) -> None:
    finding = rule("error_rate_vs_stable", canary, stable)
    assert finding.outcome is outcome
    assert finding.evidence.method == "miettinen-nurminen"
    assert finding.evidence.low <= finding.evidence.estimate <= finding.evidence.high


def test_without_data_nothing_is_decided() -> None:
    empty = {Source.REQUESTS: Outcomes(0, 0), Source.LATENCY: Histogram(BOUNDS, (0.0,) * len(BOUNDS))}
    for name in ("p95_latency", "error_rate"):
        assert rule(name, empty).outcome is Outcome.INCONCLUSIVE
    for name in ("p95_latency_vs_stable", "error_rate_vs_stable"):
        assert rule(name, requests(1000, 1) | latency(500, 500), empty).outcome is Outcome.SKIPPED


# --- calibration and power, on fixed seeds ---------------------------------------------------------

CALIBRATION = Levels(alpha=0.05, pass_confidence=0.8)
RUNS = 400


def fail_rate(draw, name: str, limit: float, seed: int, levels: Levels = CALIBRATION) -> float:
    rng = np.random.default_rng(seed)
    fails = sum(rule(name, *draw(rng), limit=limit, levels=levels).outcome is Outcome.FAIL for _ in range(RUNS))
    return fails / RUNS


def test_calibration_at_the_limit() -> None:
    """A canary exactly at its limit fails about alpha of the time: not much more (false aborts),
    not much less (a test too timid to catch anything). 400 runs at alpha 5 %: 2 % to 8 %."""
    at_the_slo = fail_rate(lambda rng: (sampled(rng, 800, error_rate=0.02),), "error_rate", 0.02, seed=11)
    at_the_margin = fail_rate(
        lambda rng: (sampled(rng, 800, error_rate=0.015), sampled(rng, 8000, error_rate=0.01)),
        "error_rate_vs_stable",
        0.005,
        seed=12,
    )
    same_latency = fail_rate(lambda rng: (sampled(rng, 800), sampled(rng, 8000)), "p95_latency_vs_stable", 1.0, 13)
    # 5 % over the SLO: the 250 ms bound sits at the 95th percentile of lognormal(median, 0.5).
    median = 0.25 / math.exp(0.5 * 1.6448536)
    at_the_p95 = fail_rate(lambda rng: (sampled(rng, 800, median=median),), "p95_latency", 0.25, seed=14)
    for rate in (at_the_slo, at_the_margin, same_latency, at_the_p95):
        assert 0.02 <= rate <= 0.08, (at_the_slo, at_the_margin, same_latency, at_the_p95)


def test_healthy_canaries_are_not_failed_at_the_service_level() -> None:
    """With the default levels (alpha per check and answer 0.001), same-distribution canaries never fail."""
    levels = Confidence().levels(CHECKS)
    for name, limit, draw in [
        ("p95_latency_vs_stable", 1.1, lambda rng: (sampled(rng, 500), sampled(rng, 5000))),
        ("error_rate_vs_stable", 0.005, lambda rng: (sampled(rng, 500, 0.02), sampled(rng, 5000, 0.02))),
    ]:
        assert fail_rate(draw, name, limit, seed=21, levels=levels) == 0


def test_power_against_known_regressions() -> None:
    """Every request 25 % slower, or 3 points more 5xx, with 2,000 canary requests: caught."""
    levels = Confidence().levels(CHECKS)
    slower = fail_rate(
        lambda rng: (sampled(rng, 2000, factor=1.25), sampled(rng, 20000)), "p95_latency_vs_stable", 1.1, 31, levels
    )
    erring = fail_rate(
        lambda rng: (sampled(rng, 2000, 0.04), sampled(rng, 20000, 0.01)), "error_rate_vs_stable", 0.005, 32, levels
    )
    assert slower >= 0.95 and erring >= 0.95, (slower, erring)


def test_alpha_is_split_over_polls_and_checks() -> None:
    # P(more than failure_limit false fails) <= polls * a / (failure_limit + 1), shared by 4 checks.
    assert Confidence(alpha=0.01, polls=5, failure_limit=1).levels(CHECKS).alpha == pytest.approx(0.001)
    assert Confidence(alpha=0.01, polls=10, failure_limit=0).levels(CHECKS).alpha == pytest.approx(0.00025)
