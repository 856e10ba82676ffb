"""The scaling bench's traffic (bench/scaling.py): the demo's totals per version, dealt over pods x routes."""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections import defaultdict

import pytest

from app.demo.__main__ import demo_traffic
from app.demo.traffic import SCRAPE_INTERVAL, openmetrics
from app.presets import Preset
from bench.scaling import (
    AFTER,
    BLOCK,
    CANARY_AGE,
    HISTORY,
    SCALES,
    STABLE_AGE,
    Scale,
    bench_moment,
    scheduled_seconds,
    scrape_steps,
    services,
    share,
    spread_openmetrics,
    versions,
)
from tests.support.processes import cpu_seconds

NOW = 1_800_000_000.0
SAMPLE = re.compile(r"^(?P<name>[a-z_]+)\{(?P<labels>[^}]*)\} (?P<value>\S+) (?P<at>\S+)$")
LABEL = re.compile(r'(\w+)="([^"]*)"')


def samples(text: str) -> list[tuple[str, dict[str, str], float, float]]:
    parsed = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, line
        labels = dict(LABEL.findall(match["labels"]))
        parsed.append((match["name"], labels, float(match["value"]), float(match["at"])))
    return parsed


def test_shares_sum_to_the_total_and_never_drop() -> None:
    for parts in (1, 2, 7, 1000):
        for index in range(min(parts, 9)):
            shares = [share(total, parts, index) for total in range(3000)]
            assert shares == sorted(shares) and shares[0] == 0
        for total in (0, 1, 5, 999, 1000, 12_345):
            assert sum(share(total, parts, index) for index in range(parts)) == total


def test_scales() -> None:
    assert [scale.factor for scale in SCALES] == [1, 10, 100, 1000]
    for scale in SCALES:
        pairs = scale.pairs()
        assert len(pairs) == scale.factor and len({tuple(p.items()) for p in pairs}) == scale.factor
        # The demo's series for one version: 3 statuses, and a histogram of 11 bounds, +Inf, _count, _sum.
        assert scale.series_per_version() == 17 * scale.factor
    assert len({scale.service for scale in SCALES}) == len(SCALES)


@pytest.mark.parametrize("scale", [Scale(1, 1), Scale(3, 2), Scale(10, 1)], ids=lambda s: f"{s.pods}x{s.routes}")
def test_the_demo_totals_spread_over_the_series(scale: Scale) -> None:
    """At every scrape, the series of a version sum to what the demo writes as one series per status and
    one histogram (app/demo/traffic.py), and each series is a counter that never drops."""
    traffic = [dataclasses.replace(t, stop=NOW + 600) for t in versions(NOW, 600)]
    since = min(t.start for t in traffic)
    spread = samples("".join(spread_openmetrics([(t, scale) for t in traffic], since, SCRAPE_INTERVAL)))
    demo = samples(openmetrics(traffic, Preset()))

    def summed(parsed: list[tuple[str, dict[str, str], float, float]]) -> dict[tuple, float]:
        sums: dict[tuple, float] = defaultdict(float)
        for name, labels, value, at in parsed:
            key = tuple(sorted((k, v) for k, v in labels.items() if k not in ("pod", "route")))
            sums[(name, key, at)] += value
        return sums

    spread_sums, demo_sums = summed(spread), summed(demo)
    assert spread_sums.keys() == demo_sums.keys()
    for key, value in demo_sums.items():
        if key[0].endswith("_sum"):  # each series' sum rounded to the millisecond
            assert spread_sums[key] == pytest.approx(value, abs=0.001 * scale.factor)
        else:
            assert spread_sums[key] == value, key

    series: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
    for name, labels, value, at in spread:
        series[(name, tuple(sorted(labels.items())))].append((at, value))
    assert len(series) == 2 * scale.series_per_version()
    for points in series.values():
        times, values = zip(*points, strict=True)
        assert list(times) == sorted(times) and list(values) == sorted(values)


def test_the_stable_runs_on_from_before_the_backfill_and_the_canary_starts_at_zero() -> None:
    since = NOW - 35 * 60
    traffic = services(NOW, 60, [Scale(1, 1)])
    stable, canary = (t for t, _ in traffic)
    assert (stable.version, canary.version) == ("stable", "canary")
    demo = [t for t in demo_traffic(NOW) if t.service == "checkout"]
    for t in (stable, canary):  # the demo's checkout, whose verdict is a pass: its stable's pods as one series
        served = [d for d in demo if d.version == t.version]
        assert t.rps == sum(d.rps for d in served) and not t.labels
        same = ("error_ratio", "client_error_ratio", "p95_seconds", "sigma")
        assert all(getattr(t, name) == getattr(d, name) for name in same for d in served)
    assert (stable.rps, canary.rps) == (20, 2)
    assert (stable.start, canary.start) == (NOW - STABLE_AGE, NOW - CANARY_AGE)
    assert stable.start + scrape_steps(stable, since, 30.0)[0] * 30.0 == since
    assert scrape_steps(canary, since, 30.0)[0] == 0
    first: dict[str, tuple[float, float]] = {}
    for name, labels, value, at in samples("".join(spread_openmetrics(traffic, since, 30.0))):
        if name == "http_requests_total" and labels["status"] == "200":
            first.setdefault(labels["version"], (at, value))
    assert first["stable"] == (since, pytest.approx(stable.rps * 25 * 60 * (1 - stable.error_ratio), abs=1))
    assert first["canary"] == (canary.start, 0)


def test_cpu_readings_of_this_process() -> None:
    pid = os.getpid()
    before, scheduled = cpu_seconds(pid), scheduled_seconds(pid)
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    assert cpu_seconds(pid) > before and scheduled_seconds(pid) - scheduled >= 0.04


def test_the_moment_keeps_the_traffic_inside_one_block() -> None:
    for now in (NOW, NOW + 59, NOW + 61, NOW + 600, NOW + 3600, NOW + BLOCK - 1, NOW + 12_345.6):
        moment = bench_moment(now)
        assert moment <= now - 60
        first, last = moment - HISTORY, moment + AFTER - 1
        assert first // BLOCK == last // BLOCK
        # The latest such moment: a second later, its traffic would reach into the next block (or the clock).
        later = moment + 1
        assert later > now - 60 or (later - HISTORY) // BLOCK != (later + AFTER - 1) // BLOCK
        assert moment % 60 == 0  # the canary starts on a whole minute, as its start query finds it
