"""How many requests were slower than a limit that lies between two bucket bounds.

A bucket (250 ms, 500 ms] says how many requests took between 250 and 500 ms, not how many of
them took longer than 300 ms: that takes a model of the shape inside the bucket. Interpolating
the CDF linearly, as `histogram_quantile` and `histogram_fraction` do, puts too many requests
high in a bucket on the slow side of a distribution (with the true P95 exactly 300 ms it reads
7-12 % slower than 300 ms, where the truth is 5 %), so it is no basis for aborting anyone.

What this module assumes instead, and only this: across the SLO's bucket and its two neighbours,
the CDF seen on a probit or a logit scale against log-latency does not turn (it is convex or
concave there). That holds for lognormal, gamma, Weibull and log-logistic latencies, and for a
slow mode of requests anywhere but inside the SLO's own bucket. Under it, the share slower than
the limit is bounded on each side:

- at least (what a fail must clear): the fewer of the chord (the convex case) and the tangent
  continuing the slope of the bucket below (the concave case: the curve cannot climb faster
  than it did there, nor, where that bucket is empty, faster than MAX_SLOPE_RATIO times across
  the SLO's own bucket);
- at most (what a pass must stay under): the more of the chord (the concave case) and the
  interpolation below. A light (convex) tail can put a little more over the limit than the
  chord: such canaries are at most about 10 % over the SLO's P95 among every shape tried, which
  a pass at `pass_confidence` may miss and a fail may not.

Each share the bounds are drawn through is taken at its confidence bound (NEIGHBOUR_CONFIDENCE)
on the side that widens them: the model's inputs are counts too. The estimate shown is a
monotone cubic (PCHIP) interpolation of probit(F) in log-latency, never under the lower bound.

Nothing in bucket counts can see a mode *inside* the SLO's bucket (it moves requests within the
bucket without changing any count): that is the one case the assumption excludes, and a bucket
bound at the SLO the one cure. Where the model cannot be used (the SLO under the second bound or
over the last finite one, no requests under the SLO's bucket or none in it), the shares are only
bracketed by the neighbouring bounds.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from scipy import special

from app.judge import statistics
from app.judge.distributions import Histogram

Link = tuple[Callable[[float], float], Callable[[float], float]]
LINKS: dict[str, Link] = {
    "probit": (lambda p: float(special.ndtri(p)), lambda y: float(special.ndtr(y))),
    "logit": (lambda p: float(special.logit(p)), lambda y: float(special.expit(y))),
}


# The outer neighbours' shares are taken at this confidence bound, on the side that widens the bounds.
NEIGHBOUR_CONFIDENCE = 0.9
# How much steeper than across the SLO's bucket the curve may be at its lower edge, where the bucket
# below cannot say (empty): every shape tried stayed under 2.
MAX_SLOPE_RATIO = 2.5


class Model(StrEnum):
    EXACT = "exact"  # a bucket bound sits at the limit: counted, not modelled
    SHAPE = "shape-bounded"  # bounded by the no-turn assumption, estimated by interpolation
    BRACKET = "bracket"  # only the neighbouring bounds: at least those over the upper, at most those over the lower


@dataclass(frozen=True)
class SlowerThan:
    """Requests slower than `limit`: at least `low`, at most `high`, about `estimate` (counts)."""

    limit: float
    total: float
    low: float
    high: float
    estimate: float
    model: Model
    below: float | None  # the bucket bound under the limit; None: under the first bound
    above: float | None  # the bucket bound over it; None: over the last finite bound


def slower_than(histogram: Histogram, limit: float) -> SlowerThan:
    bounds, cumulative, total = histogram.bounds, histogram.cumulative, histogram.total
    finite = [b for b in bounds if math.isfinite(b)]
    at = [i for i, b in enumerate(finite) if math.isclose(b, limit, rel_tol=1e-9)]
    if at:
        over = total - cumulative[at[0]]
        return SlowerThan(limit, total, over, over, over, Model.EXACT, finite[at[0]], finite[at[0]])
    j = int(np.searchsorted(finite, limit))  # finite[j - 1] < limit < finite[j]
    below = finite[j - 1] if j > 0 else None
    above = finite[j] if j < len(finite) else None
    over_above = total - cumulative[j] if above is not None else 0.0
    over_below = total - cumulative[j - 1] if below is not None else total
    bracket = SlowerThan(
        limit, total, over_above, over_below, (over_above + over_below) / 2, Model.BRACKET, below, above
    )
    # The model needs the bucket below the SLO's and the one above it, requests in the SLO's bucket and
    # some under it: with none under, the curve rises from nothing at the bucket's edge, a slope no
    # neighbour can bound.
    in_bucket = over_below - over_above
    if total <= 0 or j < 2 or j + 1 >= len(finite) or in_bucket <= 0 or cumulative[j - 1] <= 0:
        return bracket
    share = [c / total for c in cumulative[: len(finite)]]
    x = [math.log(b) for b in finite[j - 2 : j + 2]]
    neighbours = list(cumulative[j - 2 : j + 2])
    at_most = _cdf_at_limit_at_most(x, math.log(limit), neighbours, total)
    at_least = _cdf_at_limit_at_least(x, math.log(limit), neighbours, total)
    lowest, highest = _fraction_over(share, j, at_most), _fraction_over(share, j, at_least)
    # The interpolation follows a light tail's bend better than the chord does: never count fewer.
    estimate = max(_interpolated(finite, share, j, limit), lowest)
    highest = max(highest, estimate)
    return SlowerThan(
        limit,
        total,
        over_above + lowest * in_bucket,
        over_above + highest * in_bucket,
        over_above + estimate * in_bucket,
        Model.SHAPE,
        below,
        above,
    )


def _cdf_at_limit_at_most(x: list[float], at: float, counts: list[float], total: float) -> float:
    """The highest the CDF can be at the limit: the chord (a convex curve lies under it) or the
    tangent continuing the slope from the bucket below (a concave one under that), whichever is
    higher, on either scale. Every share is taken at its confidence bound on the side that raises it."""
    outer, lower, upper = (
        statistics.share_lower_bound(counts[0], total, NEIGHBOUR_CONFIDENCE),
        statistics.share_upper_bound(counts[1], total, NEIGHBOUR_CONFIDENCE),
        statistics.share_upper_bound(counts[2], total, NEIGHBOUR_CONFIDENCE),
    )
    highest = 0.0
    for to_scale, from_scale in LINKS.values():
        y0, y1, y2 = (_scaled(to_scale, p) for p in (outer, lower, upper))
        if y2 == math.inf:
            return 1.0
        across = (y2 - y1) / (x[2] - x[1])
        chord = y1 + across * (at - x[1])
        slope = min((y1 - y0) / (x[1] - x[0]), MAX_SLOPE_RATIO * across)
        tangent = min(y1 + slope * (at - x[1]), y2)
        highest = max(highest, from_scale(chord), from_scale(tangent))
    return highest


def _cdf_at_limit_at_least(x: list[float], at: float, counts: list[float], total: float) -> float:
    """The lowest the CDF is taken to be at the limit, for a pass: the chord on either scale (a
    concave curve lies over it). A convex one lies under it: light tails can put a little more of
    the bucket over the limit than the chord does (canaries up to about 10 % over the SLO's P95,
    among every shape tried), which a pass at `pass_confidence` is allowed to miss; a fail is not."""
    lower, upper = (statistics.share_lower_bound(c, total, NEIGHBOUR_CONFIDENCE) for c in counts[1:3])
    lowest = 1.0
    for to_scale, from_scale in LINKS.values():
        y1, y2 = _scaled(to_scale, lower), _scaled(to_scale, upper)
        if y1 == -math.inf:
            return 0.0
        lowest = min(lowest, from_scale(y1 + (y2 - y1) * (at - x[1]) / (x[2] - x[1])))
    return lowest


def _scaled(to_scale: Callable[[float], float], p: float) -> float:
    """The link of a share, with 0 and 1 at -inf and +inf (a slope to or from them is unbounded)."""
    if p <= 0:
        return -math.inf
    if p >= 1:
        return math.inf
    return to_scale(p)


def _fraction_over(share: list[float], j: int, at_limit: float) -> float:
    """The fraction of the SLO's bucket (share[j-1], share[j]] above a CDF value at the limit."""
    at_limit = min(max(at_limit, share[j - 1]), share[j])
    return (share[j] - at_limit) / (share[j] - share[j - 1])


def _interpolated(finite: list[float], share: list[float], j: int, limit: float) -> float:
    """PCHIP of probit(F) in log-latency through every bound with 0 < F < 1: the point estimate."""
    points = [(math.log(b), float(special.ndtri(p))) for b, p in zip(finite, share, strict=False) if 0 < p < 1]
    if len(points) < 2:
        return 0.5
    xs, ys = zip(*points, strict=True)
    return _fraction_over(share, j, float(special.ndtr(pchip(xs, ys, math.log(limit)))))


def pchip(xs: Sequence[float], ys: Sequence[float], x: float) -> float:
    """scipy's PchipInterpolator(xs, ys, extrapolate=True)(x) at one point, without building it (a
    hundredth of the cost): Fritsch-Carlson slopes at the two knots around x, then the cubic."""
    n = len(xs)
    k = min(max(bisect.bisect_right(xs, x) - 1, 0), n - 2)  # the interval holding x, or the nearest end's
    widths = [xs[i + 1] - xs[i] for i in range(n - 1)]
    slopes = [(ys[i + 1] - ys[i]) / widths[i] for i in range(n - 1)]

    def derivative(i: int) -> float:
        if n == 2:
            return slopes[0]
        if i == 0:
            return _edge(widths[0], widths[1], slopes[0], slopes[1])
        if i == n - 1:
            return _edge(widths[-1], widths[-2], slopes[-1], slopes[-2])
        before, after = slopes[i - 1], slopes[i]
        if before * after <= 0:
            return 0.0
        w1, w2 = 2 * widths[i] + widths[i - 1], widths[i] + 2 * widths[i - 1]
        return (w1 + w2) / (w1 / before + w2 / after)

    h, t = widths[k], (x - xs[k]) / widths[k]
    d0, d1 = derivative(k), derivative(k + 1)
    return (
        ys[k] * (2 * t**3 - 3 * t**2 + 1)
        + h * d0 * (t**3 - 2 * t**2 + t)
        + ys[k + 1] * (-2 * t**3 + 3 * t**2)
        + h * d1 * (t**3 - t**2)
    )


def _edge(h0: float, h1: float, m0: float, m1: float) -> float:
    """The slope at an end knot: a one-sided three-point estimate, kept monotone (scipy's rule)."""
    d = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
    if math.copysign(1, d) != math.copysign(1, m0):
        return 0.0
    if math.copysign(1, m0) != math.copysign(1, m1) and abs(d) > abs(3 * m0):
        return 3 * m0
    return d
