"""bench/late_regressions.py: its traffic, and each judge as it claims to judge."""

from __future__ import annotations

import numpy as np
import pytest

from bench.late_regressions import (
    ARGO_P95,
    ARGO_SUCCESS_RATE,
    FLAGGER,
    STABLE_RPS,
    Oracle,
    analyzer,
    oracle_for,
    serve,
)


def test_the_minute_of_the_onset_is_bad_from_the_onset_on() -> None:
    rng = np.random.default_rng(1)
    traffic = serve(rng, 1000.0, 4, onset=2.5, extra=0.5, slower=0.0)
    shares = traffic.errors / (traffic.ok + traffic.errors)
    assert shares[0] == pytest.approx(0.01, abs=0.005) and shares[1] == pytest.approx(0.01, abs=0.005)
    assert shares[2] == pytest.approx(0.01 + 0.5 / 2, abs=0.02)  # half the minute after the onset
    assert shares[3] == pytest.approx(0.51, abs=0.02)
    assert traffic.buckets.sum(axis=1).tolist() == (traffic.ok + traffic.errors).tolist()


def test_slower_requests_move_one_bucket_up() -> None:
    rng = np.random.default_rng(4)
    healthy = serve(rng, 100.0, 1, None, 0.0, 0.0).buckets[0]
    slower = serve(rng, 100.0, 1, 0.0, 0.0, 1.0).buckets[0]
    shares = [np.cumsum(c) / c.sum() for c in (healthy, slower)]
    assert np.all(shares[1][:-1] <= shares[0][:-1])  # every bound sees fewer requests under it
    assert shares[1][3] < 0.1 < shares[0][3]


def test_the_analyzer_aborts_a_late_regression_soon_after_its_onset_and_not_before() -> None:
    rng = np.random.default_rng(5)
    onset = 70.4
    canary, stable = serve(rng, 10.0, 90, onset, 0.03, 0.0), serve(rng, STABLE_RPS, 90, None, 0.0, 0.0)
    aborted = analyzer(canary, stable)
    assert aborted is not None and onset < aborted <= onset + 8


def test_argos_success_rate_rule_aborts_at_its_fourth_failed_measurement_every_five_minutes() -> None:
    rng = np.random.default_rng(6)
    canary = serve(rng, 10.0, 60, 20.0, 0.2, 0.0)  # 79 % success from minute 20
    assert ARGO_SUCCESS_RATE(canary, canary) == 40  # failed at 25, 30, 35, 40
    assert ARGO_SUCCESS_RATE(serve(rng, 10.0, 60, 20.0, 0.03, 0.0), canary) is None  # 96 %: passes its 95 %


def test_argos_p95_rule_holds_histogram_quantile_to_the_slo() -> None:
    rng = np.random.default_rng(7)
    assert ARGO_P95(serve(rng, 10.0, 60, 10.0, 0.0, 1.0), None) == 30  # P95 over 300 ms from minute 10
    assert ARGO_P95(serve(rng, 10.0, 60, None, 0.0, 0.0), None) is None


def test_flagger_rolls_back_at_the_fifth_failed_check() -> None:
    """At the bench's 1 % of 5xx, a healthy canary's minutes fail Flagger's default 99 % about half the time."""
    rng = np.random.default_rng(8)
    canary = serve(rng, 10.0, 30, None, 0.0, 0.0)
    failed_minutes = np.flatnonzero(canary.ok / (canary.ok + canary.errors) < 0.99) + 1
    assert FLAGGER(canary, None) == failed_minutes[4]


def test_the_oracles_threshold_is_reached_by_one_healthy_run_in_a_hundred() -> None:
    oracle = oracle_for(np.random.default_rng(9), 3.0, 0.03, 0.0, runs=600)
    rng = np.random.default_rng(10)
    alarms = sum(oracle(serve(rng, 3.0, 240, None, 0.0, 0.0), None) is not None for _ in range(600))
    assert 0.002 <= alarms / 600 <= 0.03
    assert isinstance(oracle, Oracle) and oracle.threshold > 0


def test_the_latency_oracle_rarely_alarms_on_health_and_soon_after_the_shift() -> None:
    """Healthy minutes all but never look like half the requests a bucket slower: its threshold may be 0."""
    oracle = oracle_for(np.random.default_rng(11), 3.0, 0.0, 0.5, runs=300)
    rng = np.random.default_rng(12)
    alarms = sum(oracle(serve(rng, 3.0, 240, None, 0.0, 0.0), None) is not None for _ in range(300))
    assert alarms / 300 <= 0.03
    aborted = oracle(serve(rng, 3.0, 60, 30.0, 0.0, 0.5), None)
    assert aborted is not None and 30 < aborted <= 32
