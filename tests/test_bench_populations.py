"""The verdict-quality bench's populations (bench/populations.py) and what the in-process run
measures (bench/judgment_sim.py): runs of any length, canary ages, first releases, the canary's
start as a `[1d:1m]` subquery finds it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from app.judge.checks import Source
from bench.judgment_sim import observed_in_window, observed_since_start
from bench.populations import (
    AGES,
    CANARY,
    FIRST_RELEASE_P95_SLO,
    FRESH,
    LE_LABELS,
    SLOW_MODE,
    STABLE,
    STEP_SCHEDULE,
    WARM,
    CaseTraffic,
    Schedule,
    VersionCounters,
    counts_since,
    first_release_population,
    last_moment_without_series,
    p95_band,
    population,
    shape_quantile,
    slos,
    synthesise,
    true_quantile,
    window_counts,
)

START = 1_800_000_000.0  # a whole minute of unix time
BACKGROUND_HOUR = Schedule(initial_delay=0.0, interval=60.0, measurements=60)


def test_the_counters_cover_every_poll_of_a_long_run() -> None:
    for case in population(2, seed=4, start=START, schedule=BACKGROUND_HOUR, ages=AGES):
        assert len(case.polls) == 60 and case.polls[0] == case.run_start
        for counters in synthesise(case).versions.values():
            assert case.polls[-1] - case.scrape_interval < counters.times[-1] <= case.polls[-1]


def test_canary_ages() -> None:
    cases = population(6, seed=5, start=START, schedule=BACKGROUND_HOUR, ages=AGES)
    for case in cases:
        before_run = case.run_start - case.canary_ready
        low, high = (5.0, 60.0) if case.age == FRESH else (600.0, 2400.0)
        assert low <= before_run <= high
        assert case.stable_first_scrape is not None and case.stable_first_scrape < case.canary_ready
    assert {case.age for case in cases} == {FRESH, WARM}


def test_ages_take_no_draw_of_their_own() -> None:
    """A fresh case is the same case whatever other ages the population holds, and a warm one
    differs from its fresh twin only in when its canary started."""
    fresh = population(4, seed=6, start=START)
    mixed = population(4, seed=6, start=START, ages=AGES)
    for only_fresh, either in zip(fresh, mixed, strict=True):
        if either.age == FRESH:
            assert either == only_fresh
        else:
            moved = {"canary_ready", "canary_first_scrape", "age"}
            same = {f.name for f in dataclasses.fields(either)} - moved
            assert all(getattr(either, name) == getattr(only_fresh, name) for name in same)


def test_counts_since_and_window_counts_agree() -> None:
    case = population(1, seed=7, start=START, schedule=STEP_SCHEDULE)[0]
    traffic = synthesise(case)
    at = case.polls[-1]
    for version in (CANARY, STABLE):
        window, since = window_counts(traffic, version, at, 300.0), counts_since(traffic, version, at - 300.0, at)
        assert np.array_equal(window.buckets, since.buckets) and window.requests_by_status == since.requests_by_status
        everything = counts_since(traffic, version, START, at)
        assert everything.buckets[-1] == traffic.versions[version].count[-1]


def test_first_releases_have_no_stable_and_the_p95_drawn() -> None:
    cases = first_release_population(40, seed=8, start=START, ages=AGES)
    for case in cases:
        assert not case.has_stable and list(synthesise(case).versions) == [CANARY]
        assert slos(case)["p95_max_seconds"] == FIRST_RELEASE_P95_SLO
        assert slos(case)["error_rate_max"] >= max(0.1, 10 * case.error_share) - 1e-4
        ratio = true_quantile(case, CANARY, case.polls[-1]) / FIRST_RELEASE_P95_SLO
        assert 0.5 <= ratio <= 2.5
        assert p95_band(case) in {"<=0.8x", "0.8-1.0x", "1.0-1.25x", "1.25-1.5x", ">=1.5x"}
    slow_modes = [c.latency for c in cases if c.latency.kind == SLOW_MODE]
    assert slow_modes and all(0.02 <= s.miss_share <= 0.08 and 3 <= s.miss_factor <= 10 for s in slow_modes)
    assert len({p95_band(case) for case in cases}) == 5


def test_shape_quantile_is_the_exact_cdfs() -> None:
    shape = first_release_population(1, seed=9, start=START)[0].latency
    p95 = shape_quantile(shape, 0.95)
    assert shape.cdf(np.asarray([[p95]]))[0, 0] == pytest.approx(0.95, abs=1e-6)


def _traffic_with_canary_scrapes(times: list[float]) -> CaseTraffic:
    case = population(1, seed=10, start=START)[0]
    zeros = np.zeros(len(times))
    counters = VersionCounters(np.asarray(times), {"200": zeros}, np.zeros((len(times), len(LE_LABELS))), zeros)
    return CaseTraffic(case, {CANARY: counters})


@pytest.mark.parametrize(
    ("first_scrape", "at", "start"),
    [
        (START + 90.5, START + 600.0, START + 60.0),  # present from the first step at or after its first sample
        (START + 120.0, START + 600.0, START + 60.0),  # a sample exactly at a step: present at that step
        (START + 590.0, START + 600.0, START + 540.0),  # not yet at the last whole minute before `at`
    ],
)
def test_the_canary_start_is_the_last_minute_without_a_series(first_scrape: float, at: float, start: float) -> None:
    traffic = _traffic_with_canary_scrapes([first_scrape + 15.0 * k for k in range(200)])
    assert last_moment_without_series(traffic, CANARY, at) == start


def test_a_gap_longer_than_the_lookback_is_a_new_start() -> None:
    times = [START + 15.0 * k for k in range(20)] + [START + 900.0 + 15.0 * k for k in range(20)]
    traffic = _traffic_with_canary_scrapes(times)
    # Last sample of the first run at START + 285: present until START + 540 (5m lookback), absent from START + 600.
    assert last_moment_without_series(traffic, CANARY, START + 1200.0) == START + 840.0


def test_a_series_present_for_the_whole_look_back_has_no_start() -> None:
    traffic = _traffic_with_canary_scrapes([START + 15.0 * k for k in range(2000)])
    assert last_moment_without_series(traffic, CANARY, START + 15.0 * 1999, look_back_seconds=3600.0) is None
    assert last_moment_without_series(traffic, STABLE, START + 100.0) == START + 60.0  # no series at all


def test_observed_since_start_covers_a_warm_canarys_whole_life() -> None:
    warm = next(c for c in population(2, seed=11, start=START, schedule=BACKGROUND_HOUR, ages=AGES) if c.age == WARM)
    traffic, at = synthesise(warm), warm.polls[0]
    since, window = observed_since_start(traffic, at, 300.0), observed_in_window(traffic, at, 300.0)
    assert window.span_seconds == 300.0
    assert since.span_seconds == at - last_moment_without_series(traffic, CANARY, at) > 600.0
    requests = since.canary[Source.REQUESTS]
    assert requests is not None
    assert requests.ok + requests.errors == counts_since(traffic, CANARY, at - since.span_seconds, at).requests


def test_observed_since_start_is_never_shorter_than_the_window() -> None:
    fresh = population(1, seed=12, start=START, schedule=Schedule(0.0, 60.0, 3))[0]
    observation = observed_since_start(synthesise(fresh), fresh.polls[0], 300.0)
    assert observation.span_seconds == 300.0


def test_a_first_release_stable_is_observed_as_no_data() -> None:
    case = first_release_population(1, seed=13, start=START)[0]
    observation = observed_since_start(synthesise(case), case.polls[-1], 300.0)
    assert observation.stable == {Source.REQUESTS: None, Source.LATENCY: None}
    assert observation.canary[Source.LATENCY] is not None
