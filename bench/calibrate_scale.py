"""What `canary-analyzer calibrate` costs on a week of one service at 1000x the demo's series (bench/README.md,
"calibrate on a week of history").

One service's stable: `--pods` x `--routes` (50 x 20) pairs, each (pod, route) with the demo's request series (three
statuses) and its latency histogram's 12 buckets: 15,000 series, the `_count` and `_sum` left out (calibrate reads
neither; they are other metric names, which its queries never touch). Scraped every `--scrape-interval` seconds (60)
for `--days` (7) up to now and an hour past it; each pair's requests Poisson per scrape around 0.02 a second, with a
daily cycle; one pod 30 % slower. Backfilled a day at a time with promtool; then calibrate runs against it as a person
runs it (`--period` the days less an hour, `--json`), and this reports its wall time, its CPU and Prometheus', the
queries and samples it read, and its figures in short.

    .venv/bin/python bench/calibrate_scale.py [--days 7] [--pods 50] [--routes 20] [--scrape-interval 60]
        [--concurrency 2] [--data DIR (kept, reused when it holds the blocks)]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.demo.local_prometheus import LocalPrometheus, ensure_installed
from app.demo.traffic import BUCKETS
from tests.support.processes import cpu_seconds

SERVICE = "scale1000x"
STATUSES = {"200": 0.95, "404": 0.04, "500": 0.01}
LE = (*(f"{bound:g}" for bound in BUCKETS), "+Inf")
RPS_PER_PAIR = 0.02  # 20 requests a second per pod over its 20 routes, 1,000 a second in all
DAILY_SWING = 0.5
MEDIAN_SECONDS, SIGMA = 0.06, 0.6
SLOW_POD, SLOW_FACTOR = 7, 1.3
FUTURE_SECONDS = 3600
DAY = 86400
BACKFILLS = 2  # promtool runs at once: one a core


def shares(factor: float) -> np.ndarray:
    """Each request's share at or under each bound: lognormal latencies, `factor` slower."""
    median = MEDIAN_SECONDS * factor
    under = [0.5 * (1 + math.erf(math.log(b / median) / (SIGMA * math.sqrt(2)))) for b in BUCKETS]
    return np.array([*under, 1.0])


def served(day: int, args: argparse.Namespace, anchor: float, carried: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The day's scrapes (the last day runs an hour past the anchor) and each pair's requests served so far at each,
    (pods x routes, scrapes), from what they had served before (`carried`, updated)."""
    first = math.floor((anchor - args.days * DAY) / args.scrape_interval) * args.scrape_interval + 17.0
    length = DAY + (FUTURE_SECONDS if day == args.days - 1 else 0)
    before = int(day * DAY / args.scrape_interval)
    times = first + args.scrape_interval * np.arange(before, before + int(length / args.scrape_interval))
    rate = RPS_PER_PAIR * (1 + DAILY_SWING * np.cos(2 * np.pi * (times - anchor) / DAY)) * args.scrape_interval
    draws = np.random.default_rng(day).poisson(rate, (args.pods * args.routes, len(times)))
    counts = carried[:, None] + np.cumsum(draws, axis=1)
    carried[:] = counts[:, -1]
    return [f"{t:.3f}" for t in times], counts


def write_day(path: Path, stamps: list[str], counts: np.ndarray, args: argparse.Namespace) -> None:
    """The day as OpenMetrics, each family's series together, as promtool reads them."""
    pairs = [(pod, route) for pod in range(args.pods) for route in range(args.routes)]

    def labels(pod: int, route: int) -> str:
        return f'service="{SERVICE}",version="stable",pod="pod-{pod:02d}",route="/api/r{route}"'

    def lines(name: str, values: np.ndarray) -> str:
        return "".join(f"{name} {value} {stamp}\n" for value, stamp in zip(values.tolist(), stamps, strict=True))

    with path.open("w") as out:
        out.write("# TYPE http_requests counter\n")
        for (pod, route), row in zip(pairs, counts, strict=True):
            for status, share in STATUSES.items():
                out.write(
                    lines(
                        f'http_requests_total{{{labels(pod, route)},status="{status}"}}',
                        np.floor(row * share).astype(int),
                    )
                )
        out.write("# TYPE http_request_duration_seconds histogram\n")
        for (pod, route), row in zip(pairs, counts, strict=True):
            under = shares(SLOW_FACTOR if pod == SLOW_POD else 1.0)
            for le, share in zip(LE, under, strict=True):
                name = f'http_request_duration_seconds_bucket{{{labels(pod, route)},le="{le}"}}'
                out.write(lines(name, np.floor(row * share).astype(int)))
        out.write("# EOF\n")


def backfilled(data: Path, args: argparse.Namespace, anchor: float) -> None:
    """Each day's text written in turn (the counters carry on), backfilled with promtool beside the next, into a
    folder of its own whose blocks then join the rest."""
    carried = np.zeros(args.pods * args.routes, dtype=np.int64)
    data.mkdir(parents=True, exist_ok=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=BACKFILLS) as pool:
        done = []
        for day in range(args.days):
            started = time.perf_counter()
            stamps, counts = served(day, args, anchor, carried)
            source = data / f"day-{day}.om"
            write_day(source, stamps, counts, args)
            print(f"  day {day + 1}/{args.days} written in {time.perf_counter() - started:.0f} s", file=sys.stderr)
            done.append(pool.submit(_backfill_day, source, data / f"day-{day}", data))
            if len(done) > BACKFILLS:  # no more days' text on disk than are being backfilled, and the next
                done.pop(0).result()
        for future in done:
            future.result()


def _backfill_day(source: Path, into: Path, data: Path) -> None:
    started = time.perf_counter()
    into.mkdir()
    command = ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(into)]
    subprocess.run(command, check=True, capture_output=True)
    source.unlink()
    for block in into.iterdir():
        block.rename(data / block.name)
    into.rmdir()
    print(f"  {source.name} backfilled in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--pods", type=int, default=50)
    parser.add_argument("--routes", type=int, default=20)
    parser.add_argument("--scrape-interval", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--data", type=Path, help="where the blocks are kept (and reused when there)")
    args = parser.parse_args(argv)
    ensure_installed()
    with tempfile.TemporaryDirectory(prefix="calibrate-scale-") as tmp:
        data = args.data or Path(tmp) / "tsdb"
        anchor_file = data / "anchor"
        if anchor_file.exists():
            anchor = float(anchor_file.read_text())
            print(
                f"reusing the blocks in {data}, anchored {(time.time() - anchor) / 60:.0f} minutes ago", file=sys.stderr
            )
        else:
            anchor = time.time()
            started = time.perf_counter()
            series = args.pods * args.routes * (len(STATUSES) + len(LE))
            print(f"{series:,} series, {args.days} days every {args.scrape_interval:g} s", file=sys.stderr)
            backfilled(data, args, anchor)
            anchor_file.write_text(str(anchor))
            print(f"backfilled in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        period = f"{args.days * 24 - 1}h"
        with LocalPrometheus(data) as prometheus:
            prometheus_cpu = cpu_seconds(prometheus.pid)
            command = [
                str(Path(sys.executable).parent / "canary-analyzer"),
                "calibrate",
                "--service",
                SERVICE,
                "--period",
                period,
                "--concurrency",
                str(args.concurrency),
                "--json",
                "--prometheus-url",
                prometheus.url,
            ]
            started = time.perf_counter()
            result = subprocess.run(command, capture_output=True, text=True)
            wall = time.perf_counter() - started
            prometheus_cpu = cpu_seconds(prometheus.pid) - prometheus_cpu
    if result.returncode not in (0, 1):
        raise SystemExit(f"calibrate exited {result.returncode}: {result.stdout}{result.stderr}")
    figures = json.loads(result.stdout)
    cost = figures["cost"]
    print(f"calibrate --period {period} on {SERVICE}: exit {result.returncode} in {wall:.0f} s wall")
    print(
        f"  read: {cost['queries']} queries ({cost['refused']} refused), {cost['samples']:,} samples, "
        f"{cost['read_seconds']:.1f} s, at most {cost['concurrency']} at a time; Prometheus CPU {prometheus_cpu:.1f} s"
    )
    print(f"  replay: {cost['runs']:,} runs, {cost['answers']:,} answers, {cost['replay_seconds']:.1f} s")
    for reason in figures["reasons"]:
        print(f"  - {reason}")


if __name__ == "__main__":
    main()
