"""Verdict quality: how often healthy, slow, erroring and thin canaries are aborted, paused or promoted.

Synthesises a population of canary/stable pairs whose truth is known (bench/populations.py),
backfills them into a real Prometheus with promtool, starts the analyzer in front of it, and
asks `POST /analyze` at each of a case's five polls as the shipped AnalysisTemplate does.
Argo's limits then turn the five verdicts into the rollout's outcome.

    .venv/bin/python bench/judgment_quality.py [--cases N] [--seed S] [--modes M ...] [--markdown]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import yaml

# Run as a script, only bench/ is on the path: make `bench` and `tests` importable too.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.demo.local_prometheus import LocalPrometheus, backfill, ensure_installed
from bench.populations import (
    CANARY,
    CLASSES,
    DURATION_METRIC,
    INITIAL_DELAY_SECONDS,
    LE_LABELS,
    POLL_INTERVAL_SECONDS,
    POLLS,
    REQUESTS_METRIC,
    SERVICE_LABEL,
    STABLE,
    STATUS_LABEL,
    THIN,
    TRAFFIC_BANDS,
    VERSION_LABEL,
    VERSIONS,
    WINDOW_SECONDS,
    Case,
    CaseTraffic,
    openmetrics,
    population,
    sample_count,
    slos,
    synthesise,
    traffic_band,
    window_counts,
)
from tests.support.servers import AnalyzerServer

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "analysis_templates" / "analysis-template.yaml"
DEFAULT_CASES_PER_CLASS = 250
SMOKE_CASES_PER_CLASS = 5
DEFAULT_CONCURRENCY = 8  # enough to keep two cores busy; more only queues inside Prometheus
ERROR_RETRY_SECONDS = 10.0  # Argo measures again this soon after an Error, whatever `interval` says
THIN_RPS = 0.15  # below this a canary should never be passed or failed
# The oldest poll lies this far back, so every `at` is in the past and each case has its hour of stable history.
HISTORY_START_SECONDS = 3 * 3600
SPREAD_SECONDS = 3600.0

SUCCESSFUL, FAILED, INCONCLUSIVE, ERROR = "Successful", "Failed", "Inconclusive", "Error"
ABORTED, PAUSED, PROMOTED = "aborted", "paused", "promoted"
OUTCOME_OF_PHASE = {FAILED: ABORTED, ERROR: ABORTED, INCONCLUSIVE: PAUSED, SUCCESSFUL: PROMOTED}
PHASE_OF_VERDICT = {"pass": SUCCESSFUL, "fail": FAILED}
OUTCOME_HEADERS = ["class", "canary traffic", "mode", "N", "% aborted", "% paused", "% promoted"]
THRESHOLD_MODE = "threshold"  # the service's behaviour before it had modes: the fixed rules


@dataclasses.dataclass(frozen=True)
class Policy:
    """How the shipped AnalysisTemplate measures: Argo's schedule and limits, and the request body."""

    initial_delay: float
    interval: float
    count: int
    failure_limit: int
    inconclusive_limit: int
    consecutive_error_limit: int
    timeout: float
    window: str


@dataclasses.dataclass(frozen=True)
class Mode:
    label: str
    sent: str | None  # the `mode` field sent; None for a service that has no such field


@dataclasses.dataclass(frozen=True)
class Measurement:
    at: float
    phase: str
    verdict: str | None  # pass / fail / inconclusive; None for an Error
    detail: str = ""
    failed_checks: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class CaseRun:
    case: Case
    mode: str
    measurements: tuple[Measurement, ...]

    def judged(self) -> list[Measurement]:
        """The measurements that count towards `count` (Argo does not count Errors)."""
        return [m for m in self.measurements if m.phase != ERROR]


# --- the template and Argo's rules -------------------------------------------------------------


def load_policy(template: Path = TEMPLATE) -> Policy:
    spec = yaml.safe_load(template.read_text())["spec"]
    metric = spec["metrics"][0]
    window = next(arg.get("value", "5m") for arg in spec["args"] if arg["name"] == "window")
    return Policy(
        initial_delay=_duration_seconds(metric.get("initialDelay", "0s")),
        interval=_duration_seconds(metric["interval"]),
        count=int(metric["count"]),
        failure_limit=int(metric.get("failureLimit", 0)),
        inconclusive_limit=int(metric.get("inconclusiveLimit", 0)),
        consecutive_error_limit=int(metric.get("consecutiveErrorLimit", 4)),
        timeout=float(metric["provider"]["web"].get("timeoutSeconds", 10)),
        window=window,
    )


def _duration_seconds(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    return float(text[:-1]) * units[text[-1]]


def check_policy_matches_population(policy: Policy) -> None:
    """The population holds data for five polls a minute apart, the first two minutes after the analysis
    starts, over a 5m window; say so if the template changed."""
    expected = (INITIAL_DELAY_SECONDS, POLLS, POLL_INTERVAL_SECONDS, WINDOW_SECONDS)
    actual = (policy.initial_delay, policy.count, policy.interval, _duration_seconds(policy.window))
    if actual != expected:
        raise SystemExit(
            f"the template measures {actual} (initialDelay, count, interval, window), "
            f"the population is built for {expected}"
        )


def argo_phase(measurements: Sequence[Measurement], policy: Policy) -> tuple[str, int]:
    """The metric's phase and how many measurements Argo takes to reach it: the first limit that
    trips ends the metric; `count` measurements (Errors not counted) with none tripped is Successful."""
    failed = inconclusive = consecutive_errors = counted = 0
    for taken, measurement in enumerate(measurements, start=1):
        if measurement.phase == ERROR:
            consecutive_errors += 1
        else:
            consecutive_errors = 0
            counted += 1
            failed += measurement.phase == FAILED
            inconclusive += measurement.phase == INCONCLUSIVE
        if failed > policy.failure_limit:
            return FAILED, taken
        if inconclusive > policy.inconclusive_limit:
            return INCONCLUSIVE, taken
        if consecutive_errors > policy.consecutive_error_limit:
            return ERROR, taken
        if counted >= policy.count:
            return SUCCESSFUL, taken
    raise ValueError("the measurements end before Argo would have stopped")


def outcome(run: CaseRun, policy: Policy) -> str:
    return OUTCOME_OF_PHASE[argo_phase(run.measurements, policy)[0]]


# --- the service's modes -----------------------------------------------------------------------


def supported_modes(url: str) -> list[str] | None:
    """The values of the request's `mode` field per /openapi.json; None when there is no such field."""
    return modes_in_openapi(httpx.get(f"{url}/openapi.json", timeout=10).json())


def modes_in_openapi(spec: dict) -> list[str] | None:
    body = spec["paths"]["/analyze"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    mode = _resolve(spec, body).get("properties", {}).get("mode")
    if mode is None:
        return None
    return sorted(_enum_values(spec, mode))


def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        path = schema["$ref"].removeprefix("#/").split("/")
        schema = spec
        for part in path:
            schema = schema[part]
    return schema


def _enum_values(spec: dict, schema: dict) -> set[str]:
    schema = _resolve(spec, schema)
    values = {str(v) for v in schema.get("enum", [])} | ({str(schema["const"])} if "const" in schema else set())
    for key in ("anyOf", "oneOf", "allOf"):
        for part in schema.get(key, []):
            values |= _enum_values(spec, part)
    return values


def choose_modes(requested: list[str] | None, supported: list[str] | None) -> list[Mode]:
    if supported is None:
        if requested and requested != [THRESHOLD_MODE]:
            print(
                f"the service has no `mode` field yet: running its current behaviour as {THRESHOLD_MODE!r}",
                file=sys.stderr,
            )
        return [Mode(THRESHOLD_MODE, None)]
    modes = requested or supported or ["statistical", THRESHOLD_MODE]
    unknown = [m for m in modes if supported and m not in supported]
    if unknown:
        raise SystemExit(f"the service does not know the modes {unknown}; it offers {supported}")
    return [Mode(m, m) for m in modes]


# --- measuring -----------------------------------------------------------------------------------


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="milliseconds")


class Measurer:
    """Asks the service as the template does, at most `concurrency` requests in flight."""

    def __init__(self, client: httpx.AsyncClient, url: str, policy: Policy, concurrency: int, expected: int) -> None:
        self.client, self.url, self.policy = client, url, policy
        self.semaphore = asyncio.Semaphore(concurrency)
        self.expected, self.sent = expected, 0

    async def run_case(self, case: Case, mode: Mode) -> CaseRun:
        """All of a case's measurements on Argo's schedule. It goes on after a limit trips (Argo
        would stop) so that per-poll rates cover every case; argo_phase() uses only what Argo takes."""
        body = {
            "service": case.service,
            "canary": CANARY,
            "stable": STABLE,
            "window": self.policy.window,
            **slos(case),
        }
        if mode.sent is not None:
            body["mode"] = mode.sent
        measurements: list[Measurement] = []
        at, counted, consecutive_errors = case.polls[0], 0, 0
        while counted < self.policy.count and consecutive_errors <= self.policy.consecutive_error_limit:
            measurement = await self.measure({**body, "at": rfc3339(at)}, at)
            measurements.append(measurement)
            if measurement.phase == ERROR:
                consecutive_errors += 1
                at += ERROR_RETRY_SECONDS
            else:
                consecutive_errors, counted = 0, counted + 1
                at += self.policy.interval
        return CaseRun(case, mode.label, tuple(measurements))

    async def measure(self, body: dict, at: float) -> Measurement:
        async with self.semaphore:
            try:
                response = await self.client.post(f"{self.url}/analyze", json=body, timeout=self.policy.timeout)
            except httpx.HTTPError as exc:
                return Measurement(at, ERROR, None, type(exc).__name__)
            finally:
                self._count_one()
        if not response.is_success:
            return Measurement(at, ERROR, None, f"HTTP {response.status_code}")
        try:
            answer = response.json()
            verdict = answer["verdict"]
        except (ValueError, KeyError, TypeError):
            # Released Argo versions count a 2xx that is not a JSON verdict as Successful.
            return Measurement(at, SUCCESSFUL, None, "2xx without a JSON verdict")
        return Measurement(at, PHASE_OF_VERDICT.get(verdict, INCONCLUSIVE), verdict, failed_checks=_failed(answer))

    def _count_one(self) -> None:
        self.sent += 1
        step = max(1, self.expected // 10)
        if self.sent % step == 0:
            print(f"  {self.sent}/~{self.expected} analyses", file=sys.stderr, flush=True)


def _failed(answer: dict) -> tuple[str, ...]:
    """Names of the checks the answer failed (the response's `checks`; empty when it has none)."""
    checks = answer.get("checks") or []
    return tuple(str(c.get("name")) for c in checks if isinstance(c, dict) and c.get("verdict") == "fail")


async def run_all(url: str, cases: list[Case], modes: list[Mode], policy: Policy, concurrency: int) -> list[CaseRun]:
    """Every case in every mode."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:
        measurer = Measurer(client, url, policy, concurrency, expected=len(cases) * len(modes) * policy.count)
        runs = await asyncio.gather(*(measurer.run_case(case, mode) for mode in modes for case in cases))
    return list(runs)


# --- checking what Prometheus holds ------------------------------------------------------------


def verify_backfill(prometheus_url: str, traffic: list[CaseTraffic], cases_to_check: int) -> list[str]:
    """Compares Prometheus' raw counters with window_counts() for a few cases, at every poll, and
    the number of samples stored with the number written. Exact equality is expected: promtool
    must not have dropped anything. Returns what it found, for the report."""
    with httpx.Client(base_url=f"{prometheus_url}/api/v1", timeout=60) as client:
        stored = _stored_samples(client, traffic)
        written = sample_count(traffic)
        if stored != written:
            raise SystemExit(f"promtool kept {stored} of {written} samples")
        ratios = []
        for t in _spread_sample(traffic, cases_to_check):
            for version in VERSIONS:
                for poll in t.case.polls:
                    ratios.append(_verify_window(client, t, version, poll))
    finite = [r for r in ratios if math.isfinite(r)]
    return [
        f"Prometheus holds all {written:,} samples written; the raw counters of {cases_to_check} cases "
        f"({len(ratios)} windows) equal window_counts() exactly.",
        f"increase() / window_counts() requests over those windows: median {np.median(finite):.3f}, "
        f"range {min(finite):.3f}-{max(finite):.3f} (Prometheus extrapolates to the window's edges).",
    ]


def _stored_samples(client: httpx.Client, traffic: list[CaseTraffic]) -> int:
    first = min(min(c.times[0] for c in t.versions.values()) for t in traffic)
    last = max(t.case.polls[-1] for t in traffic)
    span = f"[{math.ceil(last - first) + 60}s]"
    # One query per metric: count_over_time drops the name, and _count and _sum share their labels.
    metrics = [REQUESTS_METRIC, *(f"{DURATION_METRIC}_{part}" for part in ("bucket", "count", "sum"))]
    results = [_query(client, f"sum(count_over_time({metric}{span}))", last + 1) for metric in metrics]
    return sum(int(float(result[0]["value"][1])) for result in results if result)


def _spread_sample(traffic: list[CaseTraffic], n: int) -> list[CaseTraffic]:
    picks = np.linspace(0, len(traffic) - 1, num=min(n, len(traffic))).round().astype(int)
    return [traffic[i] for i in sorted(set(picks.tolist()))]


def _verify_window(client: httpx.Client, traffic: CaseTraffic, version: str, poll: float) -> float:
    """Checks one window; returns Prometheus' increase() over the in-process request count."""
    expected = window_counts(traffic, version, poll)
    selector = f'{{{SERVICE_LABEL}="{traffic.case.service}",{VERSION_LABEL}="{version}"}}'
    buckets = _window_delta(client, f"sum by (le) ({DURATION_METRIC}_bucket{selector})", "le", poll)
    statuses = _window_delta(client, f"sum by ({STATUS_LABEL}) ({REQUESTS_METRIC}{selector})", STATUS_LABEL, poll)
    latency_sum = _window_delta(client, f"sum({DURATION_METRIC}_sum{selector})", None, poll)
    where = f"{traffic.case.service} {version} at {rfc3339(poll)}"
    for le, count in zip(LE_LABELS, expected.buckets.tolist(), strict=True):
        if buckets.get(le, 0.0) != count:
            raise SystemExit(f"{where}: bucket le={le} holds {buckets.get(le)} in Prometheus, {count} in process")
    for status, count in expected.requests_by_status.items():
        if statuses.get(status, 0.0) != count:
            raise SystemExit(f"{where}: status {status} holds {statuses.get(status)} in Prometheus, {count} in process")
    if not math.isclose(latency_sum.get(None, 0.0), expected.latency_sum, rel_tol=1e-6, abs_tol=1e-3):
        raise SystemExit(f"{where}: _sum is {latency_sum} in Prometheus, {expected.latency_sum} in process")
    increase = _query(client, f"sum(increase({REQUESTS_METRIC}{selector}[{int(WINDOW_SECONDS)}s]))", poll)
    seen = float(increase[0]["value"][1]) if increase else 0.0
    return seen / expected.requests if expected.requests else (math.nan if seen else 1.0)


def _window_delta(client: httpx.Client, query: str, label: str | None, poll: float) -> dict[str | None, float]:
    """The query's value at the poll minus its value at the window's start (absent = 0), by label."""
    now = _by_label(_query(client, query, poll), label)
    then = _by_label(_query(client, query, poll - WINDOW_SECONDS), label)
    return {key: value - then.get(key, 0.0) for key, value in now.items()}


def _by_label(result: list[dict], label: str | None) -> dict[str | None, float]:
    return {(r["metric"].get(label) if label else None): float(r["value"][1]) for r in result}


def _query(client: httpx.Client, query: str, at: float) -> list[dict]:
    response = client.get("/query", params={"query": query, "time": f"{at:.3f}"})
    response.raise_for_status()
    return response.json()["data"]["result"]


# --- the report ----------------------------------------------------------------------------------


def bands_of(case_class: str) -> list[str]:
    return [THIN] if case_class == THIN else [b for b in TRAFFIC_BANDS if b != THIN]


def outcome_rows(runs: list[CaseRun], modes: list[str], policy: Policy) -> list[list[str]]:
    rows = []
    for case_class in CLASSES:
        for band in bands_of(case_class):
            for mode in modes:
                group = [r for r in runs if _in_group(r, case_class, band, mode)]
                outcomes = Counter(outcome(r, policy) for r in group)
                shares = [_percent(outcomes[o], len(group)) for o in (ABORTED, PAUSED, PROMOTED)]
                rows.append([case_class, band, mode, str(len(group)), *shares])
    return rows


def per_poll_rows(runs: list[CaseRun], modes: list[str], policy: Policy) -> list[list[str]]:
    """Per poll: the share of cases whose measurement there was pass / fail / inconclusive."""
    rows = []
    for case_class in CLASSES:
        for band in bands_of(case_class):
            for mode in modes:
                group = [r for r in runs if _in_group(r, case_class, band, mode)]
                cells = [_poll_cell([r.judged() for r in group], poll) for poll in range(policy.count)]
                rows.append([case_class, band, mode, str(len(group)), *cells])
    return rows


def _poll_cell(judged: list[list[Measurement]], poll: int) -> str:
    verdicts = Counter(j[poll].verdict for j in judged if len(j) > poll)
    total = sum(verdicts.values())
    return "/".join(_percent(verdicts[v], total) for v in ("pass", "fail", "inconclusive"))


def thin_rows(runs: list[CaseRun], modes: list[str]) -> list[list[str]]:
    """Individual pass/fail answers for canaries too thin to judge: the `thin` class by what its
    canary really is, and canaries of the other classes under THIN_RPS."""
    rows = []
    for case_class in CLASSES:
        truths = ("healthy", "slow", "errors") if case_class == THIN else (case_class,)
        for truth in truths:
            for mode in modes:
                group = [
                    r
                    for r in runs
                    if r.case.case_class == case_class
                    and r.case.canary_truth == truth
                    and r.case.canary_rps < THIN_RPS
                    and r.mode == mode
                ]
                verdicts = Counter(m.verdict for r in group for m in r.judged())
                label = f"{THIN} ({truth})" if case_class == THIN else f"{case_class} < {THIN_RPS} rps"
                rows.append([label, mode, str(len(group)), str(verdicts["pass"]), str(verdicts["fail"])])
    return rows


def failed_check_rows(runs: list[CaseRun], modes: list[str]) -> list[list[str]]:
    """Which checks the fail answers named: why rollouts of each class were aborted."""
    rows = []
    for case_class in CLASSES:
        for mode in modes:
            group = [r for r in runs if r.case.case_class == case_class and r.mode == mode]
            fails = [m for r in group for m in r.judged() if m.verdict == "fail"]
            named = Counter(name for m in fails for name in m.failed_checks)
            shares = ", ".join(f"{name} {_percent(n, len(fails))}" for name, n in named.most_common())
            rows.append([case_class, mode, str(len(fails)), shares or "-"])
    return rows


def _in_group(run: CaseRun, case_class: str, band: str, mode: str) -> bool:
    return run.case.case_class == case_class and traffic_band(run.case) == band and run.mode == mode


def _percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}" if whole else "-"


def render(headers: list[str], rows: Iterable[list[str]], markdown: bool) -> str:
    rows = list(rows)
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
        return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(headers)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in [headers, *rows]
    )


def error_summary(runs: list[CaseRun]) -> str:
    details = Counter(m.detail for r in runs for m in r.measurements if m.detail)
    if not details:
        return "no Error measurements, no answers without a JSON verdict"
    return "anomalies: " + ", ".join(f"{detail} x{count}" for detail, count in details.most_common())


def report(runs: list[CaseRun], modes: list[str], policy: Policy, markdown: bool) -> str:
    poll_headers = [f"poll {k + 1} p/f/i %" for k in range(policy.count)]
    sections = [
        f"Rollout outcomes (Argo: initialDelay {policy.initial_delay:g}s, count {policy.count}, "
        f"failureLimit {policy.failure_limit}, inconclusiveLimit {policy.inconclusive_limit}, "
        f"consecutiveErrorLimit {policy.consecutive_error_limit}):",
        render(OUTCOME_HEADERS, outcome_rows(runs, modes, policy), markdown),
        "Verdicts at each poll (share of cases answered pass / fail / inconclusive there):",
        render(["class", "canary traffic", "mode", "N", *poll_headers], per_poll_rows(runs, modes, policy), markdown),
        f"Thin canaries (< {THIN_RPS} rps): individual pass / fail answers (target: none):",
        render(["canaries", "mode", "cases", "pass", "fail"], thin_rows(runs, modes), markdown),
        "Checks the fail answers named (% of fail answers naming each; an answer may name several):",
        render(["class", "mode", "fail answers", "checks failed"], failed_check_rows(runs, modes), markdown),
        error_summary(runs),
    ]
    return "\n\n".join(sections)


# --- the run ------------------------------------------------------------------------------------


def save_runs(runs: list[CaseRun], policy: Policy, path: Path) -> None:
    """One JSON line per rollout: the case as synthesised, Argo's outcome and every answer."""
    with path.open("w") as out:
        for run in runs:
            record = {
                "case": dataclasses.asdict(run.case),
                "canary_truth": run.case.canary_truth,
                "band": traffic_band(run.case),
                "mode": run.mode,
                "outcome": outcome(run, policy),
                "measurements": [dataclasses.asdict(m) for m in run.measurements],
            }
            out.write(json.dumps(record) + "\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=DEFAULT_CASES_PER_CLASS, help="cases per class")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--modes", nargs="+", help="the service's modes to run (default: every one it offers)")
    parser.add_argument("--markdown", action="store_true", help="Markdown tables, for bench/README.md")
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_CASES_PER_CLASS} cases per class")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="requests in flight")
    parser.add_argument("--verify", type=int, default=12, help="cases whose windows are checked in Prometheus")
    parser.add_argument("--save", type=Path, help="write every rollout, its case and its answers as JSON lines here")
    return parser.parse_args(argv)


class Stopwatch:
    def __init__(self) -> None:
        self.laps: list[tuple[str, float]] = []
        self._last = time.perf_counter()

    def lap(self, what: str) -> None:
        now = time.perf_counter()
        seconds, self._last = now - self._last, now
        self.laps.append((what, seconds))
        print(f"{what}: {seconds:.1f} s", file=sys.stderr, flush=True)

    def summary(self) -> str:
        return ", ".join(f"{what} {seconds:.0f} s" for what, seconds in self.laps)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cases_per_class = SMOKE_CASES_PER_CLASS if args.smoke else args.cases
    policy = load_policy()
    check_policy_matches_population(policy)
    ensure_installed()
    watch = Stopwatch()
    start = math.floor(time.time() / 60) * 60 - HISTORY_START_SECONDS
    cases = population(cases_per_class, args.seed, start, SPREAD_SECONDS)
    traffic = [synthesise(case) for case in cases]
    text = openmetrics(traffic)
    watch.lap(f"synthesised {len(cases)} cases, {sample_count(traffic):,} samples")
    with tempfile.TemporaryDirectory(prefix="judgment-quality-") as tmp:
        data = Path(tmp) / "tsdb"
        backfill(text, data)
        del text
        watch.lap("backfilled with promtool")
        with LocalPrometheus(data) as prometheus:
            checks = verify_backfill(prometheus.url, traffic, args.verify)
            watch.lap("verified the backfill")
            server = AnalyzerServer(
                {"PROMETHEUS_URL": prometheus.url, "LOG_LEVEL": "WARNING"}, Path(tmp) / "analyzer.log"
            )
            server.start()
            try:
                modes = choose_modes(args.modes, supported_modes(server.url))
                runs = asyncio.run(run_all(server.url, cases, modes, policy, args.concurrency))
            finally:
                server.stop()
            requests = sum(len(r.measurements) for r in runs)
            watch.lap(f"measured {len(runs)} rollouts ({requests} analyses)")
    if args.save:
        save_runs(runs, policy, args.save)
    print(report(runs, [m.label for m in modes], policy, args.markdown))
    print()
    print("\n".join(checks))
    print(f"seed {args.seed}, {cases_per_class} cases per class; {watch.summary()}")


if __name__ == "__main__":
    main()
