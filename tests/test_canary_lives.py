"""Canaries' starts remembered between analyses: recalled only forward in time, bounded, never older news."""

from __future__ import annotations

import numpy as np

from app.canary_lives import CanaryLives, Known, Minutes, Sums
from app.judge.recent import Counts

DAY = 86400.0


def test_recalled_for_a_later_moment_within_the_look_back() -> None:
    starts = CanaryLives()
    starts.remember("canary-a", Known(start=1000.0, checked_at=2000.0))
    assert starts.recall("canary-a", 2060.0, DAY) == Known(1000.0, 2000.0)
    assert starts.recall("canary-a", 2000.0, DAY) == Known(1000.0, 2000.0)


def test_a_canary_there_through_the_whole_look_back_is_remembered_as_such() -> None:
    starts = CanaryLives()
    starts.remember("canary-a", Known(start=None, checked_at=2000.0))
    assert starts.recall("canary-a", 2060.0, DAY) == Known(None, 2000.0)


def test_not_for_an_earlier_moment_nor_beyond_the_look_back_nor_another_canary() -> None:
    starts = CanaryLives()
    starts.remember("canary-a", Known(start=1000.0, checked_at=2000.0))
    assert starts.recall("canary-a", 1999.0, DAY) is None  # `at` in the past: looked at afresh
    assert starts.recall("canary-a", 2000.0 + DAY + 1, DAY) is None
    assert starts.recall("canary-b", 2060.0, DAY) is None


def test_an_earlier_analysis_does_not_overwrite_a_later_one() -> None:
    starts = CanaryLives()
    starts.remember("canary-a", Known(start=1500.0, checked_at=3000.0))
    starts.remember("canary-a", Known(start=1000.0, checked_at=2000.0))
    assert starts.recall("canary-a", 3000.0, DAY) == Known(1500.0, 3000.0)


def test_bounded_dropping_the_least_recently_used() -> None:
    starts = CanaryLives(capacity=2)
    starts.remember("a", Known(1.0, 10.0))
    starts.remember("b", Known(1.0, 10.0))
    starts.recall("a", 11.0, DAY)  # used: kept
    starts.remember("c", Known(1.0, 10.0))
    assert len(starts) == 2 and starts.recall("b", 11.0, DAY) is None and starts.recall("a", 11.0, DAY)


def test_minutes_between_sums_a_minute_apart_and_the_last_sums_kept() -> None:
    def sums(at: float, served: float) -> Sums:
        counts = Counts(np.array([served]), np.array([0.0]), (), np.zeros((1, 0)))
        return Sums(at, counts, counts)

    minutes = Minutes.between([sums(60.0, 10.0), sums(120.0, 25.0), sums(240.0, 40.0), sums(300.0, 44.0)])
    assert minutes.ends == (120.0, 300.0)  # 180 is missing: no minute ends at 240 from it
    assert minutes.canary.ok.tolist() == [15.0, 4.0] and minutes.sums is not None and minutes.sums.at == 300.0
    kept = minutes.merged(Minutes.between([sums(300.0, 44.0), sums(360.0, 50.0)]), oldest=200.0)
    assert kept.ends == (300.0, 360.0) and kept.sums is not None and kept.sums.at == 360.0
