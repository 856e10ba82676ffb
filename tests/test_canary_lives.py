"""Canaries' starts remembered between analyses: recalled only forward in time, bounded, never older news."""

from __future__ import annotations

from app.canary_lives import CanaryLives, Known

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
