"""The share of requests slower than an SLO between bucket bounds: its bounds hold for skewed and
bimodal latencies (scipy's exact CDFs), its estimate is close, and it says when it cannot speak."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from scipy import interpolate, optimize, stats

from app.judge import sequential
from app.judge.distributions import Histogram
from app.judge.shapes import Model, pchip, slower_than
from tests.support.observations import BOUNDS

SLO = 0.3  # between the default bounds 250 ms and 500 ms
BIG = 1e9  # requests: the shapes' own bucket shares, with no sampling noise to speak of


@dataclass(frozen=True)
class Mixture:
    """Cache hits and misses: a lognormal bulk, and a slow mode of `share` of the requests `factor` times slower."""

    share: float
    factor: float
    sigma: float = 0.3

    def cdf(self, x: float | np.ndarray) -> float | np.ndarray:
        slow = stats.lognorm.cdf(np.asarray(x) / self.factor, 0.3)
        return (1 - self.share) * stats.lognorm.cdf(x, self.sigma) + self.share * slow


SHAPES = {
    "lognormal 0.3": stats.lognorm(0.3),
    "lognormal 1.0": stats.lognorm(1.0),
    "gamma 2": stats.gamma(2),
    "weibull 1.5": stats.weibull_min(1.5),
    "log-logistic 3": stats.fisk(3),
    "log-logistic 8": stats.fisk(8),
    **{f"slow mode {s:.0%} x{f}": Mixture(s, f) for s in (0.02, 0.05, 0.1) for f in (3, 10)},
}


def histogram_of(shape: Mixture | stats.rv_continuous, p95: float, total: float = BIG) -> tuple[Histogram, float]:
    """The shape scaled to this true P95, counted into the default buckets; and its true share over the SLO."""
    natural = optimize.brentq(lambda x: shape.cdf(x) - 0.95, 1e-6, 1e6)
    scale = p95 / natural
    cumulative = [total * float(shape.cdf(b / scale)) for b in BOUNDS[:-1]] + [total]
    return Histogram(BOUNDS, tuple(cumulative)), 1 - float(shape.cdf(SLO / scale))


@pytest.mark.parametrize("name", SHAPES)
def test_bounds_never_cross_the_slo_the_wrong_way(name: str) -> None:
    """A canary within its SLO (P95 at most the SLO: at most 5 % slower) is never counted as more than
    5 % slower by the fewest slower requests the model allows: what keeps it from being aborted. One
    beyond 1.1x the SLO is never counted as at most 5 % by the most: what keeps it from passing."""
    for p95 in np.geomspace(0.5 * SLO, 2.5 * SLO, 41):
        histogram, truth = histogram_of(SHAPES[name], p95)
        slower = slower_than(histogram, SLO)
        assert slower.model is Model.SHAPE
        assert slower.low <= slower.estimate <= slower.high
        if p95 <= SLO:
            assert truth <= 0.05 + 1e-9 and slower.low / BIG <= 0.05, (p95, truth, slower)
        if p95 > 1.1 * SLO:
            assert slower.high / BIG > 0.05, (p95, truth, slower)


@pytest.mark.parametrize("name", ["lognormal 0.3", "lognormal 1.0", "gamma 2", "weibull 1.5", "log-logistic 3"])
def test_estimate_is_close_for_single_peaked_shapes(name: str) -> None:
    """Within 0.3 point of the truth, where linear interpolation (histogram_fraction) is 2 to 7 off.
    (A narrow power-law tail, log-logistic 8, it reads up to 5 points high: the bounds still hold.)"""
    for p95 in (0.8 * SLO, SLO, 1.25 * SLO, 1.5 * SLO):
        histogram, truth = histogram_of(SHAPES[name], p95)
        assert slower_than(histogram, SLO).estimate / BIG == pytest.approx(truth, abs=0.003), p95


def test_linear_interpolation_would_read_too_many_slower() -> None:
    """What Prometheus' histogram_fraction does, for the record: at a true P95 of exactly the SLO it
    reads 7 % or more slower than the SLO, where the truth (and the model) say 5 %."""
    for sigma in (0.3, 0.6):
        histogram, truth = histogram_of(stats.lognorm(sigma), SLO)
        below, above = histogram.cumulative[5], histogram.cumulative[6]  # at 250 ms and 500 ms
        linear = 1 - (below + (above - below) * (SLO - 0.25) / (0.5 - 0.25)) / BIG
        assert linear > 0.07 and truth == pytest.approx(0.05)
        assert slower_than(histogram, SLO).estimate / BIG == pytest.approx(0.05, abs=0.001)


@pytest.mark.parametrize("name", [name for name in SHAPES if not name.startswith("slow mode 5%")])
def test_decisive_away_from_the_slo(name: str) -> None:
    """Where the buckets alone say nothing (the SLO's bucket straddles 5 %), the model decides:
    at 1.5x the SLO at least 5 % are slower, at 0.8x at most 5 %. Not for a slow mode of exactly
    5 %: it is the P95, so about 5 % are slower than the SLO wherever the mode sits."""
    slower, _ = histogram_of(SHAPES[name], 1.5 * SLO)
    faster, _ = histogram_of(SHAPES[name], 0.8 * SLO)
    assert slower_than(slower, SLO).low / BIG > 0.05
    assert slower_than(faster, SLO).high / BIG <= 0.05


def test_exact_on_a_bucket_bound() -> None:
    histogram = Histogram(BOUNDS, (0, 0, 0, 100, 400, 900, 960, 1000, 1000, 1000, 1000, 1000))
    slower = slower_than(histogram, 0.25)
    assert slower.model is Model.EXACT
    assert slower.low == slower.high == slower.estimate == 100
    assert slower.below == slower.above == 0.25


@pytest.mark.parametrize(
    ("cumulative", "limit"),
    [
        ((0, 0, 0, 100, 400, 900, 960, 1000, 1000, 1000, 1000, 1000), 0.007),  # under the second bound
        ((0, 0, 0, 100, 400, 900, 960, 1000, 1000, 1000, 1000, 1000), 7.0),  # no bound above the next one
        ((0, 0, 0, 0, 0, 0, 750, 1000, 1000, 1000, 1000, 1000), SLO),  # none under 250 ms: no slope there
    ],
)
def test_without_the_neighbours_only_the_bracket(cumulative: tuple, limit: float) -> None:
    histogram = Histogram(BOUNDS, tuple(float(c) for c in cumulative))
    slower = slower_than(histogram, limit)
    above = histogram.total - next((c for b, c in zip(BOUNDS, cumulative, strict=True) if b > limit), 0)
    assert slower.low <= above
    if slower.model is Model.BRACKET:
        assert slower.low == above


def test_two_buckets_alone_cannot_tell_where_inside_the_requests_lie() -> None:
    """75 % in (100, 250], 25 % in (250, 500], none outside: every one of the 25 % may be at 251 ms."""
    histogram = Histogram(BOUNDS, (0, 0, 0, 0, 0, 750, 1000, 1000, 1000, 1000, 1000, 1000))
    slower = slower_than(histogram, SLO)
    assert slower.low == 0 and slower.high > 50


def test_false_fails_at_the_slo_stay_under_alpha_at_any_traffic() -> None:
    """Canaries whose true share over the SLO is exactly 5 %, of skewed and bimodal shapes, sampled
    at 100 to 30,000 requests: the e-process on the fewest slower requests the model allows never
    reaches 1/alpha (alpha 1 %, 200 draws per shape and size)."""
    rng = np.random.default_rng(5)
    threshold = math.log(100)
    for name in ("lognormal 0.3", "log-logistic 8", "slow mode 2% x10", "weibull 1.5"):
        histogram, truth = histogram_of(SHAPES[name], SLO)
        probabilities = np.diff(np.asarray(histogram.cumulative) / BIG, prepend=0.0)
        assert truth == pytest.approx(0.05, abs=1e-6)
        for n in (100, 1000, 30_000):
            for counts in rng.multinomial(n, probabilities, size=200):
                drawn = Histogram(BOUNDS, tuple(float(c) for c in np.cumsum(counts)))
                assert sequential.share_log_e_value(slower_than(drawn, SLO).low, n, 0.05) < threshold, (name, n)


@pytest.mark.parametrize(
    ("xs", "ys"),
    [
        ((0.0, 1.0), (0.0, 2.0)),
        ((0.0, 0.7, 1.5, 2.0), (-1.0, 0.2, 0.5, 2.5)),
        ((-4.6, -3.7, -2.3, -1.4, -0.7, 0.0), (-2.5, -1.9, -0.3, 1.2, 1.25, 2.9)),  # a flat stretch
        ((0.0, 1.0, 2.0, 3.0), (0.0, 1.0, 0.5, 2.0)),  # not monotone: zero slopes at the turns
    ],
)
def test_pchip_is_scipys(xs: tuple, ys: tuple) -> None:
    reference = interpolate.PchipInterpolator(xs, ys, extrapolate=True)
    for x in np.linspace(xs[0] - 0.5, xs[-1] + 0.5, 37):
        assert pchip(xs, ys, float(x)) == pytest.approx(float(reference(x)), abs=1e-12), x
