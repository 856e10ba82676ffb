"""A service's own history for `calibrate`: a stable of many pods (a `pod` label each), a daily cycle in its
rate, Poisson traffic and lognormal latencies, seeded; some pods slower or erring more than the rest.

Scraped every SCRAPE_INTERVAL seconds, off the minute, from HISTORY_SECONDS before the anchor to
FUTURE_SECONDS after it (the suite replays up to "now"). One pod restarts half-way (its counters fall to 0),
one is replaced by a new one (its series end, the new one's begin).

`minute_history` is a history as calibrate reads it, in process: for the replay's and the figures' own tests.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from app.calibration.history import History

REQUESTS_METRIC = "http_requests_total"
DURATION_METRIC = "http_request_duration_seconds"
BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
SCRAPE_INTERVAL = 60.0
SCRAPE_OFFSET = 17.0  # seconds past the minute: a scrape is never exactly at a boundary
HISTORY_SECONDS = 26 * 3600
FUTURE_SECONDS = 3600
DAY = 86400.0


@dataclass(frozen=True)
class Pod:
    name: str
    latency_factor: float = 1.0
    error_share: float = 0.01
    rps_factor: float = 1.0
    restarts_at: float | None = None  # seconds into the history: its counters start again from 0
    lives: tuple[float, float] = (0.0, math.inf)  # seconds into the history it is scraped between


@dataclass(frozen=True)
class Service:
    name: str
    pods: tuple[Pod, ...]
    rps_per_pod: float
    median_seconds: float = 0.06
    sigma: float = 0.5
    daily_swing: float = 0.6  # the rate is (1 + swing * cos(day's angle)) times the mean, at its peak at the anchor
    version: str = "stable"
    extra_labels: dict[str, str] = field(default_factory=lambda: {"zone": "eu-west-1a"})


def _pods(count: int, prefix: str, **changed: Pod) -> tuple[Pod, ...]:
    names = [f"{prefix}-{i:02d}" for i in range(count)]
    return tuple(changed.get(name, Pod(name)) for name in names)


SLOW_POD = "shop-07"
RESTARTED_POD = "shop-03"
GONE_POD, NEW_POD = "shop-12", "shop-20"
# The service's stable: twenty pods, one 30 % slower (a slow node); one restarts, one is replaced.
SHOP = Service(
    "shop",
    (
        *_pods(
            20,
            "shop",
            **{
                SLOW_POD: Pod(SLOW_POD, latency_factor=1.3),
                RESTARTED_POD: Pod(RESTARTED_POD, restarts_at=HISTORY_SECONDS / 2),
                GONE_POD: Pod(GONE_POD, lives=(0.0, HISTORY_SECONDS * 0.6)),
            },
        ),
        Pod(NEW_POD, lives=(HISTORY_SECONDS * 0.6, math.inf)),
    ),
    rps_per_pod=2.0,
)
BATCH_POD = "jobs-02"
# A pod that takes the batch jobs: twice as slow, and it errs five times as often as the rest.
JOBS = Service(
    "jobs", _pods(6, "jobs", **{BATCH_POD: Pod(BATCH_POD, latency_factor=2.0, error_share=0.05)}), rps_per_pod=2.0
)
SERVICES = (SHOP, JOBS)


def openmetrics(
    anchor: float,
    seed: int = 7,
    services: tuple[Service, ...] = SERVICES,
    history_seconds: float = HISTORY_SECONDS,
) -> str:
    """The services' series from `history_seconds` before `anchor` to FUTURE_SECONDS after it."""
    rng = np.random.default_rng(seed)
    first = math.floor((anchor - history_seconds) / SCRAPE_INTERVAL) * SCRAPE_INTERVAL + SCRAPE_OFFSET
    times = first + SCRAPE_INTERVAL * np.arange(int((history_seconds + FUTURE_SECONDS) / SCRAPE_INTERVAL))
    requests, buckets = [f"# TYPE {REQUESTS_METRIC.removesuffix('_total')} counter"], []
    buckets.append(f"# TYPE {DURATION_METRIC} histogram")
    for service in services:
        for pod in service.pods:
            requests_lines, bucket_lines = _pod_lines(rng, service, pod, times, first, anchor)
            requests += requests_lines
            buckets += bucket_lines
    return "\n".join([*requests, *buckets, "# EOF"]) + "\n"


def _pod_lines(
    rng: np.random.Generator, service: Service, pod: Pod, times: np.ndarray, first: float, anchor: float
) -> tuple[list[str], list[str]]:
    elapsed = times - first
    scraped = (elapsed >= pod.lives[0]) & (elapsed < pod.lives[1])
    times = times[scraped]
    rate = (
        service.rps_per_pod * pod.rps_factor * (1 + service.daily_swing * np.cos(2 * math.pi * (times - anchor) / DAY))
    )
    served = rng.poisson(rate * SCRAPE_INTERVAL)
    served[0] = 0  # a series begins at 0
    errors = rng.binomial(served, pod.error_share)
    # Each request's bucket: lognormal latencies, the pod's own factor slower.
    median = service.median_seconds * pod.latency_factor
    under = [0.5 * (1 + math.erf(math.log(bound / median) / (service.sigma * math.sqrt(2)))) for bound in BUCKETS]
    shares = np.diff([0.0, *under, 1.0])
    per_bucket = np.array([rng.multinomial(n, shares) for n in served])
    restart = (
        np.searchsorted(elapsed[scraped], pod.restarts_at)
        if pod.restarts_at is not None
        else len(times)
    )  # fmt: skip
    labels = {"service": service.name, "version": service.version, "pod": pod.name, **service.extra_labels}
    labels["instance"] = f"10.0.{SERVICES.index(service)}.{int(pod.name.rsplit('-', 1)[1]) + 10}:8080"

    def counters(values: np.ndarray) -> np.ndarray:
        before, after = np.cumsum(values[:restart], axis=0), np.cumsum(values[restart:], axis=0)
        return np.concatenate([before, after]) if len(after) else before

    ok, err = counters(served - errors), counters(errors)
    at_or_under = np.cumsum(counters(per_bucket), axis=1)
    stamps = [f"{t:.3f}" for t in times]
    requests = [
        *_series(REQUESTS_METRIC, {**labels, "status": "200"}, stamps, ok),
        *_series(REQUESTS_METRIC, {**labels, "status": "500"}, stamps, err),
    ]
    bounds = [*(f"{bound:g}" for bound in BUCKETS), "+Inf"]
    histogram = [
        line
        for i, le in enumerate(bounds)
        for line in _series(f"{DURATION_METRIC}_bucket", {**labels, "le": le}, stamps, at_or_under[:, i])
    ]
    return requests, histogram


# The regressions every calibration reports, as it names them (the issue's +1, +3, +5 points and x1.1, x1.25, x1.5).
NAMED_REGRESSIONS = (
    "+1 point of 5xx",
    "+3 points of 5xx",
    "+5 points of 5xx",
    "x1.1 latency",
    "x1.25 latency",
    "x1.5 latency",
)


# --- a history as read, without Prometheus -------------------------------------------------------------

START = 1_800_000_000.0  # a minute boundary, and an hour's
MINUTE_BOUNDS = (0.05, 0.1, 0.25, 0.5, math.inf)
SHARES = np.array([0.25, 0.5, 0.22, 0.03, 0.0])  # each request's bucket
SLOWER = np.array([0.0, 0.25, 0.5, 0.22, 0.03])  # a bucket up


def minute_history(slow: str | None = None, hours: float = 4.0, rps: float = 4.0, seed: int = 1) -> History:
    """A History as read (app/calibration/history.py), from START on: six pods serving `rps` each, their requests
    Poisson a minute, 1 % errors; `slow` a bucket slower."""
    rng = np.random.default_rng(seed)
    pods = tuple(f"web-{i}" for i in range(6))
    count = int(hours * 60)
    served = rng.poisson(rps * 60, (len(pods), count)).astype(float)
    errors = rng.binomial(served.astype(int), 0.01).astype(float)
    buckets = np.array(
        [
            [rng.multinomial(int(n), SLOWER if pod == slow else SHARES) for n in row]
            for pod, row in zip(pods, served, strict=True)
        ],
        dtype=float,
    )
    kept = np.ones((len(pods), count), dtype=bool)
    ends = START + 60.0 * np.arange(1, count + 1)
    return History("pod", pods, ends, served - errors, errors, MINUTE_BOUNDS, buckets, kept, ~kept)


def _series(name: str, labels: dict[str, str], stamps: list[str], values: np.ndarray) -> Iterator[str]:
    text = ",".join(f'{key}="{value}"' for key, value in labels.items())
    for stamp, value in zip(stamps, values.tolist(), strict=True):
        yield f"{name}{{{text}}} {int(value)} {stamp}"
