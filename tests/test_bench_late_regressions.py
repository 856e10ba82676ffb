"""bench/late_regressions.py: the recent-blocks prototype keeps the run's alpha, each block judged on its own."""

from __future__ import annotations

import numpy as np
import pytest

from bench.late_regressions import BLOCK_MINUTES, ZERO, block_alpha, run, serve


def test_the_blocks_shares_of_alpha_sum_to_half_of_it_over_any_number_of_blocks() -> None:
    alpha = 0.01
    spent = sum(block_alpha(alpha, k) for _ in BLOCK_MINUTES for k in range(100_000))
    assert spent <= alpha / 2
    assert spent == pytest.approx(alpha / 2, rel=1e-4)
    assert block_alpha(alpha, 0) == alpha / 2 / len(BLOCK_MINUTES) / 2


def test_a_blocks_counts_are_those_since_it_began() -> None:
    rng = np.random.default_rng(3)
    before = serve(rng, ZERO, 10.0, 0.01)
    after = serve(rng, before, 10.0, 0.5)
    block = after - before
    assert block.ok + block.errors == block.buckets.sum() == pytest.approx(after.buckets.sum() - before.buckets.sum())
    assert block.errors / (block.ok + block.errors) > 0.3 > before.errors / (before.ok + before.errors)


def test_a_late_regression_is_aborted_sooner_with_blocks_and_never_before_its_onset() -> None:
    onset = 70
    result = run(np.random.default_rng(5), 10.0, onset, 0.05, onset + 40)
    assert result.cumulative is not None and result.with_blocks is not None
    assert onset < result.with_blocks < result.cumulative


def test_slower_requests_move_one_bucket_up() -> None:
    rng = np.random.default_rng(4)
    healthy = serve(rng, ZERO, 100.0, 0.0)
    slower = serve(rng, ZERO, 100.0, 0.0, slower=1.0)
    shares = [np.cumsum(c.buckets) / c.buckets.sum() for c in (healthy, slower)]
    assert np.all(shares[1][:-1] <= shares[0][:-1])  # every bound sees fewer requests under it
    assert shares[1][3] < 0.1 < shares[0][3]


def test_a_late_latency_regression_is_aborted_sooner_with_blocks() -> None:
    onset = 70
    result = run(np.random.default_rng(6), 10.0, onset, 0.0, onset + 40, slower=0.5)
    assert result.cumulative is not None and result.with_blocks is not None
    assert onset < result.with_blocks < result.cumulative
