"""How the cost of an analysis grows with the number of series behind a service (bench/README.md).

Four services serve the same traffic per version (the demo's `checkout`: stable 20 rps, canary
2 rps, the same error shares and latencies), spread over 1x, 10x, 100x and 1000x the series of
the demo's: pods x routes, each (pod, route) with the demo's three status series and its
histogram, the pod and route as labels the analyzer's queries aggregate away. A real Prometheus
holds them all, the analyzer runs as production runs it (`canary-analyzer serve`, logging at
INFO), and for each service this measures, one call at a time, the CPU each process spends per
call (utime + stime from /proc) and the median latencies: of analyses that remember no canary
start (a first look) and of analyses that do (Argo polling the same canary), of the queries they
send, sent straight to Prometheus, and of the HTML report. Absolute figures drift between runs:
read them as ratios within one run.

    .venv/bin/python bench/scaling.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

# Run as a script, only bench/ is on the path: make `app`, `bench` and `tests` importable too.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.demo.__main__ import demo_traffic
from app.demo.local_prometheus import LocalPrometheus, ensure_installed
from app.demo.traffic import BUCKETS, Traffic
from app.presets import Preset
from app.promql import canary_start_query
from app.settings import Settings
from tests.support.processes import cpu_seconds
from tests.support.servers import AnalyzerServer

STATUSES = ("200", "404", "500")  # the demo's: one series each per version
LE = (*(f"{bound:g}" for bound in BUCKETS), "+Inf")
SCRAPE_INTERVAL = 30.0
CANARY_AGE = 20 * 60  # the canary's pods started this long before the bench's moment
STABLE_AGE = 60 * 60  # the stable's counters start this long before it...
HISTORY = 50 * 60  # ...but only this much of its past is backfilled: the report's 30m lookback of 21m spans
AFTER = 10 * 60  # traffic after the moment: the repeated analyses judge the seconds after it
# promtool writes blocks of 2h, aligned to the epoch. A query whose range crosses a block's edge reads every
# series in both blocks: at 1000x about twice the CPU of the same query inside one (bench/README.md).
BLOCK = 2 * 3600
PRESET = Preset()
CANARY, STABLE = "canary", "stable"


@dataclass(frozen=True)
class Scale:
    """pods x routes (pod, route) pairs per version, each with the demo's series for one version."""

    pods: int
    routes: int

    @property
    def factor(self) -> int:
        return self.pods * self.routes

    @property
    def service(self) -> str:
        return f"scale{self.factor}x"

    def pairs(self) -> list[dict[str, str]]:
        """The labels that tell one (pod, route) from another: the queries aggregate them away."""
        return [{"pod": f"pod-{p}", "route": f"/api/r{r}"} for p in range(self.pods) for r in range(self.routes)]

    def series_per_version(self) -> int:
        # A series per status; the histogram: a bucket per bound, +Inf, _count and _sum.
        return self.factor * (len(STATUSES) + len(LE) + 2)


SCALES = (Scale(1, 1), Scale(10, 1), Scale(10, 10), Scale(50, 20))


def share(total: int, parts: int, index: int) -> int:
    """Requests numbered 0, 1, ... dealt round-robin over `parts` series: how many of the first `total`
    went to series `index`. The shares sum to `total`, and each grows with it (a counter never drops)."""
    return (total - index + parts - 1) // parts


def bench_moment(now: float) -> float:
    """The moment every analysis and query is judged at or around (`at`): the latest one, at least a minute
    before `now`, whose traffic (HISTORY before it, AFTER after it) lies inside one of promtool's blocks, so
    that no query's cost depends on where the run fell on the clock."""
    return (now - 60 + AFTER) // BLOCK * BLOCK - AFTER


def versions(now: float, future: float) -> list[Traffic]:
    """The demo's checkout, canary and stable, as they stand at `now` (the stable's counters began an hour
    before, the canary's 20 minutes), served until just before `now + future`."""
    demo = [t for t in demo_traffic(now, future) if t.service == "checkout"]
    # The demo's stable pods served as one series: the bench multiplies series by its own scales.
    stable = [t for t in demo if t.version == STABLE]
    served = {CANARY: next(t for t in demo if t.version == CANARY), STABLE: stable[0]}
    served[STABLE] = dataclasses.replace(stable[0], rps=sum(t.rps for t in stable), labels={})
    checkout = {version: dataclasses.replace(t, stop=now + future - 1) for version, t in served.items()}
    return [
        dataclasses.replace(checkout[STABLE], start=now - STABLE_AGE),
        dataclasses.replace(checkout[CANARY], start=now - CANARY_AGE),
    ]


def scrape_steps(t: Traffic, since: float, interval: float) -> range:
    """The scrapes written, as steps of `interval` from `t.start`: those from `since` (its counters run on
    from before) to `t.stop`."""
    return range(max(0, math.ceil((since - t.start) / interval)), int((t.stop - t.start) // interval) + 1)


def totals(t: Traffic, steps: range, interval: float) -> dict[str, list[int]]:
    """The version's counters at each scrape, summed over every series, as the demo writes them for one
    series: requests by status, and the histogram's cumulative bucket counts by bound (`+Inf`: all)."""
    served = [math.floor(t.rps * step * interval) for step in steps]
    errors = [math.floor(n * t.error_ratio) for n in served]
    client_errors = [math.floor(n * t.client_error_ratio) for n in served]
    counts = {
        "200": [n - e - c for n, e, c in zip(served, errors, client_errors, strict=True)],
        "404": client_errors,
        "500": errors,
    }
    for le, fraction in zip(LE, [*t.fractions(), 1.0], strict=True):
        counts[le] = [math.floor(n * fraction) for n in served]
    return counts


def spread_openmetrics(traffic: Iterable[tuple[Traffic, Scale]], since: float, interval: float) -> Iterator[str]:
    """Lines of OpenMetrics text (app/demo/traffic.py's shape, the default preset's names): each version's
    totals dealt over its scale's (pod, route) series, every series' samples in time order."""
    traffic = [(t, scale, scrape_steps(t, since, interval)) for t, scale in traffic]
    series = [(t, scale, steps, totals(t, steps, interval)) for t, scale, steps in traffic]
    requests, duration = PRESET.requests_metric, PRESET.duration_metric
    yield f"# TYPE {requests.removesuffix('_total')} counter\n"
    for t, scale, steps, counts in series:
        times = [f"{t.start + step * interval:.3f}" for step in steps]
        for index, pair in enumerate(scale.pairs()):
            for status in STATUSES:
                labels = _labels(t, pair, **{PRESET.error_label: status})
                for at, total in zip(times, counts[status], strict=True):
                    yield f"{requests}{labels} {share(total, scale.factor, index)} {at}\n"
    yield f"# TYPE {duration} histogram\n"
    for t, scale, steps, counts in series:
        times = [f"{t.start + step * interval:.3f}" for step in steps]
        for index, pair in enumerate(scale.pairs()):
            for le in LE:
                labels = _labels(t, pair, le=le)
                for at, total in zip(times, counts[le], strict=True):
                    yield f"{duration}_bucket{labels} {share(total, scale.factor, index)} {at}\n"
            served = [share(total, scale.factor, index) for total in counts["+Inf"]]
            labels = _labels(t, pair)
            for at, n in zip(times, served, strict=True):
                yield f"{duration}_count{labels} {n} {at}\n"
            for at, n in zip(times, served, strict=True):
                yield f"{duration}_sum{labels} {n * t.p95_seconds * 0.6:.3f} {at}\n"
    yield "# EOF\n"


def _labels(t: Traffic, pair: dict[str, str], **extra: str) -> str:
    pairs = {PRESET.service_label: t.service, PRESET.version_label: t.version, **pair, **extra}
    return "{" + ",".join(f'{k}="{v}"' for k, v in pairs.items()) + "}"


def services(now: float, future: float, scales: Sequence[Scale] = SCALES) -> list[tuple[Traffic, Scale]]:
    return [(dataclasses.replace(t, service=scale.service), scale) for scale in scales for t in versions(now, future)]


# --- The backfill -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backfilled:
    samples: int
    text_bytes: int
    write_seconds: float  # generating the text
    promtool_seconds: float  # wall
    promtool_cpu_seconds: float
    tsdb_bytes: int


def backfill(lines: Iterable[str], data_dir: Path, scratch: Path) -> Backfilled:
    """The text streamed to a file (1000x is hundreds of MB), then promtool, timed."""
    started = time.perf_counter()
    source = scratch / "backfill.om"
    samples = 0
    with source.open("w") as out:
        chunk: list[str] = []
        for line in lines:
            chunk.append(line)
            samples += line[0] != "#"
            if len(chunk) == 100_000:
                out.writelines(chunk)
                chunk = []
        out.writelines(chunk)
    written = time.perf_counter() - started
    text_bytes = source.stat().st_size
    data_dir.mkdir(parents=True, exist_ok=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(data_dir)],
        capture_output=True,
        text=True,
    )
    promtool = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    source.unlink()
    if result.returncode != 0:
        raise RuntimeError(f"promtool backfill failed: {result.stderr or result.stdout}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    tsdb = sum(f.stat().st_size for f in data_dir.rglob("*") if f.is_file())
    return Backfilled(samples, text_bytes, written, promtool, cpu, tsdb)


# --- Measuring ----------------------------------------------------------------------------------------


def reference_query(service: str) -> str:
    """bench/speed.py's: the one query any bucket-based judge must send, both versions' buckets over 5m."""
    return (
        f"sum by (le, version) (increase({PRESET.duration_metric}_bucket"
        f'{{service="{service}", version=~"{CANARY}|{STABLE}"}}[5m]))'
    )


def start_query(service: str, lookback: str) -> str:
    """The analyzer's canary start query: `1d` on a first look, `2m` when it remembers the start."""
    return canary_start_query(PRESET, service, CANARY, lookback, "1m")


# What a recording rule would evaluate, every interval, over every service at once.
RULES = {
    "buckets": f"sum by (service, version, le) (rate({PRESET.duration_metric}_bucket[1m]))",
    "requests": f"sum by (service, version, {PRESET.error_label}) (rate({PRESET.requests_metric}[1m]))",
}


@dataclass(frozen=True)
class Cost:
    """Per call, one call at a time: the median latency, and each process's CPU (its idle rate taken off)."""

    calls: int
    median_ms: float
    analyzer_cpu_ms: float
    prometheus_cpu_ms: float

    @property
    def prometheus_share(self) -> float:
        return self.prometheus_cpu_ms / (self.prometheus_cpu_ms + self.analyzer_cpu_ms)


@dataclass
class Tally:
    """Calls made one at a time, maybe over several rounds: their latencies and each process's CPU."""

    timings: list[float] = field(default_factory=list)
    analyzer_seconds: float = 0.0
    prometheus_seconds: float = 0.0

    def cost(self) -> Cost:
        calls = len(self.timings)
        return Cost(
            calls,
            statistics.median(self.timings) * 1000,
            self.analyzer_seconds / calls * 1000,
            self.prometheus_seconds / calls * 1000,
        )


@dataclass
class Processes:
    analyzer: int
    prometheus: int
    idle: tuple[float, float] = (0.0, 0.0)  # CPU seconds per second with nothing asked

    def cpu(self) -> tuple[float, float]:
        return cpu_seconds(self.analyzer), cpu_seconds(self.prometheus)

    async def measure_idle(self, seconds: float) -> None:
        """Each process's CPU while nothing is asked (uvicorn's tick, Go's runtime), taken off every figure:
        read from the scheduler's nanoseconds, as a few clock ticks over seconds would be too coarse."""
        pids = (self.analyzer, self.prometheus)
        before, started = [scheduled_seconds(pid) for pid in pids], time.perf_counter()
        await asyncio.sleep(seconds)
        after, elapsed = [scheduled_seconds(pid) for pid in pids], time.perf_counter() - started
        self.idle = ((after[0] - before[0]) / elapsed, (after[1] - before[1]) / elapsed)

    async def run(self, calls: int, call: Callable[[int], Awaitable[object]], tally: Tally | None = None) -> Tally:
        tally = tally or Tally()
        before, started = self.cpu(), time.perf_counter()
        for i in range(calls):
            began = time.perf_counter()
            await call(i)
            tally.timings.append(time.perf_counter() - began)
        after, elapsed = self.cpu(), time.perf_counter() - started
        tally.analyzer_seconds += after[0] - before[0] - self.idle[0] * elapsed
        tally.prometheus_seconds += after[1] - before[1] - self.idle[1] * elapsed
        return tally

    async def cost(self, calls: int, call: Callable[[int], Awaitable[object]]) -> Cost:
        return (await self.run(calls, call)).cost()


def scheduled_seconds(pid: int) -> float:
    """The time the scheduler has run the process's threads, to the nanosecond (/proc/<pid>/task/*/schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # a thread that has just ended
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


@dataclass(frozen=True)
class Plan:
    """How many calls: analyses a fixed number at every scale (their CPU is the figure compared across
    scales), in rounds that go through every scale in turn, so that other work on the machine weighs on
    each scale alike; queries as many as fit a time budget, within bounds."""

    analyses: int
    rounds: int
    query_seconds: float
    min_queries: int
    max_queries: int
    reports: int

    def queries(self, one_call_seconds: float) -> int:
        return max(self.min_queries, min(self.max_queries, int(self.query_seconds / max(one_call_seconds, 1e-4))))


FULL = Plan(analyses=100, rounds=10, query_seconds=4.0, min_queries=20, max_queries=300, reports=3)
QUICK = Plan(analyses=20, rounds=2, query_seconds=1.0, min_queries=5, max_queries=60, reports=1)


@dataclass(frozen=True)
class Verdict:
    verdict: str
    span: str
    canary_requests: float
    stable_requests: float
    canary_p95: float


@dataclass(frozen=True)
class Queried:
    """One scale's queries, sent straight to Prometheus one at a time."""

    scale: Scale
    verdict: Verdict  # the first analysis'
    alone: dict[str, Cost]  # reference, start_hour, start_day, start_recent, families, poll
    first_look: Cost  # the start over the hour, then the families: as an analysis that remembers no start sends them
    polled: Cost  # the families with the start over 2m inside: as an analysis that remembers the start sends them
    answer_bytes: dict[str, int]
    answer_series: dict[str, int]
    report: Cost  # the HTML report: the analysis, then its checks over the 30m lookback (a range query)
    report_charts: bool  # whether the report had its charts (not "charts unavailable")


@dataclass(frozen=True)
class Figures:
    queried: Queried
    distinct: Cost  # analyses each at its own moment, earlier than any before: no start remembered
    repeated: Cost  # the same analysis over and over, at now: the start remembered

    @property
    def scale(self) -> Scale:
        return self.queried.scale


class Bench:
    """Everything at or around one moment (`at`): queries and reports at it; distinct analyses each a second
    earlier than the last, so that no start is remembered for them (the memory serves a moment at or after the
    one it was found at); repeated analyses each a second later than the last, as polling at now would be."""

    def __init__(
        self,
        prometheus: httpx.AsyncClient,
        analyzer: httpx.AsyncClient,
        processes: Processes,
        plan: Plan,
        moment: int,
    ):
        self.prometheus, self.analyzer, self.processes, self.plan = prometheus, analyzer, processes, plan
        self.moment = moment

    async def query(self, expr: str) -> httpx.Response:
        response = await self.prometheus.post("/api/v1/query", data={"query": expr, "time": str(self.moment)})
        response.raise_for_status()
        return response

    async def analyze(self, service: str, after: int = 0) -> dict:
        """The analysis at the moment, or `after` seconds after it (before it, when negative)."""
        params = {"service": service, "at": _rfc3339(self.moment + after)}
        response = await self.analyzer.get("/analyze", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    async def report(self, service: str) -> str:
        params = {"service": service, "at": _rfc3339(self.moment), "format": "html"}
        response = await self.analyzer.get("/analyze", params=params)
        assert response.status_code == 200, response.text
        return response.text

    async def queries(self, scale: Scale) -> Queried:
        service, processes, plan = scale.service, self.processes, self.plan
        answer = await self.analyze(service)
        poll = await self.analyze(service, 1)  # a second later: the start remembered, checked inside the families
        queries = {
            "reference": reference_query(service),
            "start_hour": start_query(service, "1h"),
            "start_day": start_query(service, "1d"),
            "start_recent": start_query(service, "2m"),
            "families": answer["queries"]["families"],
            "poll": poll["queries"]["families"],
        }
        answers = {name: await self.query(expr) for name, expr in queries.items()}
        for _ in range(3):  # warm-up: connections, Prometheus' caches of postings and chunks
            await self.analyze(service)
            for expr in queries.values():
                await self.query(expr)
        alone = {}
        for name, expr in queries.items():
            probe = await processes.cost(3, lambda i, expr=expr: self.query(expr))
            alone[name] = await processes.cost(plan.queries(probe.median_ms / 1000), lambda i, e=expr: self.query(e))

        async def first_look(i: int) -> None:
            await self.query(queries["start_hour"])
            await self.query(queries["families"])

        async def polled(i: int) -> None:
            await self.query(queries["poll"])

        seconds = (alone["start_hour"].median_ms + alone["families"].median_ms) / 1000
        first_look_cost = await processes.cost(plan.queries(seconds), first_look)
        seconds = alone["poll"].median_ms / 1000
        polled_cost = await processes.cost(plan.queries(seconds), polled)
        page = await self.report(service)
        report = await processes.cost(plan.reports, lambda i: self.report(service))
        return Queried(
            scale,
            _verdict(answer),
            alone,
            first_look_cost,
            polled_cost,
            {name: len(a.content) for name, a in answers.items()},
            {name: len(a.json()["data"]["result"]) for name, a in answers.items()},
            report,
            "charts unavailable" not in page,
        )

    async def analyses(self, queried: Sequence[Queried]) -> list[Figures]:
        """Every scale in turn, a share of its analyses in each round: distinct, then repeated."""
        tallies = {q.scale: (Tally(), Tally()) for q in queried}
        per_round = self.plan.analyses // self.plan.rounds
        for _ in range(self.plan.rounds):
            for q in queried:
                service, (distinct, repeated) = q.scale.service, tallies[q.scale]
                done = len(distinct.timings)
                await self.processes.run(per_round, lambda i, s=service, d=done: self.analyze(s, -1 - d - i), distinct)
                await self.processes.run(per_round, lambda i, s=service, d=done: self.analyze(s, 1 + d + i), repeated)
        return [Figures(q, tallies[q.scale][0].cost(), tallies[q.scale][1].cost()) for q in queried]

    async def rules(self) -> dict[str, Cost]:
        """A recording rule's evaluation, every service at once (all four scales here)."""
        costs = {}
        for name, expr in RULES.items():
            await self.query(expr)
            probe = await self.processes.cost(3, lambda i, expr=expr: self.query(expr))
            calls = self.plan.queries(probe.median_ms / 1000)
            costs[name] = await self.processes.cost(calls, lambda i, e=expr: self.query(e))
        return costs


def _rfc3339(unix: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(unix))


def _verdict(answer: dict) -> Verdict:
    checks = {check["name"]: check for check in answer["checks"]}
    return Verdict(
        answer["verdict"],
        answer["confidence"]["span"],
        checks["canary_traffic"]["canary"],
        checks["canary_traffic"]["stable"],
        checks["p95_latency"]["canary"],
    )


# --- The run ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    moment: int  # unix time every analysis and query is judged at or around
    backfilled: Backfilled
    idle: tuple[float, float]
    figures: list[Figures]
    rules: dict[str, Cost]
    series_total: int
    load: tuple[tuple[float, float, float], tuple[float, float, float]]  # load averages at start and end
    seconds: float


def run(plan: Plan) -> Run:
    ensure_installed()
    started, load_before = time.perf_counter(), os.getloadavg()
    moment = int(bench_moment(time.time()))
    traffic = services(moment, AFTER)
    with tempfile.TemporaryDirectory(prefix="scaling-") as tmp:
        data = Path(tmp) / "tsdb"
        print(f"backfilling {sum(2 * s.series_per_version() for s in SCALES):,} series ...", flush=True)
        backfilled = backfill(spread_openmetrics(traffic, moment - HISTORY, SCRAPE_INTERVAL), data, Path(tmp))
        with LocalPrometheus(data) as prometheus:
            assert prometheus.pid is not None
            server = AnalyzerServer({"PROMETHEUS_URL": prometheus.url, "LOG_LEVEL": "INFO"}, Path(tmp) / "analyzer.log")
            server.start()
            try:
                processes = Processes(server.pid, prometheus.pid)
                figures, rules = asyncio.run(_measure(prometheus.url, server.url, processes, plan, moment))
            finally:
                server.stop()
    series_total = sum(2 * s.series_per_version() for s in SCALES)
    return Run(
        moment,
        backfilled,
        processes.idle,
        figures,
        rules,
        series_total,
        (load_before, os.getloadavg()),
        time.perf_counter() - started,
    )


async def _measure(
    prometheus_url: str, analyzer_url: str, processes: Processes, plan: Plan, moment: int
) -> tuple[list[Figures], dict[str, Cost]]:
    async with (
        httpx.AsyncClient(base_url=prometheus_url, timeout=60) as prometheus,
        httpx.AsyncClient(base_url=analyzer_url, timeout=60) as analyzer,
    ):
        bench = Bench(prometheus, analyzer, processes, plan, moment)
        await processes.measure_idle(5.0)
        queried = []
        for scale in SCALES:
            print(f"{scale.service} ({scale.series_per_version():,} series per version): queries ...", flush=True)
            queried.append(await bench.queries(scale))
        print(f"analyses: {plan.rounds} rounds through every scale ...", flush=True)
        figures = await bench.analyses(queried)
        return figures, await bench.rules()


def report(run: Run) -> None:
    b, first, last = run.backfilled, run.figures[0], run.figures[-1]
    print(
        f"\nbackfill: {run.series_total:,} series, {b.samples:,} samples, {b.text_bytes / 1e6:.0f} MB of "
        f"OpenMetrics written in {b.write_seconds:.1f} s; "
        f"promtool {b.promtool_seconds:.1f} s ({b.promtool_cpu_seconds:.1f} s CPU); TSDB {b.tsdb_bytes / 1e6:.1f} MB"
    )
    print(
        f"idle CPU (taken off every figure): analyzer {run.idle[0] * 1000:.1f} ms/s, Prometheus "
        f"{run.idle[1] * 1000:.1f} ms/s; load average {run.load[0][0]:.2f} at the start, {run.load[1][0]:.2f} "
        f"at the end; {run.seconds / 60:.1f} min in all"
    )
    print(f"the moment judged (`at`): {_rfc3339(run.moment)}, the canary 20 minutes old, the stable an hour")
    print("\n| scale | series per version | verdict | span | canary requests | stable requests | canary P95 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for f in run.figures:
        v = f.queried.verdict
        print(
            f"| {f.scale.factor}x ({f.scale.pods} pods x {f.scale.routes} routes) | {f.scale.series_per_version():,} "
            f"| {v.verdict} | {v.span} | {v.canary_requests:,.0f} | {v.stable_requests:,.0f} | {v.canary_p95:.3f} s |"
        )
    kinds = (
        ("distinct analyses (each its own `at`, earlier than any before: the start looked for over the hour)",
         "distinct", "first_look", "start [1h:1m], then families"),
        ("repeated analyses (the same canary, each a second after the last, as polling at now: its start remembered)",
         "repeated", "polled", "families with the start [2m:1m] inside"),
    )  # fmt: skip
    for title, kind, straight, sent in kinds:
        print(f"\n{title}, per analysis, {first.distinct.calls} at each scale, one at a time:\n")
        print(
            "| scale | analyzer CPU | Prometheus CPU | Prometheus' share | `/analyze` median "
            f"| its queries straight ({sent}) | their Prometheus CPU |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for f in run.figures:
            c, s = getattr(f, kind), getattr(f.queried, straight)
            print(
                f"| {f.scale.factor}x | {c.analyzer_cpu_ms:.1f} ms | {c.prometheus_cpu_ms:.1f} ms "
                f"| {c.prometheus_share:.0%} | {c.median_ms:.1f} ms | {s.median_ms:.1f} ms "
                f"| {s.prometheus_cpu_ms:.1f} ms |"
            )
        c0, c1 = getattr(first, kind), getattr(last, kind)
        print(
            f"\n  analyzer CPU per analysis, {last.scale.factor}x / {first.scale.factor}x: "
            f"{c1.analyzer_cpu_ms / c0.analyzer_cpu_ms:.2f}   (goal <= 1.2); "
            f"Prometheus CPU {c1.prometheus_cpu_ms / c0.prometheus_cpu_ms:.0f} times"
        )
    print("\neach query alone, straight to Prometheus: median latency / Prometheus CPU per query\n")
    names = {
        "reference": "reference (buckets, 5m)",
        "start_hour": "canary start [1h:1m]",
        "start_day": "canary start [1d:1m] (a canary older than the hour)",
        "start_recent": "canary start [2m:1m]",
        "families": "families (since the start)",
        "poll": "a poll's (families with the start [2m:1m] inside)",
    }
    print("| scale | " + " | ".join(names.values()) + " |")
    print("| --- |" + " --- |" * len(names))
    for f in run.figures:
        alone = f.queried.alone
        cells = (f"{alone[n].median_ms:.1f} ms / {alone[n].prometheus_cpu_ms:.1f} ms" for n in names)
        print(f"| {f.scale.factor}x | " + " | ".join(cells) + " |")
    print("\nthe HTML report (the analysis, then its checks over a 30m lookback: a range query), one at a time:\n")
    print("| scale | median | analyzer CPU | Prometheus CPU | charts |")
    print("| --- | --- | --- | --- | --- |")
    for f in run.figures:
        r = f.queried.report
        charts = "yes" if f.queried.report_charts else "**unavailable**"
        print(
            f"| {f.scale.factor}x | {r.median_ms:.0f} ms | {r.analyzer_cpu_ms:.1f} ms | {r.prometheus_cpu_ms:.1f} ms "
            f"| {charts} |"
        )
    settings = Settings()
    largest = max(max(f.queried.answer_bytes.values()) for f in run.figures)
    most = max(max(f.queried.answer_series.values()) for f in run.figures)
    print(
        f"\nlargest answer: {largest:,} bytes, {most} series (PROMETHEUS_MAX_RESPONSE_BYTES "
        f"{settings.prometheus_max_response_bytes:,}, PROMETHEUS_MAX_SERIES {settings.prometheus_max_series:,})"
    )
    print(f"\nrecording rules evaluated over all {run.series_total:,} series (every service at once), per evaluation:")
    for name, cost in run.rules.items():
        print(f"  {RULES[name]}: {cost.median_ms:.1f} ms, Prometheus CPU {cost.prometheus_cpu_ms:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20 analyses per scale, short query budgets")
    args = parser.parse_args()
    report(run(QUICK if args.quick else FULL))


if __name__ == "__main__":
    main()
