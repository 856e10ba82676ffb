"""Power on real traffic (app/calibration/power.py): regressions injected into a half's counts, and replayed, on
plain numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from app.calibration.aa import AsCanary, HalfMinutes, calibrated, templates
from app.calibration.argo import ABORTED
from app.calibration.power import (
    CAUGHT_AT_LEAST,
    GRIDS,
    Kind,
    Regression,
    power,
    slower,
    spread,
    with_more_errors,
)
from app.judge.checks import Source
from app.judge.recent import Counts
from app.measurement import Role
from app.models import CalibrationRequest
from tests.support.calibration import MINUTE_BOUNDS, NAMED_REGRESSIONS, SHARES, START, minute_history

STEP, BACKGROUND = templates()
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, math.inf)  # Prometheus'


def served(ok: float, errors: float, minutes: int) -> Counts:
    requests = np.full(minutes, ok + errors)
    return Counts(np.full(minutes, ok), np.full(minutes, errors), MINUTE_BOUNDS, requests[:, None] * SHARES)


def test_regressions_are_named_as_the_benchmarks_name_them() -> None:
    assert Regression(Kind.ERRORS, 0.03).name == "+3 points of 5xx"
    assert Regression(Kind.ERRORS, 0.01).name == "+1 point of 5xx"
    assert Regression(Kind.ERRORS, 0.0025).name == "+0.25 points of 5xx"
    assert Regression(Kind.LATENCY, 1.25).name == "x1.25 latency"


def test_more_errors_moves_ok_requests_keeping_every_minutes_requests() -> None:
    before = served(990.0, 10.0, 300)
    after = with_more_errors(before, 0.03, np.random.default_rng(5))
    assert np.array_equal(after.ok + after.errors, before.ok + before.errors)
    assert np.array_equal(after.buckets, before.buckets)  # a 5xx takes as long as the request did
    rise = after.errors.sum() / 300_000 - 0.01
    noise = math.sqrt(0.03 * 0.97 / 300_000)
    assert abs(rise - 0.03) < 4 * noise
    again = with_more_errors(before, 0.03, np.random.default_rng(5))
    assert np.array_equal(again.errors, after.errors)  # seeded: the same figures every time


def test_more_errors_than_there_are_ok_requests_moves_them_all_and_no_more() -> None:
    after = with_more_errors(served(990.0, 10.0, 5), 0.995, np.random.default_rng(1))
    assert after.ok.tolist() == [0.0] * 5 and after.errors.tolist() == [1000.0] * 5
    none = with_more_errors(served(0.0, 0.0, 3), 0.03, np.random.default_rng(1))
    assert none.ok.tolist() == [0.0] * 3 and none.errors.tolist() == [0.0] * 3


def lognormal(median: float, sigma: float, requests: float = 1e6) -> Counts:
    """Requests per bucket of Prometheus' default buckets, as a lognormal latency puts them."""
    at_or_under = stats.lognorm(sigma, scale=median).cdf(np.array(DEFAULT_BUCKETS))
    per_bucket = np.diff(at_or_under, prepend=0.0) * requests
    return Counts(np.array([requests]), np.zeros(1), DEFAULT_BUCKETS, per_bucket[None, :])


@pytest.mark.parametrize("sigma", [0.5, 0.8])
@pytest.mark.parametrize("factor", [1.1, 1.25, 1.5, 2.0])
def test_slower_moves_requests_across_bounds_as_a_lognormal_slower_by_the_factor(factor: float, sigma: float) -> None:
    """The model's error on lognormal latencies (power.py, MODELS): each bound's count within 5.5 % of the requests,
    the requests moved across bounds, all told, within 6 % of the true slower lognormal's."""
    before, truth = lognormal(0.06, sigma), lognormal(0.06 * factor, sigma)
    after = slower(before, factor)
    assert after.buckets.min() >= 0 and after.buckets.sum() == pytest.approx(1e6)
    modelled, true = (np.cumsum(counts.buckets[0])[:-1] for counts in (after, truth))
    assert np.abs(modelled - true).max() < 0.055 * 1e6
    moved, truly_moved = (np.cumsum(before.buckets[0])[:-1] - at_or_under for at_or_under in (modelled, true))
    assert moved.sum() == pytest.approx(truly_moved.sum(), rel=0.06)


def test_slower_by_one_changes_nothing_and_faster_keeps_the_slowest_requests_where_they_were() -> None:
    before = lognormal(0.06, 0.5)
    assert np.array_equal(slower(before, 1.0).buckets, before.buckets)
    faster = slower(before, 0.5)
    assert faster.buckets[0, -1] == before.buckets[0, -1]  # +Inf's requests have no shape to read
    assert faster.buckets.sum() == pytest.approx(before.buckets.sum()) and faster.buckets.min() >= 0


def test_the_runs_kept_spread_over_the_period_in_pairs_each_half_the_canary_of_as_many() -> None:
    starts = [START + 420.0 * k for k in range(204)]
    kept = spread(starts, 100)
    assert len(kept) == 100 and kept == sorted(kept) and set(kept) <= set(starts)
    assert kept[:2] == starts[:2] and kept[-2:] == starts[-2:]
    assert sum(round(start / 420.0) % 2 for start in kept) == 50  # each parity, each half, 50 times
    assert spread(starts[:30], 100) == starts[:30]


def test_a_runs_canary_is_read_regressed_its_stable_as_it_served() -> None:
    ends = START + 60.0 * np.arange(1, 11)
    halves = HalfMinutes(ends, {"A": served(99.0, 1.0, 10), "B": served(99.0, 1.0, 10)})
    regressed = halves.changed(lambda half, counts: with_more_errors(counts, 0.5, np.random.default_rng(3)))
    run = AsCanary(halves, "A", START, regressed)
    canary, stable = (run.observed(role, START, START + 600)[Source.REQUESTS] for role in (Role.CANARY, Role.STABLE))
    assert canary.total == stable.total == 1000.0
    assert stable.errors == 10.0 and 400 < canary.errors < 600
    assert run.minutes(Role.CANARY, [START + 540.0], START + 600).errors.sum() > 20


@pytest.fixture(scope="module")
def measured() -> tuple:
    found = calibrated(minute_history(hours=6.0), CalibrationRequest(service="web"), "default", (STEP, BACKGROUND))
    return found, power(found)


def test_a_regression_is_replayed_on_every_template_with_each_half_as_the_canary(measured: tuple) -> None:
    found, powered = measured
    [step, background] = found.replayed
    assert {(i.regression.name, i.replayed.template.name) for i in powered.injected} == {
        (name, template) for name in NAMED_REGRESSIONS for template in ("step", "background")
    }
    for injected in powered.injected:
        same = step if injected.replayed.template.name == "step" else background
        assert [run.start for run in injected.replayed.runs] == [run.start for run in same.runs]
        assert injected.replayed.canaries == same.canaries
    huge = next(i for i in powered.injected if i.regression.name == "x1.5 latency" and i.replayed.template is STEP)
    assert huge.share == 1.0 and set(huge.replayed.canaries) == {"A", "B"}
    assert all(0 < minutes <= 6 for minutes in huge.minutes_to_abort)
    assert set(powered.rps) == {"A", "B"} and sum(powered.rps.values()) == pytest.approx(24.0, rel=0.05)


def test_the_smallest_effect_caught_is_the_first_on_its_grid_caught_at_95_percent(measured: tuple) -> None:
    _, powered = measured
    for search in powered.searched:
        assert search.caught is not None, search.kind
        sizes = [injected.regression.size for injected in search.tried]
        assert sizes == sorted(sizes) and search.caught.size in sizes
        grid = GRIDS[search.kind]
        at = grid.index(search.caught.size)
        caught = next(i for i in search.tried if i.regression == search.caught)
        assert caught.share >= CAUGHT_AT_LEAST
        assert sum(run.outcome == ABORTED for run in caught.replayed.runs) == caught.aborted
        if at > 0:  # the size below it was replayed, and not caught
            below = next(i for i in search.tried if i.regression.size == grid[at - 1])
            assert below.share < CAUGHT_AT_LEAST
