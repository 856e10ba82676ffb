"""A team's own signals for user-defined checks: checkout visits and orders (counters), and a
queue's lag (a gauge), per version, on two services whose HTTP traffic is healthy (scenarios.py)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from app.judge.checks import Bound, Check, Limit, Method, Queries, Statistic
from tests.support.scenarios import FUTURE_SECONDS, HISTORY_SECONDS

SCRAPE_INTERVAL = 15.0
STEADY, DROP = "business-steady", "business-drop"

# A checks file as a team would write it: conversion against the stable, queue lag against an SLO.
CHECKS_FILE = """\
checks:
  - name: checkout_conversion
    title: checkout conversion
    events: sum(increase(orders_total{service="$service",version="$version"}[$window]))
    trials: sum(increase(checkout_visits_total{service="$service",version="$version"}[$window]))
    worse: lower
    compare: stable
    limit:
      field: conversion_drop_max
      default: 0.02
      minimum: 0
      maximum: 1
      description: How far the canary's conversion may fall below the stable's.
  - name: queue_lag
    title: queue lag
    value: max(max_over_time(queue_lag_seconds{service="$service",version="$version"}[$window]))
    unit: seconds
    worse: higher
    compare: slo
    method: threshold
    limit:
      field: queue_lag_max_seconds
      default: 30
      minimum: 0
      maximum: 86400
      description: The longest a message may wait in the queue.
"""


@dataclass(frozen=True)
class Shop:
    service: str
    version: str
    visits_per_second: float
    conversion: float
    queue_lag_seconds: float


SHOPS = (
    Shop(STEADY, "canary", 2, 0.30, 2),
    Shop(STEADY, "stable", 10, 0.30, 2),
    Shop(DROP, "canary", 2, 0.20, 45),  # a third fewer orders, and a queue falling behind
    Shop(DROP, "stable", 10, 0.30, 2),
)


def openmetrics(now: float) -> str:
    lines = [*_counters(now), *_gauges(now), "# EOF"]
    return "\n".join(lines) + "\n"


def _scrapes(now: float) -> Iterator[tuple[float, float]]:
    """(timestamp, seconds since the start) at each scrape."""
    start = now - HISTORY_SECONDS
    for step in range(int((HISTORY_SECONDS + FUTURE_SECONDS) // SCRAPE_INTERVAL) + 1):
        yield start + step * SCRAPE_INTERVAL, step * SCRAPE_INTERVAL


def _labels(shop: Shop) -> str:
    return f'{{service="{shop.service}",version="{shop.version}"}}'


def _counters(now: float) -> Iterator[str]:
    for family, share in (("checkout_visits", None), ("orders", "conversion")):
        yield f"# TYPE {family} counter"
        for shop in SHOPS:
            for ts, elapsed in _scrapes(now):
                visits = math.floor(shop.visits_per_second * elapsed)
                count = visits if share is None else math.floor(visits * shop.conversion)
                yield f"{family}_total{_labels(shop)} {count} {ts:.3f}"


def _gauges(now: float) -> Iterator[str]:
    yield "# TYPE queue_lag_seconds gauge"
    for shop in SHOPS:
        for ts, _ in _scrapes(now):
            yield f"queue_lag_seconds{_labels(shop)} {shop.queue_lag_seconds} {ts:.3f}"


# A share held above its SLO, where lower is worse: the upper bound decides a fail.
CONVERSION_FLOOR = Check(
    name="conversion",
    title="conversion rate",
    statistic=Statistic.RATIO,
    bound=Bound.AT_LEAST,
    method=Method.BINOMIAL,
    limit=Limit(field="conversion_min", description="Conversion SLO.", default=0.1, minimum=0, maximum=1),
    queries=Queries(
        events='sum(increase(orders_total{app="$service",version="$version"}[$window]))',
        trials='sum(increase(visits_total{app="$service",version="$version"}[$window]))',
    ),
)
