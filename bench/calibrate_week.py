"""calibrate on a week of synthetic history (bench/README.md, "calibrate on a week of history").

The test suite's `shop` (tests/support/calibration.py): twenty stable pods at 2 requests a second each with a
daily cycle (x1.6 at the peak, x0.4 at the trough), lognormal latencies, 1 % errors, one pod 30 % slower (a slow
node), one restarting, one replaced; scraped every minute for a week and three hours, backfilled with promtool
into a real Prometheus. calibrate replays it as a person runs it (`--period 7d --json`); this prints its A/A
figures beside those of the same kind of canaries in bench/judgment_quality.py (healthy, at 3 requests a second
or more, REFERENCE below), whether the slow pod is named, what the injected regressions found, and the cost.

    .venv/bin/python bench/calibrate_week.py [--days 7] [--html FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.demo.local_prometheus import LocalPrometheus, backfill, ensure_installed
from app.judge import statistics
from tests.support import calibration
from tests.support.processes import cpu_seconds

DAY = 86400.0
# Healthy canaries at >= 3 requests a second in bench/judgment_quality.py through a real Prometheus (bench/README.md,
# "Verdict quality", 2026-12-04): the step template's runs aborted and paused, of how many; the background's.
REFERENCE = {"step": {"aborted": (0, 119), "paused": (1, 119)}, "background": {"aborted": (0, 49), "paused": (0, 49)}}
CONFIDENCE = 0.95


def interval(count: int, runs: int) -> tuple[float, float]:
    tail = (1 + CONFIDENCE) / 2
    return statistics.share_lower_bound(count, runs, tail), statistics.share_upper_bound(count, runs, tail)


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--html", type=Path, help="also write calibrate's page here")
    args = parser.parse_args(argv)
    ensure_installed()
    history = args.days * DAY + 3 * 3600
    with tempfile.TemporaryDirectory(prefix="calibrate-week-") as tmp:
        started = time.perf_counter()
        text = calibration.openmetrics(time.time(), services=(calibration.SHOP,), history_seconds=history)
        written = time.perf_counter() - started
        backfill(text, Path(tmp) / "data")
        print(f"history: {args.days} days of shop, {text.count(chr(10)):,} samples, written in {written:.0f} s, "
              f"backfilled in {time.perf_counter() - started - written:.0f} s")  # fmt: skip
        command = [str(Path(sys.executable).parent / "canary-analyzer"), "calibrate", "--service", "shop"]
        command += ["--period", f"{args.days}d", "--json", *(["--html", str(args.html)] if args.html else [])]
        with LocalPrometheus(Path(tmp) / "data") as prometheus:
            before = cpu_seconds(prometheus.pid)
            started = time.perf_counter()
            result = subprocess.run([*command, "--prometheus-url", prometheus.url], capture_output=True, text=True)
            wall = time.perf_counter() - started
            prometheus_cpu = cpu_seconds(prometheus.pid) - before
    if result.returncode not in (0, 1):
        raise SystemExit(f"calibrate exited {result.returncode}: {result.stdout}{result.stderr}")
    figures = json.loads(result.stdout)
    print(f"calibrate --period {args.days}d: exit {result.returncode} in {wall:.0f} s wall, Prometheus CPU "
          f"{prometheus_cpu:.1f} s")  # fmt: skip
    print("\n| template | runs | aborted (95 %) | paused (95 %) | judgment_quality, healthy >= 3 rps | within its CI |")
    print("| --- | --- | --- | --- | --- | --- |")
    for template in figures["templates"]:
        reference = REFERENCE[template["template"]]
        cells, agree = [], True
        for outcome in ("aborted", "paused"):
            share = template[outcome]
            found = (share["low"] or 0.0, share["high"] or 1.0)
            agree &= overlap(found, interval(*reference[outcome]))
            cells.append(f"{share['count']} ({100 * found[0]:.2f}-{100 * found[1]:.2f} %)")
        expected = ", ".join(f"{outcome} {n} of {runs}" for outcome, (n, runs) in reference.items())
        print(f"| {template['template']} | {template['runs']} | {cells[0]} | {cells[1]} | {expected} | "
              f"{'yes' if agree else 'NO'} |")  # fmt: skip
    named = [value["value"] for value in figures["values"] if value["differs"]]
    print(f"\npods named as differing: {named} (the slow one: {calibration.SLOW_POD})")
    print("\n| regression | template | aborted (95 %) | minutes to abort (median, p90) |\n| --- | --- | --- | --- |")
    for row in figures["power"]["injected"]:
        aborted = row["aborted"]
        minutes = f"{row['median_minutes']:g}, {row['p90_minutes']:g}" if row["median_minutes"] is not None else "-"
        print(f"| {row['regression']} | {row['template']} | {aborted['count']} of {aborted['runs']} "
              f"({100 * aborted['low']:.1f}-{100 * aborted['high']:.1f} %) | {minutes} |")  # fmt: skip
    smallest = [f"{search['kind']} {search['caught']}" for search in figures["power"]["smallest"]]
    print(f"smallest caught in 95 % of step runs: {', '.join(smallest)}")
    cost = figures["cost"]
    print(f"cost: {cost['queries']} queries, {cost['samples']:,} samples, read in {cost['read_seconds']:.1f} s; "
          f"{cost['runs']:,} runs replayed in {cost['replay_seconds']:.1f} s")  # fmt: skip
    for reason in figures["reasons"]:
        print(f"  - {reason}")


if __name__ == "__main__":
    main()
