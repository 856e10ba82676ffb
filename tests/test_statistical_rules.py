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
from tests.support.observations import BOUNDS, lognormal, sampled

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
    # The SLO 300 ms lies between the bounds 250 ms and 500 ms, and the bounds alone decide.
    over = rule("p95_latency", latency(0, 0, 0, 0, 700, 200, 0, 100), limit=0.3)  # 10 % over 500 ms
    assert over.outcome is Outcome.FAIL
    assert "between bucket bounds 250 ms and 500 ms" in over.reason
    under = rule("p95_latency", latency(0, 0, 0, 0, 990, 0, 10), limit=0.3)  # 1 % over 250 ms
    assert under.outcome is Outcome.PASS


def test_latency_slo_between_bounds_is_modelled() -> None:
    """A true P95 of 450 ms, 20 % slower than 300 ms: only 3 % over 500 ms, so the bounds alone could
    not fail it; the shape inside the bucket does. At 240 ms the same for a pass."""
    over = rule("p95_latency", {Source.LATENCY: lognormal(0.45, 2000)}, limit=0.3)
    assert over.outcome is Outcome.FAIL
    assert over.evidence.method == "clopper-pearson, shape-bounded"
    assert over.evidence.estimate == pytest.approx(0.2, abs=0.01)
    assert over.reason.startswith(
        "canary P95 latency 484 ms exceeds the SLO of 300 ms: 300 ms lies between bucket bounds 250 ms and "
        "500 ms; modelling the shape inside that bucket, about 20.2% of canary requests took longer than 300 ms "
        "(17.5% to 21.6% for any shape that does not turn inside it); at least 15% with 99.9% confidence"
    )
    under = rule("p95_latency", {Source.LATENCY: lognormal(0.24, 2000)}, limit=0.3)
    assert under.outcome is Outcome.PASS and under.evidence.high <= 0.05


def test_what_the_buckets_cannot_show_stays_unknown() -> None:
    # 80 % under 100 ms, 20 % in (250, 500], none elsewhere: the 20 % may all be at 251 ms, or all at 499.
    unknowable = rule("p95_latency", latency(0, 0, 0, 0, 800, 0, 200), limit=0.3)
    assert unknowable.outcome is Outcome.INCONCLUSIVE
    assert "the buckets cannot tell whether more than 5% took longer than 300 ms" in unknowable.reason
    assert "a bucket bound at 300 ms would count it exactly" in unknowable.reason


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


# --- at any look ----------------------------------------------------------------------------------

ANYTIME = Levels(alpha=0.0025, pass_confidence=0.6, anytime=True)


def test_anytime_bounds_say_so_and_are_wider() -> None:
    canary, stable = requests(2000, 80), requests(20000, 200)  # 4 % vs 1 %
    once, always = rule("error_rate_vs_stable", canary, stable), rule("error_rate_vs_stable", canary, stable,
                                                                        levels=ANYTIME)  # fmt: skip
    assert always.outcome is Outcome.FAIL and always.evidence.method == "miettinen-nurminen and e-process, anytime"
    assert "with 99.75% confidence at any look" in always.reason
    assert always.evidence.low < once.evidence.low < always.evidence.estimate
    slo = rule("error_rate", requests(1000, 60), limit=0.02, levels=ANYTIME)
    assert slo.outcome is Outcome.FAIL and slo.evidence.method == "e-process"
    assert slo.evidence.p_value < ANYTIME.alpha


def grown(rng, draws: list[tuple[int, dict]]) -> list[tuple[dict, ...]]:
    """The same canary (and stable) looked at as its requests accumulate: each look's data contain
    the last's (counters since the canary started), `draws` giving each step's requests and how."""
    looks, totals = [], None
    for count, how in draws:
        step = tuple(sampled(rng, count * scale, **fields) for scale, fields in how)
        totals = step if totals is None else tuple(added(a, b) for a, b in zip(totals, step, strict=True))
        looks.append(totals)
    return looks


def added(a: dict, b: dict) -> dict:
    outcomes = Outcomes(
        a[Source.REQUESTS].ok + b[Source.REQUESTS].ok, a[Source.REQUESTS].errors + b[Source.REQUESTS].errors
    )
    ha, hb = a[Source.LATENCY], b[Source.LATENCY]
    histogram = Histogram(ha.bounds, tuple(x + y for x, y in zip(ha.cumulative, hb.cumulative, strict=True)))
    return {Source.REQUESTS: outcomes, Source.LATENCY: histogram}


@pytest.mark.parametrize(
    ("name", "limit", "how"),
    [
        ("error_rate", 0.02, ((1, {"error_rate": 0.02}),)),
        ("error_rate_vs_stable", 0.005, ((1, {"error_rate": 0.015}), (10, {"error_rate": 0.01}))),
        # Rare errors, where a score test's normal tail alone would fail a canary's first few too often.
        ("error_rate_vs_stable", 0.005, ((1, {"error_rate": 0.006}), (10, {"error_rate": 0.001}))),
        ("p95_latency_vs_stable", 1.0, ((1, {}), (10, {}))),
        # 5 % slower than 250 ms: the bound sits at the 95th percentile of lognormal(median, 0.5).
        ("p95_latency", 0.25, ((1, {"median": 0.25 / math.exp(0.5 * 1.6448536)}),)),
    ],
)
def test_many_looks_at_growing_data_fail_a_canary_at_its_limit_under_alpha(name: str, limit: float, how) -> None:
    """150 canaries exactly at their limit, each looked at 15 times as its data grow from 100 to 6,000
    requests, at alpha 5 %: a test valid at any look fails at most 5 % of them in all; the same
    test at a fixed level, looked at as often, fails several times that."""
    rng = np.random.default_rng(41)
    anytime, once = Levels(0.05, 0.8, anytime=True), Levels(0.05, 0.8)
    steps = [(100, how)] + [(400, how)] * 14
    runs = [grown(rng, steps) for _ in range(150)]

    def ever_failed(levels: Levels) -> float:
        failed = [any(rule(name, *look, limit=limit, levels=levels).outcome is Outcome.FAIL for look in run)
                  for run in runs]  # fmt: skip
        return sum(failed) / len(failed)

    assert ever_failed(anytime) <= 0.05
    assert ever_failed(once) >= 0.1
