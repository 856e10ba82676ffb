"""Synthetic canary/stable traffic, written as OpenMetrics for `promtool` to backfill.

Each version serves steady traffic with a known request rate, 5xx and 4xx shares and a P95
that `histogram_quantile` reproduces exactly, so the demo and the tests know what to expect.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace

from app.presets import Preset

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SCRAPE_INTERVAL = 15.0


@dataclass(frozen=True)
class Traffic:
    """What one version of one service serves between `start` and `stop` (unix seconds)."""

    service: str
    version: str
    rps: float
    start: float
    stop: float
    error_ratio: float = 0.0  # 5xx
    client_error_ratio: float = 0.0  # 4xx: not errors of the service
    p95_seconds: float = 0.1
    # Labels besides the preset's, e.g. Istio's reporter="source" on the caller's copy of each request.
    labels: Mapping[str, str] = field(default_factory=dict)
    # Latencies spread as a lognormal of this sigma whose true P95 is `p95_seconds`, as real ones spread;
    # None: in the two buckets that make histogram_quantile read `p95_seconds` exactly (for the tests).
    sigma: float | None = None
    # From this moment on it serves nothing more, its pods still scraped: counters flat, series there.
    idle_after: float | None = None
    # From `turns_at` on, what it serves has these fields instead (a regression that starts late).
    turns_at: float | None = None
    turned: Mapping[str, float] = field(default_factory=dict)

    def fractions(self) -> list[float]:
        if self.sigma is None:
            return bucket_fractions(self.p95_seconds)
        return lognormal_fractions(self.p95_seconds, self.sigma)

    def served(self, elapsed: float) -> int:
        """Requests served in the first `elapsed` seconds since `start`."""
        if self.idle_after is not None:
            elapsed = min(elapsed, self.idle_after - self.start)
        return math.floor(self.rps * max(elapsed, 0.0))

    def phases(self, elapsed: float) -> list[tuple[Traffic, int]]:
        """What was served in the first `elapsed` seconds, by how it was served: before the turn, and after."""
        turn = None if self.turns_at is None else self.turns_at - self.start
        if turn is None or elapsed <= turn:
            return [(self, self.served(elapsed))]
        turned = replace(self, turns_at=None, **self.turned)  # its own rate, if that turned too
        return [(self, self.served(turn)), (turned, turned.served(elapsed) - turned.served(turn))]


def bucket_fractions(p95_seconds: float) -> list[float]:
    """Cumulative share of requests at or under each bucket bound, for a given P95.

    histogram_quantile interpolates linearly inside the bucket (lo, hi] that holds the
    95th percentile: lo + (hi - lo) * (0.95 - F(lo)) / (F(hi) - F(lo)). Writing
    r = (p95 - lo) / (hi - lo), F(lo) = (0.95 - r) / (1 - r) with F(hi) = 1 gives p95
    exactly; past r = 0.95 that would go negative, so F(lo) = 0 and F(hi) = 0.95 / r.
    """
    index = bisect.bisect_right(BUCKETS, p95_seconds)
    if index == len(BUCKETS):  # beyond the top bucket: histogram_quantile answers +Inf
        return [0.0] * len(BUCKETS)
    if index == 0:
        raise ValueError(f"a P95 of {p95_seconds} is below the first bucket bound")
    lo, hi = BUCKETS[index - 1], BUCKETS[index]
    r = (p95_seconds - lo) / (hi - lo)
    at_lo, at_hi = ((0.95 - r) / (1 - r), 1.0) if r <= 0.95 else (0.0, 0.95 / r)
    return [0.0] * (index - 1) + [at_lo, at_hi] + [1.0] * (len(BUCKETS) - index - 1)


def lognormal_fractions(p95_seconds: float, sigma: float) -> list[float]:
    """Cumulative share of requests at or under each bucket bound, for lognormal latencies whose true
    95th percentile is `p95_seconds`."""
    median = p95_seconds / math.exp(sigma * Z_95)
    return [0.5 * (1 + math.erf(math.log(bound / median) / (sigma * math.sqrt(2)))) for bound in BUCKETS]


Z_95 = 1.6448536269514722  # the standard normal's 95th percentile


def openmetrics(traffic: Iterable[Traffic], preset: Preset) -> str:
    """The traffic in the preset's shape: its metric and label names, filters and latency unit."""
    traffic = list(traffic)
    lines = [*_requests_family(traffic, preset), *_duration_family(traffic, preset), "# EOF"]
    return "\n".join(lines) + "\n"


def _scrapes(t: Traffic) -> Iterator[tuple[float, list[tuple[Traffic, int]]]]:
    """(timestamp, requests served so far by how they were served) at each scrape."""
    steps = int((t.stop - t.start) // SCRAPE_INTERVAL)
    for step in range(steps + 1):
        elapsed = step * SCRAPE_INTERVAL
        yield t.start + elapsed, t.phases(elapsed)


def _labels(c: Preset, t: Traffic, **extra: str) -> str:
    pairs = {c.service_label: t.service, c.version_label: t.version, **c.filters, **t.labels, **extra}
    return "{" + ",".join(f'{k}="{v}"' for k, v in pairs.items() if v) + "}"


def _requests_family(traffic: list[Traffic], c: Preset) -> Iterator[str]:
    name = c.requests_metric
    if name.endswith("_total"):
        yield f"# TYPE {name.removesuffix('_total')} counter"
    else:
        yield f"# TYPE {name} unknown"
    for t in traffic:
        for status in ("200", "404", "500"):
            labels = _labels(c, t, **{c.error_label: status})
            for ts, phases in _scrapes(t):
                yield f"{name}{labels} {sum(_by_status(p, served)[status] for p, served in phases)} {ts:.3f}"


def _by_status(t: Traffic, served: int) -> dict[str, int]:
    errors = math.floor(served * t.error_ratio)
    client_errors = math.floor(served * t.client_error_ratio)
    return {"200": served - errors - client_errors, "404": client_errors, "500": errors}


def _duration_family(traffic: list[Traffic], c: Preset) -> Iterator[str]:
    name = c.duration_metric
    yield f"# TYPE {name} histogram"
    for t in traffic:
        bounds = [*(f"{b / c.seconds_per_unit:g}" for b in BUCKETS), "+Inf"]
        for i, bound in enumerate(bounds):
            labels = _labels(c, t, le=bound)
            for ts, phases in _scrapes(t):
                under = sum(math.floor(served * [*p.fractions(), 1.0][i]) for p, served in phases)
                yield f"{name}_bucket{labels} {under} {ts:.3f}"
        for ts, phases in _scrapes(t):
            yield f"{name}_count{_labels(c, t)} {sum(served for _, served in phases)} {ts:.3f}"
        for ts, phases in _scrapes(t):
            seconds = sum(served * p.p95_seconds * 0.6 for p, served in phases)
            yield f"{name}_sum{_labels(c, t)} {seconds / c.seconds_per_unit:.3f} {ts:.3f}"
