"""How near Prometheus' own speed an analysis runs (shared/docs/measuring-speed.md).

A real Prometheus backfilled with the demo traffic, the analyzer as production runs it
(`canary-analyzer serve`, logging at INFO), the load generator beside them on the same cores.
Every figure is a ratio taken in this one run; absolute times drift between runs.

    .venv/bin/python bench/speed.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import httpx

# Run as a script, only bench/ is on the path: make `app` and `bench` importable too.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import promql
from app.demo.__main__ import CANARY_AGE_SECONDS
from app.judge.builtin_checks import CHECKS
from app.measurement import Plan, Role
from app.presets import Preset
from bench.served import demo_service, forwarding
from tests.support.processes import resident_kib

SERVICE, WINDOW = "checkout", "5m"
VERSIONS = {Role.CANARY: "canary", Role.STABLE: "stable"}
SERVICES = ("checkout", "payments", "search", "onboarding")
IN_FLIGHT = 20
CANARY_AGE = promql.duration_text(CANARY_AGE_SECONDS)  # the demo's canaries started this long before it


def reference_query() -> str:
    """The one query any bucket-based judge must send: both versions' bucket counts over the window."""
    return (
        "sum by (le, version) (increase(http_request_duration_seconds_bucket"
        f'{{service="{SERVICE}", version=~"canary|stable"}}[{WINDOW}]))'
    )


def analyzer_queries() -> list[str]:
    """What an analysis of a canary it has seen before sends: the families since the canary's start,
    with that start checked over the last minutes in the same query (app/canary_lives.py)."""
    plan = replace(Plan.build(CHECKS, Preset(), SERVICE, VERSIONS, CANARY_AGE), start_check=start_query("2m"))
    return list(plan.calls().values())


def start_query(lookback: str) -> str:
    """The canary's start: over the hour for a canary not seen before (the day when it is older), over
    minutes for one seen since."""
    return promql.canary_start_query(Preset(), SERVICE, VERSIONS[Role.CANARY], lookback, "1m")


def median_ms(timings: list[float]) -> float:
    return statistics.median(timings) * 1000


async def timed(times: int, call: Callable[[], Awaitable[object]]) -> list[float]:
    timings = []
    for _ in range(times):
        started = time.perf_counter()
        await call()
        timings.append(time.perf_counter() - started)
    return timings


async def rate(total: int, call: Callable[[int], Awaitable[object]]) -> float:
    """Calls per second with IN_FLIGHT at a time."""
    semaphore = asyncio.Semaphore(IN_FLIGHT)

    async def one(i: int) -> None:
        async with semaphore:
            await call(i)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(total)))
    return total / (time.perf_counter() - started)


async def measure(
    prometheus_url: str, analyzer_url: str, forwarder_url: str, pid: int, scale: float
) -> dict[str, float]:
    now = time.time()
    limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
    async with (
        httpx.AsyncClient(base_url=prometheus_url, timeout=30, limits=limits) as prometheus,
        httpx.AsyncClient(base_url=analyzer_url, timeout=30, limits=limits) as analyzer,
        httpx.AsyncClient(base_url=forwarder_url, timeout=30, limits=limits) as forwarder,
    ):

        async def query(expr: str, at: float | None = None) -> None:
            response = await prometheus.get("/api/v1/query", params={"query": expr, "time": at or time.time()})
            response.raise_for_status()

        async def analyze(**params: object) -> None:
            response = await analyzer.get("/analyze", params={"service": SERVICE, **params})
            assert response.status_code == 200, response.text

        async def query_set() -> None:
            await asyncio.gather(*(query(expr) for expr in analyzer_queries()))

        async def forward() -> None:
            [expr] = analyzer_queries()
            response = await forwarder.get("/forward", params={"query": expr})
            response.raise_for_status()

        rss_before = resident_kib(pid) / 1024
        for _ in range(2):  # warm-up: connection pools, Prometheus' caches, the analyzer's imports
            await timed(int(50 * scale), lambda: query(reference_query()))
            await timed(int(50 * scale), analyze)
            await timed(int(50 * scale), forward)
        reference = await timed(int(200 * scale), lambda: query(reference_query()))
        query_set_timings = await timed(int(200 * scale), query_set)
        forwarded = await timed(int(200 * scale), forward)
        first_start = await timed(int(200 * scale), lambda: query(start_query("1h")))
        analyses = await timed(int(200 * scale), analyze)

        # Distinct: each its own moment (a second apart over the last hour), so nothing can be shared.
        def moment(i: int) -> str:
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60 - i % 3000))

        reference_rate = await rate(int(500 * scale), lambda i: query(reference_query(), now - 60 - i % 3000))
        forward_rate = await rate(int(500 * scale), lambda _: forward())
        distinct_rate = await rate(int(500 * scale), lambda i: analyze(at=moment(i)))

        # Polls: four canaries, each asked at moments a second apart going forward, as Argo's polls
        # are: no answer can be shared, but each canary's start is remembered from the one before.
        def poll(i: int) -> str:
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 600 + i // len(SERVICES)))

        poll_rate = await rate(int(500 * scale), lambda i: analyze(service=SERVICES[i % len(SERVICES)], at=poll(i)))
        # Repeated: the same four analyses over and over, as dashboards and CI fleets ask.
        repeated_rate = await rate(int(1000 * scale), lambda i: analyze(service=SERVICES[i % len(SERVICES)]))
        rss_after = resident_kib(pid) / 1024
    return {
        "reference_ms": median_ms(reference),
        "query_set_ms": median_ms(query_set_timings),
        "forward_ms": median_ms(forwarded),
        "forward_rate": forward_rate,
        "first_start_ms": median_ms(first_start),
        "analyze_ms": median_ms(analyses),
        "reference_rate": reference_rate,
        "distinct_rate": distinct_rate,
        "poll_rate": poll_rate,
        "repeated_rate": repeated_rate,
        "rss_before": rss_before,
        "rss_after": rss_after,
    }


def report(figures: dict[str, float]) -> None:
    f = figures
    print(f"reference query alone, median:            {f['reference_ms']:.2f} ms")
    print(f"the analyzer's query for a poll, median:   {f['query_set_ms']:.2f} ms")
    print(f"a canary's start over the hour (first look): {f['first_start_ms']:.2f} ms")
    print(f"that query through a bare forwarder, median: {f['forward_ms']:.2f} ms")
    print(f"  the stack's floor ÷ reference:           {f['forward_ms'] / f['reference_ms']:.2f}")
    print(f"/analyze, median:                          {f['analyze_ms']:.2f} ms")
    print(f"  latency ratio /analyze ÷ reference:      {f['analyze_ms'] / f['reference_ms']:.2f}   (target ≤ 2.5)")
    print(f"  overhead ratio /analyze ÷ its queries:   {f['analyze_ms'] / f['query_set_ms']:.2f}")
    print(f"reference query, {IN_FLIGHT} in flight:            {f['reference_rate']:.0f} /s")
    print(f"bare forwarder, {IN_FLIGHT} in flight:             {f['forward_rate']:.0f} /s")
    print(f"  the stack's floor ÷ reference rate:      {f['forward_rate'] / f['reference_rate']:.2f}")
    print(f"distinct analyses, {IN_FLIGHT} in flight:          {f['distinct_rate']:.0f} /s")
    distinct = f["distinct_rate"] / f["reference_rate"]
    print(f"  throughput ratio distinct ÷ reference:   {distinct:.2f}   (target ≥ 0.45)")
    print(f"polls (start remembered), {IN_FLIGHT} in flight:   {f['poll_rate']:.0f} /s")
    print(f"  throughput ratio polls ÷ reference:      {f['poll_rate'] / f['reference_rate']:.2f}")
    print(f"repeated analyses, {IN_FLIGHT} in flight:          {f['repeated_rate']:.0f} /s   (target ≥ 250)")
    print(f"analyzer RSS: {f['rss_before']:.0f} MiB before the load, {f['rss_after']:.0f} MiB after   (target < 150)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a fifth of the requests: a rough look in seconds")
    args = parser.parse_args()
    with demo_service() as served, forwarding(served.prometheus.url) as forwarder_url:
        scale = 0.2 if args.quick else 1.0
        figures = asyncio.run(measure(served.prometheus.url, served.url, forwarder_url, served.pid, scale))
    report(figures)


if __name__ == "__main__":
    main()
