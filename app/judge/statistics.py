"""The statistics behind mode=statistical, on plain numbers: no checks, no verdicts.

Distribution functions come from scipy.special (the ufuncs scipy.stats is built on): the same
numbers at a hundredth of the call cost, which matters on every answer.

Counts are floats: Prometheus' `increase()` extrapolates to the window's edges, so a window
holds "about 412.6" requests. Every formula here accepts fractional counts and agrees with
scipy's integer-count reference where one exists (see tests/test_statistics.py).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special
from scipy.optimize import brentq

# --- one proportion: exact (Clopper-Pearson) bounds and the binomial test ------------------


def binomial_p_value(k: float, n: float, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p): the p-value of "the share is above p" seeing k of n."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    return float(special.betainc(k, n - k + 1, p))


def share_lower_bound(k: float, n: float, confidence: float) -> float:
    """One-sided Clopper-Pearson lower bound of the share behind k of n."""
    return 0.0 if k <= 0 else float(special.betaincinv(k, n - k + 1, 1 - confidence))


def share_upper_bound(k: float, n: float, confidence: float) -> float:
    """One-sided Clopper-Pearson upper bound of the share behind k of n."""
    return 1.0 if k >= n else float(special.betaincinv(k + 1, n - k, confidence))


# --- two proportions: the Miettinen-Nurminen score test for a difference --------------------


def difference_score(x1: float, n1: float, x2: float, n2: float, margin: float) -> float:
    """Miettinen-Nurminen's z for "share 1 minus share 2 exceeds margin": the observed difference
    less the margin, over its standard error where the difference is exactly the margin.

    A score test takes the variance under the null rather than at the estimate (as Wald and
    Agresti-Caffo do): when the canary errs a lot, its own variance is large, the null's small,
    so a real regression is seen with far fewer requests."""
    n = n1 + n2
    p1, p2 = x1 / n1, x2 / n2
    null1, null2 = _restricted_shares(x1, n1, x2, n2, margin)
    variance = (null1 * (1 - null1) / n1 + null2 * (1 - null2) / n2) * n / (n - 1)
    observed = p1 - p2 - margin
    if variance <= 0:  # both shares at 0 or 1 under the null: only the sign is known
        return 0.0 if observed == 0 else math.copysign(math.inf, observed)
    return observed / math.sqrt(variance)


def difference_p_value(x1: float, n1: float, x2: float, n2: float, margin: float) -> float:
    """Of "share 1 minus share 2 exceeds margin"."""
    return float(special.ndtr(-difference_score(x1, n1, x2, n2, margin)))


def _restricted_shares(x1: float, n1: float, x2: float, n2: float, margin: float) -> tuple[float, float]:
    """The maximum-likelihood shares under "share 1 - share 2 = margin" (Miettinen & Nurminen
    1985, the closed form of the cubic's root), clipped into [0, 1]."""
    n, x = n1 + n2, x1 + x2
    if margin == 0:
        return x / n, x / n
    a3 = n
    a2 = (n1 + 2 * n2) * margin - n - x
    a1 = (x2 * margin - n - 2 * x2) * margin + x
    a0 = x2 * margin * (1 - margin)
    q = (a2 / (3 * a3)) ** 3 - a1 * a2 / (6 * a3**2) + a0 / (2 * a3)
    root = (a2 / (3 * a3)) ** 2 - a1 / (3 * a3)
    p = math.copysign(math.sqrt(max(root, 0.0)), q)
    angle = (math.pi + math.acos(min(1.0, max(-1.0, q / p**3)))) / 3 if p != 0 else math.pi / 3
    share2 = 2 * p * math.cos(angle) - a2 / (3 * a3)
    share2 = min(max(share2, max(0.0, -margin)), min(1.0, 1 - margin))
    return share2 + margin, share2


def difference_bound(x1: float, n1: float, x2: float, n2: float, confidence: float, upper: bool) -> float:
    """A one-sided confidence bound for share 1 - share 2, inverting the score test."""
    target = float(-special.ndtri(confidence) if upper else special.ndtri(confidence))

    def gap(margin: float) -> float:  # plain floats: brentq calls it a score of times per bound
        return min(max(difference_score(x1, n1, x2, n2, margin), -1e9), 1e9) - target

    low, high = -1 + 1e-12, 1 - 1e-12
    if gap(low) <= 0:
        return -1.0
    if gap(high) >= 0:
        return 1.0
    return brentq(gap, low, high, xtol=1e-10)


# --- two distributions on shared buckets: Brunner-Munzel --------------------------------


@dataclass(frozen=True)
class RankComparison:
    """Brunner-Munzel's relative effect of y over x on bucketed data (ties within a bucket)."""

    effect: float  # P(x < y) + P(x = y) / 2: 0.5 when neither tends to be larger
    statistic: float  # W: (effect - 0.5) / its standard error
    df: float  # Welch-Satterthwaite degrees of freedom of the t approximation

    def p_value(self) -> float:
        """Of "y tends to be larger than x"."""
        return float(special.stdtr(self.df, -self.statistic))


def brunner_munzel(x: Sequence[float], y: Sequence[float]) -> RankComparison:
    """x and y are counts per bucket, the same buckets in ascending order; counts may be fractional.

    On integer counts this is scipy.stats.brunnermunzel on the bucket indices, computed in
    O(buckets) instead of O(requests)."""
    effect, statistic, df = _brunner_munzel(np.asarray(x, dtype=float)[None, :], np.asarray(y, dtype=float))
    return RankComparison(float(effect[0]), float(statistic[0]), float(df[0]))


def _brunner_munzel(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Brunner-Munzel for many x (rows) against one y, or against a y of their own (rows of y too):
    (effects, statistics, degrees of freedom).

    On placements: a request's rank among all less its rank within its own version is the number of
    the other version's requests below it, ties counted half; in bucket terms, the other's counts
    summed below the bucket plus half its own. The ranks' means and variances follow from them."""
    # One y for every row: matrix products; a y per row: the same sums row by row.
    dot = (lambda a, b: a @ b) if y.ndim == 1 else (lambda a, b: np.einsum("rb,rb->r", a, b))
    nx, ny = x.sum(axis=1), y.sum(axis=-1)
    x_below = np.cumsum(x, axis=1) - x / 2  # where a y request in each bucket stands among x's
    y_below = np.cumsum(y, axis=-1) - y / 2  # where an x request in each bucket stands among y's
    mean_x, mean_y = dot(x, y_below) / nx, dot(x_below, y) / ny  # the mean placements
    sx = (x * (y_below - mean_x[:, None]) ** 2).sum(axis=1) / (nx - 1)
    sy = dot((x_below - mean_y[:, None]) ** 2, y) / (ny - 1)
    spread = nx * sx + ny * sy
    effect = mean_y / nx
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = np.where(
            spread > 0,
            # The mean ranks' difference: each version's mean placement plus its mean rank within itself.
            nx * ny * (mean_y - mean_x + (ny - nx) / 2) / ((nx + ny) * np.sqrt(spread)),
            # Every request of both versions in one bucket (no difference), or the two fully apart.
            np.where(effect == 0.5, 0.0, np.copysign(np.inf, effect - 0.5)),
        )
        df = np.where(spread > 0, spread**2 / ((nx * sx) ** 2 / (nx - 1) + (ny * sy) ** 2 / (ny - 1)), np.inf)
    return effect, statistic, df


# --- latency scaled by a factor, on the same buckets --------------------------------------


def scaled(bounds: Sequence[float], counts: Sequence[float], factor: float) -> np.ndarray:
    """Per-bucket counts of the same requests with every latency multiplied by `factor`.

    The one modelled step of the statistics: inside a bucket, requests are taken to be spread
    evenly in log-latency (the lowest and the +Inf bucket as wide, in log terms, as their
    neighbours), so a factor moves a proportional part of each bucket's mass across its edges.
    With a bound at or below 0 nothing moves."""
    return _scaled_many(bounds, np.asarray(counts, dtype=float), np.array([math.log(factor)]))[0]


def _scaled_many(bounds: Sequence[float], counts: np.ndarray, log_factors: np.ndarray) -> np.ndarray:
    """`scaled` for many factors at once: one row per factor."""
    return np.einsum("k,gkj->gj", counts, _moves(tuple(bounds), tuple(log_factors)))


@functools.lru_cache(maxsize=64)
def _moves(bounds: tuple[float, ...], log_factors: tuple[float, ...]) -> np.ndarray:
    """For each factor, the share of each bucket's mass that lands in each bucket once scaled."""
    finite = np.asarray(bounds[:-1], dtype=float)
    if len(finite) < 2 or finite[0] <= 0:
        return np.broadcast_to(np.eye(len(bounds)), (len(log_factors), len(bounds), len(bounds)))
    edges = np.log(finite)
    low = np.concatenate(([edges[0] - (edges[1] - edges[0])], edges))
    high = np.concatenate((edges, [edges[-1] + (edges[-1] - edges[-2])]))
    # Each bucket's log interval, shifted, spread over the real buckets (the outer two unbounded).
    target_low = np.concatenate(([-np.inf], edges))
    target_high = np.concatenate((edges, [np.inf]))
    shift = np.asarray(log_factors)[:, None, None]
    overlap = np.minimum(high[None, :, None] + shift, target_high[None, None, :]) - np.maximum(
        low[None, :, None] + shift, target_low[None, None, :]
    )
    return overlap.clip(min=0) / (high - low)[None, :, None]


@dataclass(frozen=True)
class ShiftEstimate:
    """How much slower the canary is than the stable, as a factor on the stable's latency."""

    estimate: float  # the factor that makes the two look alike (relative effect 0.5)
    lower: float  # the smallest factor not excluded at the lower confidence
    upper: float  # the largest factor not excluded at the upper confidence


MIN_FACTOR, MAX_FACTOR = 1 / 100, 100.0


GRID = tuple(np.linspace(math.log(MIN_FACTOR), math.log(MAX_FACTOR), 81))  # steps of about 12 %
FINE = 33  # inside the step: about 0.4 %, then interpolated


def latency_factor(
    bounds: Sequence[float],
    canary: Sequence[float],
    stable: Sequence[float],
    lower_confidence: float,
    upper_confidence: float,
) -> ShiftEstimate:
    """Inverts the Brunner-Munzel test of canary vs stable scaled by a factor: the estimate where
    the statistic is 0, the bounds where it reaches the critical values. Factors are capped to
    [1/100, 100]; a bound at a cap means "at least / at most that".

    The statistic falls as the factor grows; each crossing is found on a coarse grid of factors,
    then on a fine one inside the bracketing step (all vectorised: an analysis stays about 1 ms)."""
    canary_counts, stable_counts = np.asarray(canary, dtype=float), np.asarray(stable, dtype=float)

    def statistics_at(log_factors: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
        scaled_stable = np.einsum("k,gkj->gj", stable_counts, _moves(tuple(bounds), log_factors))
        _, statistic, df = _brunner_munzel(scaled_stable, canary_counts)
        return np.clip(statistic, -1e9, 1e9), df

    def gaps(statistic: np.ndarray, df: np.ndarray, target: float, confidence: float | None) -> np.ndarray:
        return statistic if confidence is None else statistic - target * special.stdtrit(df, confidence)

    targets = ((0.0, None), (1.0, lower_confidence), (-1.0, upper_confidence))
    coarse = statistics_at(GRID)
    steps = [_crossing(gaps(*coarse, target, confidence)) for target, confidence in targets]
    # The fine grids inside every bracketing step, evaluated together: one pass for the three crossings.
    fine_grid = tuple(x for i in steps if i is not None for x in np.linspace(GRID[i - 1], GRID[i], FINE))
    fine_statistic, fine_df = statistics_at(fine_grid) if fine_grid else coarse
    factors, row = [], 0
    for step, (target, confidence) in zip(steps, targets, strict=True):
        if step is None:  # no crossing inside the caps: "at least / at most that"
            factors.append(MIN_FACTOR if gaps(*coarse, target, confidence)[0] <= 0 else MAX_FACTOR)
            continue
        part = slice(row, row + FINE)
        row += FINE
        values = gaps(fine_statistic[part], fine_df[part], target, confidence)
        factors.append(math.exp(_crossed_at(fine_grid[part], values)))
    return ShiftEstimate(*factors)


def _crossing(values: np.ndarray) -> int | None:
    """The first grid point past the statistic's crossing of its target; None when it does not cross
    inside the grid (it is below already at the first point, or still above at the last)."""
    if values[0] <= 0 or values[-1] >= 0:
        return None
    return int(np.argmax(values <= 0))


def _crossed_at(x: Sequence[float], values: np.ndarray) -> float:
    """Where `values` (falling along `x`) cross 0, linearly between the grid points around it."""
    j = max(int(np.argmax(values <= 0)), 1)
    a, b, fa, fb = x[j - 1], x[j], values[j - 1], values[j]
    return a + (b - a) * fa / (fa - fb) if fa != fb else a
