"""What was measured for one version over the window: distributions, not scalars.

Latency is the window's histogram (observations at or under each bucket bound `le`);
requests are counted by outcome. Quantiles, shares and rates are computed from these, so
every number shown is one Prometheus itself would give for the same data.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Outcomes:
    """Requests in the window, by outcome."""

    ok: float
    errors: float

    @property
    def total(self) -> float:
        return self.ok + self.errors

    @property
    def error_rate(self) -> float:
        return self.errors / self.total if self.total > 0 else math.nan


@dataclass(frozen=True)
class RecentTraffic:
    """A version's requests in the last stretch of its timeline, and when it last served one."""

    requests: float
    seconds: float  # how long that stretch is
    last_served: float | None  # unix seconds, to the minute; None: not within the timeline
    meanwhile: float | None = None  # its requests since the other version last served one (None: unknown)

    @property
    def total(self) -> float:
        return self.requests


@dataclass(frozen=True)
class Histogram:
    """Cumulative observation counts by ascending upper bound; the last bound is +Inf.

    Built with `from_buckets`, which makes the counts what `histogram_quantile` works on.
    """

    bounds: tuple[float, ...]
    cumulative: tuple[float, ...]

    @classmethod
    def from_buckets(cls, buckets: Iterable[tuple[float, float]]) -> Histogram:
        """(le, cumulative count) pairs in any order, prepared exactly as Prometheus' own
        `histogram_quantile` prepares them: sorted, equal bounds merged, and counts forced
        monotonic (per-bucket `increase()` extrapolation can make them dip)."""
        merged: dict[float, float] = {}
        for bound, count in buckets:
            merged[bound] = merged.get(bound, 0.0) + count
        bounds = tuple(sorted(merged))
        if not bounds or bounds[-1] != math.inf:
            raise ValueError("a histogram needs a +Inf bucket")
        cumulative, highest = [], merged[bounds[0]]
        for bound in bounds:
            count = merged[bound]
            if count > highest:
                highest = count
            elif count < highest:
                count = highest
            cumulative.append(count)
        return cls(bounds, tuple(cumulative))

    @property
    def total(self) -> float:
        return self.cumulative[-1]

    def per_bucket(self) -> tuple[float, ...]:
        """Observations in each bucket (bound[i-1], bound[i]]."""
        return tuple(c - p for c, p in zip(self.cumulative, (0.0, *self.cumulative[:-1]), strict=True))

    def coarsened(self, bounds: tuple[float, ...]) -> Histogram:
        """The same observations on fewer buckets: a subset of this histogram's bounds, +Inf last."""
        index = {bound: i for i, bound in enumerate(self.bounds)}
        return Histogram(bounds, tuple(self.cumulative[index[bound]] for bound in bounds))

    def above(self, bound: float) -> float:
        """Observations above one of the bucket bounds."""
        return self.total - self.cumulative[self.bounds.index(bound)]

    def quantile(self, q: float) -> float:
        """`histogram_quantile(q, ...)` to the last bit: linear interpolation inside the bucket
        that holds the rank, the top finite bound when the rank is in the +Inf bucket."""
        if math.isnan(q):
            return math.nan
        if q < 0:
            return -math.inf
        if q > 1:
            return math.inf
        if len(self.bounds) < 2 or self.total == 0:
            return math.nan
        rank = q * self.total
        b = self._rank_bucket(rank)
        if b == len(self.bounds) - 1:
            return self.bounds[-2]
        if b == 0 and self.bounds[0] <= 0:
            return self.bounds[0]
        start, count = 0.0, self.cumulative[b]
        if b > 0:
            start = self.bounds[b - 1]
            count -= self.cumulative[b - 1]
            rank -= self.cumulative[b - 1]
        return start + (self.bounds[b] - start) * _divide(rank, count)

    def quantile_bucket(self, q: float) -> tuple[float, float] | None:
        """The bucket (lower, upper] the q-quantile observation lies in; None without data."""
        if not 0 <= q <= 1 or len(self.bounds) < 2 or not self.total > 0:
            return None
        b = self._rank_bucket(q * self.total)
        lower = self.bounds[b - 1] if b > 0 else (0.0 if self.bounds[0] > 0 else -math.inf)
        return lower, self.bounds[b]

    def _rank_bucket(self, rank: float) -> int:
        # Go's sort.Search over all buckets but the last: the first whose count reaches the rank.
        return bisect.bisect_left(self.cumulative, rank, hi=len(self.cumulative) - 1)


def _divide(numerator: float, denominator: float) -> float:
    """IEEE division, as Go does it: 0/0 is NaN, x/0 is ±Inf."""
    if denominator == 0:
        return math.nan if numerator == 0 or math.isnan(numerator) else math.copysign(math.inf, numerator)
    return numerator / denominator


@dataclass(frozen=True)
class NativeHistogram:
    """A Prometheus native histogram: its buckets as the API lists them, (lower, upper, count)
    in ascending order (empty ones left out), and its total count."""

    buckets: tuple[tuple[float, float, float], ...]
    count: float

    @property
    def total(self) -> float:
        return self.count

    def quantile(self, q: float) -> float:
        """`histogram_quantile(q, ...)` on a native histogram as Prometheus 2.4x computes it: the
        bucket where the running count reaches the rank, linear interpolation inside it."""
        if q < 0:
            return -math.inf
        if q > 1:
            return math.inf
        if self.count == 0 or math.isnan(q) or not self.buckets:
            return math.nan
        rank = q * self.count
        index, running = self._rank_bucket(rank)
        lower, upper, count = self.buckets[index]
        lower = self._zero_bucket_lower(lower, upper)
        running = min(running, self.count)
        if running < rank:  # only NaN observations leave the rank unreached
            return upper
        return lower + (upper - lower) * _divide(rank - (running - count), count)

    def quantile_bucket(self, q: float) -> tuple[float, float] | None:
        if not 0 <= q <= 1 or not self.count > 0 or not self.buckets:
            return None
        lower, upper, _ = self.buckets[self._rank_bucket(q * self.count)[0]]
        return self._zero_bucket_lower(lower, upper), upper

    def _rank_bucket(self, rank: float) -> tuple[int, float]:
        """The first bucket whose running count reaches the rank (else the last), and that count."""
        running = 0.0
        for index, (_, _, count) in enumerate(self.buckets):
            running += count
            if running >= rank:
                return index, running
        return len(self.buckets) - 1, running

    def classic(self, bounds: tuple[float, ...]) -> Histogram:
        """The same observations on classic buckets with these upper bounds (+Inf last): each
        native bucket counted at the first bound at or above its upper edge. Exact when the
        bounds include every native bucket's edges, as the union of two versions' edges at one
        schema does."""
        cumulative = [0.0] * len(bounds)
        for _, upper, count in self.buckets:
            cumulative[bisect.bisect_left(bounds, upper)] += count
        running = 0.0
        for i, count in enumerate(cumulative):
            running += count
            cumulative[i] = running
        cumulative[-1] = max(cumulative[-1], self.count)
        return Histogram(bounds, tuple(cumulative))

    def edges(self) -> set[float]:
        return {edge for lower, upper, _ in self.buckets for edge in (lower, upper)}

    def _zero_bucket_lower(self, lower: float, upper: float) -> float:
        # A zero bucket straddling 0 in a histogram with only positive buckets starts at 0.
        if lower < 0 < upper and all(b_upper > 0 for _, b_upper, _ in self.buckets):
            return 0.0
        return lower


def on_shared_buckets(*versions: Histogram | NativeHistogram) -> tuple[Histogram, ...]:
    """The versions on classic buckets: native ones on the union of all their edges (exact for
    histograms of one schema), classic ones as they are."""
    edges: set[float] = set()
    for version in versions:
        edges |= version.edges() if isinstance(version, NativeHistogram) else set(version.bounds)
    bounds = (*sorted(e for e in edges if math.isfinite(e)), math.inf)
    return tuple(v.classic(bounds) if isinstance(v, NativeHistogram) else v for v in versions)
