"""Distributions with chosen numbers, for judging on plain data (no Prometheus)."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from app.demo.traffic import BUCKETS, bucket_fractions
from app.judge.checks import Observed, Source
from app.judge.distributions import Histogram, Outcomes


def histogram(p95: float, count: float) -> Histogram:
    """`count` observations whose histogram_quantile(0.95) is `p95` (the demo traffic's shape)."""
    fractions = [*bucket_fractions(p95), 1.0]
    return Histogram.from_buckets(zip([*BUCKETS, float("inf")], (f * count for f in fractions), strict=True))


def lognormal(p95: float, count: float, sigma: float = 0.5) -> Histogram:
    """`count` observations spread as a lognormal whose true (not interpolated) P95 is `p95`."""
    median = p95 / math.exp(sigma * 1.6448536269514722)
    cumulative = [count * float(stats.lognorm.cdf(bound, sigma, scale=median)) for bound in BUCKETS]
    return Histogram((*BUCKETS, math.inf), (*cumulative, count))


def observed(requests: float | None = 1000, error_rate: float | None = 0.001, p95: float | None = 0.1) -> Observed:
    """None for a number means its family has no series."""
    outcomes = None
    if requests is not None and error_rate is not None:
        outcomes = Outcomes(ok=requests * (1 - error_rate), errors=requests * error_rate)
    latency = histogram(p95, requests or 0) if p95 is not None else None
    return {Source.REQUESTS: outcomes, Source.LATENCY: latency}


def sampled(
    rng, requests: int, error_rate: float = 0.0, median: float = 0.08, sigma: float = 0.5, factor: float = 1.0
) -> Observed:
    """Requests drawn at random: latencies lognormal(median * factor, sigma) counted into the
    default buckets, errors binomial. For calibration and power on fixed seeds."""
    latencies = rng.lognormal(math.log(median * factor), sigma, requests)
    per_bucket = np.bincount(np.searchsorted(BOUNDS, latencies), minlength=len(BOUNDS))
    errors = int(rng.binomial(requests, error_rate))
    return {
        Source.REQUESTS: Outcomes(ok=requests - errors, errors=errors),
        Source.LATENCY: Histogram(BOUNDS, tuple(float(c) for c in np.cumsum(per_bucket))),
    }


BOUNDS = (*BUCKETS, math.inf)
