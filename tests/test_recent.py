"""Recent spans on plain numbers: alpha spent over them, their screens, their findings, current traffic."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.judge import recent, statistical_rules
from app.judge.builtin_checks import CHECKS
from app.judge.checks import Mode, Observed, Source
from app.judge.distributions import Histogram, NativeHistogram, Outcomes
from app.judge.findings import Outcome
from app.judge.judgment import Confidence, Verdict, judge
from app.judge.recent import Counts, Timeline

BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, math.inf)
SHARES = np.array([0.0, 0.01, 0.05, 0.2, 0.5, 0.2, 0.04, 0.0, 0.0, 0.0])
BY_NAME = {check.name: check for check in CHECKS}
LIMITS = {check.name: check.limit.default_for(Mode.STATISTICAL) for check in CHECKS}


def minutes(
    rng: np.random.Generator, rps: float, count: int, errors: float = 0.01, slower: float = 0.0, onset: int = 0
) -> Counts:
    """A version's minutes: Poisson requests, from minute `onset` on erring `errors` and `slower` a bucket up."""
    requests = rng.poisson(rps * 60, count)
    late = np.arange(count) >= onset
    shifted = (1 - slower) * SHARES + slower * np.concatenate(([0.0], SHARES[:-1]))
    bad = rng.binomial(requests, np.where(late, errors, 0.01))
    buckets = np.array(
        [rng.multinomial(n, shifted if is_late else SHARES) for n, is_late in zip(requests, late, strict=True)]
    )
    return Counts((requests - bad).astype(float), bad.astype(float), BOUNDS, buckets.astype(float))


def timeline(canary: Counts, stable: Counts, canary_start: float | None = 0.0) -> Timeline:
    rows = len(canary.ok)
    return Timeline(canary_start, tuple(60.0 * m for m in range(rows)), 60.0 * rows, canary, stable)


def whole(counts: Counts) -> Observed:
    return counts.since().observed(0)


def rule(check, limit, canary, stable, window, alpha):
    return statistical_rules.classify(check, limit, canary, stable, window, statistical_rules.Levels(alpha, 0.6, True))


# --- alpha over the spans ---------------------------------------------------------------------------------


def test_the_spans_shares_sum_to_at_most_one_over_a_life_of_any_length() -> None:
    for minutes_ in (1, 60, 1440, 525_600, 10**7):
        total = math.fsum(recent.span_share(k) for k in range(1, minutes_ + 1))
        assert total <= 1.0
    # It telescopes: c / (k + c - 1) - c / (k + c), summing to 1 - c / (K + c) over the first K minutes.
    assert math.fsum(recent.span_share(k) for k in range(1, 1001)) == pytest.approx(1 - 60 / 1060)
    assert recent.span_share(1) > recent.span_share(60) > recent.span_share(600)


def test_a_check_spends_half_its_alpha_on_the_whole_and_half_on_the_spans() -> None:
    confidence = Confidence(alpha=0.01)
    whole_life, spans = confidence.levels(CHECKS).alpha, confidence.recent_alpha(CHECKS)
    assert whole_life + spans == pytest.approx(0.01 / 4)  # the four checks that can fail


def test_spans_start_after_the_canary_at_minute_boundaries_and_last_at_most_an_hour() -> None:
    rng = np.random.default_rng(1)
    line = timeline(minutes(rng, 3, 90), minutes(rng, 20, 90), canary_start=0.0)
    found = recent.spans(line, 0.001)
    starts = [span.since for _, span in found]
    assert starts == [60.0 * m for m in range(30, 90)]  # the last hour of a 90-minute life
    assert all(span.seconds <= 3600 and span.alpha == 0.001 * recent.span_share(span.minute) for _, span in found)
    young = timeline(minutes(rng, 3, 10), minutes(rng, 20, 10), canary_start=0.0)
    assert [span.minute for _, span in recent.spans(young, 0.001)] == list(range(1, 10))  # not the whole life
    assert recent.spans(timeline(minutes(rng, 3, 10), minutes(rng, 20, 10), canary_start=None), 0.001) == []


# --- the screens never skip a span the rule fails ---------------------------------------------------------


@pytest.mark.parametrize("name", ["p95_latency", "error_rate", "p95_latency_vs_stable", "error_rate_vs_stable"])
def test_a_screen_passes_every_span_its_rule_fails(name: str) -> None:
    check = BY_NAME[name]
    rng = np.random.default_rng(7)
    failed = screened_out = 0
    for run in range(40):
        onset = int(rng.integers(10, 50))
        canary = minutes(rng, 4, 60, errors=0.035, slower=0.6, onset=onset)
        stable = minutes(rng, 20, 60)
        line = timeline(canary, stable)
        found = recent.spans(line, 0.05)
        rows = np.array([row for row, _ in found])
        alphas = np.array([span.alpha for _, span in found])
        since_c, since_s = line.canary.since(), line.stable.since()
        screen = recent.SCREENS[check.method, check.statistic]
        margins = screen(check, LIMITS[name], since_c.rows(rows), since_s.rows(rows), alphas)
        for i in range(0, len(found), 3 + run % 5):
            row, span = found[i]
            finding = rule(check, LIMITS[name], since_c.observed(row), since_s.observed(row), "1m", span.alpha)
            if finding.outcome is Outcome.FAIL:
                failed += 1
                screened_out += not margins[i] > 0
    assert failed > 20, "the data should fail the rule on many spans"
    assert screened_out == 0


# --- findings -----------------------------------------------------------------------------------------------


def test_a_late_regression_fails_on_its_recent_span_and_the_reason_says_since_when() -> None:
    rng = np.random.default_rng(3)
    canary, stable = minutes(rng, 10, 130, errors=0.06, onset=120), minutes(rng, 20, 130)
    line = timeline(canary, stable)
    judgment = judge(CHECKS, LIMITS, whole(canary), whole(stable), "130m", confidence=Confidence(), timeline=line)
    assert judgment.verdict is Verdict.FAIL
    failed = [r for r in judgment.checks if r.outcome is Outcome.FAIL]
    assert failed and all(r.span is not None and r.span.since >= 110 * 60 for r in failed)
    reason = judgment.reasons[0]
    assert reason.startswith("in the last ") and "(since 02:" in reason and "over its whole life (2 h 10 min)" in reason
    # Without the spans, the two healthy hours hide it.
    alone = judge(CHECKS, LIMITS, whole(canary), whole(stable), "130m", confidence=Confidence())
    assert alone.verdict is not Verdict.FAIL


def test_a_late_latency_regression_fails_on_its_recent_span() -> None:
    rng = np.random.default_rng(4)
    canary, stable = minutes(rng, 10, 130, slower=0.6, onset=120), minutes(rng, 20, 130)
    judgment = judge(CHECKS, LIMITS, whole(canary), whole(stable), "130m", timeline=timeline(canary, stable))
    failed = {r.check.name for r in judgment.checks if r.outcome is Outcome.FAIL}
    assert "p95_latency_vs_stable" in failed


def test_a_recent_breach_the_stable_shares_is_not_the_canarys() -> None:
    """Both versions slower in the last minutes (a dependency): the SLO check is inconclusive, not failed."""
    rng = np.random.default_rng(5)
    canary = minutes(rng, 10, 90, slower=1.0, onset=75)
    stable = minutes(rng, 30, 90, slower=1.0, onset=75)
    judgment = judge(CHECKS, LIMITS, whole(canary), whole(stable), "90m", timeline=timeline(canary, stable))
    results = {r.check.name: r for r in judgment.checks}
    assert results["p95_latency"].outcome is Outcome.INCONCLUSIVE
    assert "out of its SLO already" in results["p95_latency"].reason
    assert judgment.verdict is not Verdict.FAIL


def test_healthy_canaries_judged_every_minute_are_failed_by_spans_under_their_alpha() -> None:
    """200 healthy canaries at 3 rps against their stable, every minute for 90 minutes, at a recent alpha of
    0.05 (large, so that false alarms could be counted): the spans of the error comparison, at any look."""
    check = BY_NAME["error_rate_vs_stable"]
    rng = np.random.default_rng(11)
    alarms = 0
    for _ in range(200):
        canary, stable = minutes(rng, 3, 90), minutes(rng, 20, 90)
        for minute in range(2, 91):
            head = np.arange(minute)
            line = timeline(canary.rows(head), stable.rows(head))
            if recent.judged(check, LIMITS[check.name], line, 0.05, rule) is not None:
                alarms += 1
                break
    assert alarms / 200 <= 0.05


# --- counts and current traffic --------------------------------------------------------------------------


def test_rows_on_different_bounds_stack_on_their_union() -> None:
    coarse = Counts.of({Source.LATENCY: Histogram((0.1, math.inf), (4.0, 5.0))})
    fine = Counts.of({Source.LATENCY: Histogram((0.05, 0.1, math.inf), (1.0, 3.0, 3.0))})
    stacked = Counts.stack([coarse, fine])
    assert stacked.bounds == (0.05, 0.1, math.inf)
    assert stacked.buckets.tolist() == [[0.0, 4.0, 1.0], [1.0, 2.0, 0.0]]
    assert stacked.ok.tolist() == [0.0, 0.0]  # no requests measured: none counted


def test_a_native_histogram_becomes_classic_buckets_on_its_own_edges() -> None:
    native = NativeHistogram(((0.1, 0.2, 3.0), (0.2, 0.4, 1.0)), 4.0)
    counts = Counts.of({Source.REQUESTS: Outcomes(3, 1), Source.LATENCY: native})
    assert counts.bounds == (0.1, 0.2, 0.4, math.inf) and counts.buckets.tolist() == [[0.0, 3.0, 1.0, 0.0]]


def test_current_traffic_says_when_each_version_last_served_and_what_the_other_served_since() -> None:
    served = Counts(np.array([5.0, 3.0, 0.0, 0.0, 0.0, 0.0]), np.zeros(6), (), np.zeros((6, 0)))
    stable = Counts(np.full(6, 100.0), np.zeros(6), (), np.zeros((6, 0)))
    canary_now, stable_now = timeline(served, stable, 0.0).current(180)
    assert (canary_now.requests, canary_now.last_served) == (0.0, 120.0)
    assert (stable_now.requests, stable_now.meanwhile) == (300.0, 400.0)


def test_counts_since_earlier_sums_leave_out_a_row_where_any_count_fell() -> None:
    """A series that restarted or went away takes its past with it: that minute's sums tell nothing."""
    later = Counts(
        np.array([150.0, 140.0]), np.array([5.0, 9.0]), (0.1, math.inf), np.array([[100.0, 55.0], [60.0, 89.0]])
    )
    earlier = Counts(
        np.array([100.0, 120.0]), np.array([4.0, 3.0]), (0.1, math.inf), np.array([[70.0, 34.0], [80.0, 43.0]])
    )
    counted = later.less(earlier)
    assert counted.ok.tolist() == [50.0, 0.0] and counted.errors.tolist() == [1.0, 0.0]
    assert counted.buckets.tolist() == [[30.0, 21.0], [0.0, 0.0]]  # the second row's first bucket fell


def test_a_bucket_may_dip_where_the_counts_at_or_under_each_bound_do_not() -> None:
    """Counters at or under each bound rounded apart (a dip of one in a single bucket) leave the minute in."""
    bounds = (0.1, 0.25, math.inf)
    later = Counts(np.array([20.0]), np.array([0.0]), bounds, np.array([[10.0, 6.0, 4.0]]))
    earlier = Counts(np.array([10.0]), np.array([0.0]), bounds, np.array([[4.0, 7.0, 1.0]]))
    counted = later.less(earlier)
    assert counted.ok.tolist() == [10.0] and counted.buckets.tolist() == [[6.0, 0.0, 3.0]]
