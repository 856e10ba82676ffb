"""Verdict quality: how often healthy, slow, erroring and thin canaries are aborted, paused or promoted.

Synthesises a population of canaries whose truth is known (bench/populations.py), backfills
them into a real Prometheus with promtool, starts the analyzer in front of it, and asks
`POST /analyze` at each of a case's polls as an AnalysisTemplate makes Argo ask: the shipped
step template (a `count` of polls), or the background template (no count: measured until the
rollout ends, here after 30 or 60 measurements). Argo's limits then turn the verdicts into the
rollout's outcome.

    .venv/bin/python bench/judgment_quality.py [--template step|background] [--measurements N ...]
        [--population rollouts|first-release] [--ages fresh warm] [--cases N] [--seed S]
        [--modes M ...] [--markdown] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import json
import math
import re
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import httpx
import numpy as np

# Run as a script, only bench/ is on the path: make `bench` and `tests` importable too.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.calibration.argo import (
    ABORTED,
    ERROR,
    OUTCOME_OF_PHASE,
    OUTCOMES,
    SUCCESSFUL,
    TEMPLATES,
    VERDICTS,
    Measurement,
    PhaseReached,
    Policy,
    Schedule,
    _duration_seconds,
    argo_phase,
    keep_measuring,
    load_policy,
    measurement_of,
    next_poll,
)
from app.demo.local_prometheus import LocalPrometheus, backfill, ensure_installed
from bench.populations import (
    AGES,
    CANARY,
    CLASSES,
    DURATION_METRIC,
    ERRORS,
    HEALTHY,
    LE_LABELS,
    P95_BANDS,
    REQUESTS_METRIC,
    SERVICE_LABEL,
    SLOW,
    STABLE,
    STABLE_HISTORY_SECONDS,
    STATUS_LABEL,
    THIN,
    TRAFFIC_BANDS,
    VERSION_LABEL,
    Case,
    CaseTraffic,
    counts_since,
    first_release_population,
    last_moment_without_series,
    openmetrics,
    p95_band,
    population,
    sample_count,
    slos,
    synthesise,
    traffic_band,
    window_counts,
)
from tests.support.servers import AnalyzerServer

ROLLOUTS, FIRST_RELEASE_POPULATION = "rollouts", "first-release"
POPULATIONS = (ROLLOUTS, FIRST_RELEASE_POPULATION)
# A background run ends with its rollout: after this many measurements (each reported apart).
DEFAULT_MEASUREMENTS_UNTIL_STOP = (30, 60)
# Cases per class (a first-release population draws as many cases as the four classes hold):
# what a default run measures in under 15 minutes on the project's standard machine.
DEFAULT_CASES_PER_CLASS = {"step": 250, "background": 100}
SMOKE_CASES_PER_CLASS = 5
DEFAULT_CONCURRENCY = 8  # enough to keep two cores busy; more only queues inside Prometheus
THIN_RPS = 0.15  # below this a canary should never be passed or failed on a 5m window
SPREAD_SECONDS = 3600.0  # the cases' first polls are spread over this much time
# Between the last poll and now: every `at` is in the past, with room for Argo's Error retries.
NEWEST_POLL_AGE_SECONDS = 600.0
MIN_HISTORY_START_SECONDS = 3 * 3600  # the oldest sample is at least this far back (as it always was)
VERIFY_POLLS_PER_CASE = 5  # of a verified case's polls, this many (first, last and between) are checked

THRESHOLD_MODE = "threshold"  # the service's behaviour before it had modes: the fixed rules

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Mode:
    label: str
    sent: str | None  # the `mode` field sent; None for a service that has no such field


@dataclasses.dataclass(frozen=True)
class CaseRun:
    case: Case
    mode: str
    measurements: tuple[Measurement, ...]

    def judged(self) -> list[Measurement]:
        """The measurements that count towards `count` (Argo does not count Errors)."""
        return [m for m in self.measurements if m.phase != ERROR]


# --- the template ----------------------------------------------------------------------------------


def load_named_policy(kind: str, path: Path | None = None) -> Policy:
    """`step` or `background`: the template in analysis_templates/, or the one at `path`."""
    path = path or TEMPLATES[kind]
    if not path.exists():
        raise SystemExit(f"no template at {path}")
    return load_policy(path)


ARGUMENT = re.compile(r"\{\{\s*args\.([A-Za-z0-9_.-]+)\s*\}\}")


def request_body(case: Case, policy: Policy, mode: str | None) -> dict[str, object]:
    """What the template sends for this case: its jsonBody, the arguments filled as a Rollout
    fills them (the case's service and versions, the template's defaults for the rest), with the
    case's SLOs and, for a service that has modes, the mode."""
    args = {**policy.arg_defaults, "service": case.service, "canary": CANARY, "stable": STABLE}
    body = {key: _filled(value, args) for key, value in policy.json_body.items()}
    body.update(slos(case))
    if mode is not None:
        body["mode"] = mode
    return body


def _filled(value: object, args: dict[str, str]) -> object:
    if not isinstance(value, str):
        return value

    def argument(match: re.Match[str]) -> str:
        if match.group(1) not in args:
            raise SystemExit(f"the template's jsonBody needs the argument {match.group(1)!r}, which has no value")
        return args[match.group(1)]

    return ARGUMENT.sub(argument, value)


def outcome(run: CaseRun, policy: Policy, measurements_until_stop: int | None = None) -> str:
    return OUTCOME_OF_PHASE[argo_phase(run.measurements, policy, measurements_until_stop).phase]


# --- what a run replays ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Study:
    """What a run replays: the template's policy, when the rollout stops a background run (each
    length reported apart; none for a run with a count), which population, which canary ages."""

    policy: Policy
    population: str = ROLLOUTS
    measurements_until_stop: tuple[int, ...] = ()
    ages: tuple[str, ...] = AGES

    def __post_init__(self) -> None:
        if self.population not in POPULATIONS:
            raise ValueError(f"no population {self.population!r}: {POPULATIONS}")
        if self.policy.background and not self.measurements_until_stop:
            raise ValueError("a background run (no count) needs the measurements after which the rollout stops it")
        if not self.policy.background and self.measurements_until_stop:
            raise ValueError(f"the run ends at the template's count ({self.policy.count}), not when the rollout stops")

    @property
    def run_lengths(self) -> tuple[int | None, ...]:
        """The `measurements_until_stop` of each report: None alone for a run with a count."""
        return self.measurements_until_stop or (None,)

    @property
    def longest(self) -> int | None:
        return max(self.measurements_until_stop) if self.measurements_until_stop else None

    def schedule(self) -> Schedule:
        return self.policy.schedule(self.longest)

    def cases(self, cases_per_class: int, seed: int, start: float) -> list[Case]:
        """The population on the template's schedule; a first-release population as many cases
        as the rollouts' four classes hold."""
        if self.population == FIRST_RELEASE_POPULATION:
            total = cases_per_class * len(CLASSES)
            return first_release_population(total, seed, start, SPREAD_SECONDS, self.schedule(), self.ages)
        return population(cases_per_class, seed, start, SPREAD_SECONDS, self.schedule(), self.ages)

    def history_seconds(self) -> float:
        """How far before now the population starts: an hour of stable history, the first polls'
        spread and the longest run all lie in the past, with room for Argo's Error retries."""
        schedule = self.schedule()
        run = schedule.interval * (schedule.measurements - 1)
        needed = STABLE_HISTORY_SECONDS + 60.0 + SPREAD_SECONDS + run + NEWEST_POLL_AGE_SECONDS
        return max(MIN_HISTORY_START_SECONDS, needed)

    def group_headers(self) -> list[str]:
        first = "class" if self.population == ROLLOUTS else "true P95 / SLO"
        return [first, "canary traffic", "age"]

    def group_of(self, case: Case) -> tuple[str, str, str]:
        """The report row a case falls in: its truth, its canary's traffic band and age."""
        return (self.truth_of(case), traffic_band(case), case.age)

    def groups(self) -> list[tuple[str, str, str]]:
        return [(truth, band, age) for truth in self.truths() for band in bands_of(truth) for age in self.ages]

    def groups_of(self, runs: Iterable[CaseRun]) -> list[tuple[str, str, str]]:
        """The report's rows, in order, that hold any of these runs."""
        present = {self.group_of(run.case) for run in runs}
        return [group for group in self.groups() if group in present]

    def truth_of(self, case: Case) -> str:
        """A rollout's class, or a first release's band of true P95 / SLO."""
        return case.case_class if self.population == ROLLOUTS else _p95_band(case)

    def truths(self) -> list[str]:
        return list(CLASSES) if self.population == ROLLOUTS else [name for name, _ in P95_BANDS]

    def describe(self, measurements_until_stop: int | None) -> str:
        kind = "first releases, no stable" if self.population == FIRST_RELEASE_POPULATION else "rollouts"
        run = (
            f"stopped after {measurements_until_stop} measurements"
            if measurements_until_stop is not None
            else f"{self.policy.count} measurements"
        )
        return f"{kind}, canaries {'/'.join(self.ages)}, {run}"


@functools.cache
def _p95_band(case: Case) -> str:
    return p95_band(case)  # a bisection on the exact CDF: once per case


def bands_of(truth: str) -> list[str]:
    return [THIN] if truth == THIN else [b for b in TRAFFIC_BANDS if b != THIN]


def add_study_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that say what is replayed, the same for this runner and the in-process one."""
    parser.add_argument("--template", choices=sorted(TEMPLATES), default="step", help="which shipped template")
    parser.add_argument("--template-file", type=Path, help="read this AnalysisTemplate instead")
    parser.add_argument(
        "--measurements",
        type=int,
        nargs="+",
        help="background runs (no count): the rollout stops the run after this many measurements; "
        f"each reported apart (default {' '.join(map(str, DEFAULT_MEASUREMENTS_UNTIL_STOP))})",
    )
    parser.add_argument("--population", choices=POPULATIONS, default=ROLLOUTS)
    parser.add_argument("--ages", nargs="+", choices=AGES, default=list(AGES), help="canary ages, taking turns")
    parser.add_argument("--cases", type=int, help="cases per class (default: what runs in under 15 minutes)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_CASES_PER_CLASS} cases per class")
    parser.add_argument("--markdown", action="store_true", help="Markdown tables, for bench/README.md")


def study_from_args(args: argparse.Namespace) -> Study:
    policy = load_named_policy(args.template, args.template_file)
    if policy.background:
        stops = tuple(sorted(set(args.measurements or DEFAULT_MEASUREMENTS_UNTIL_STOP)))
    elif args.measurements:
        raise SystemExit(f"--measurements is for a background template (no count); this one has count {policy.count}")
    else:
        stops = ()
    return Study(policy, args.population, stops, tuple(dict.fromkeys(args.ages)))


def cases_per_class(args: argparse.Namespace, study: Study) -> int:
    if args.smoke:
        return SMOKE_CASES_PER_CLASS
    return args.cases or DEFAULT_CASES_PER_CLASS["background" if study.policy.background else "step"]


def history_start(study: Study, now: float) -> float:
    """The population's start: whole minutes, far enough back that every poll is in the past."""
    return math.floor(now / 60) * 60 - study.history_seconds()


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

    def __init__(self, client: httpx.AsyncClient, url: str, study: Study, concurrency: int, expected: int) -> None:
        self.client, self.url, self.study, self.policy = client, url, study, study.policy
        self.semaphore = asyncio.Semaphore(concurrency)
        self.expected, self.sent = expected, 0

    async def run_case(self, case: Case, mode: Mode) -> CaseRun:
        """A case's measurements on Argo's schedule, as keep_measuring() says."""
        body = request_body(case, self.policy, mode.sent)
        measurements: list[Measurement] = []
        at = case.polls[0]
        while keep_measuring(measurements, self.policy, self.study.longest):
            measurement = await self.measure({**body, "at": rfc3339(at)}, at)
            measurements.append(measurement)
            at = next_poll(measurement, self.policy)
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
        return measurement_of(at, verdict, self.policy, _failed(answer))

    def _count_one(self) -> None:
        self.sent += 1
        step = max(1, self.expected // 10)
        if self.sent % step == 0:
            print(f"  {self.sent}/~{self.expected} analyses", file=sys.stderr, flush=True)


def _failed(answer: dict) -> tuple[str, ...]:
    """Names of the checks the answer failed (the response's `checks`; empty when it has none)."""
    checks = answer.get("checks") or []
    return tuple(str(c.get("name")) for c in checks if isinstance(c, dict) and c.get("verdict") == "fail")


async def run_all(url: str, cases: list[Case], modes: list[Mode], study: Study, concurrency: int) -> list[CaseRun]:
    """Every case in every mode."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    most = len(cases) * len(modes) * study.schedule().measurements
    async with httpx.AsyncClient(limits=limits) as client:
        measurer = Measurer(client, url, study, concurrency, expected=most)
        runs = await asyncio.gather(*(measurer.run_case(case, mode) for mode in modes for case in cases))
    return list(runs)


# --- checking what Prometheus holds ------------------------------------------------------------


def verify_backfill(prometheus_url: str, traffic: list[CaseTraffic], cases_to_check: int, window: str) -> list[str]:
    """Compares the number of samples stored with the number written and, for a few cases at a
    few of their polls, Prometheus' raw counters with window_counts() over the template's window
    and with counts_since() over the span since the canary's start, that start with Prometheus'
    own (the last whole minute at which the canary had no series). Exact equality is expected:
    promtool must not have dropped anything. Returns what it found, for the report."""
    window_seconds = _duration_seconds(window)
    with httpx.Client(base_url=f"{prometheus_url}/api/v1", timeout=60) as client:
        stored = _stored_samples(client, traffic)
        written = sample_count(traffic)
        if stored != written:
            raise SystemExit(f"promtool kept {stored} of {written} samples")
        checked = _spread_sample(traffic, cases_to_check)
        ratios = []
        for t in checked:
            for poll in _spread_sample(t.case.polls, VERIFY_POLLS_PER_CASE):
                canary_start = _verify_canary_start(client, t, poll)
                span = max(window_seconds, poll - canary_start) if canary_start is not None else window_seconds
                for version in t.versions:
                    _verify_range(client, t, version, poll - window_seconds, poll)
                    _verify_range(client, t, version, poll - span, poll)
                    ratios.append(_increase_ratio(client, t, version, poll, window))
    finite = [r for r in ratios if math.isfinite(r)]
    return [
        f"Prometheus holds all {written:,} samples written; the raw counters of {len(checked)} cases "
        f"({len(ratios)} windows, and as many spans since the canary's start) equal window_counts() and "
        "counts_since() exactly; the canary's start (the last whole minute without a series, 5m lookback) "
        "found in process is Prometheus' own at each of those polls.",
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


def _spread_sample(items: Sequence[T], n: int) -> list[T]:
    """n of the items, evenly spread, the first and the last among them."""
    picks = np.linspace(0, len(items) - 1, num=min(n, len(items))).round().astype(int)
    return [items[i] for i in sorted(set(picks.tolist()))]


def _selector(traffic: CaseTraffic, version: str) -> str:
    return f'{{{SERVICE_LABEL}="{traffic.case.service}",{VERSION_LABEL}="{version}"}}'


def _verify_canary_start(client: httpx.Client, traffic: CaseTraffic, poll: float) -> float | None:
    """The canary's start found in process, checked against a subquery that asks Prometheus the
    same question: the last minute step of the day before the poll with no canary series."""
    expected = last_moment_without_series(traffic, CANARY, poll)
    absent_steps = f"vector(time()) unless on() count({REQUESTS_METRIC}{_selector(traffic, CANARY)})"
    result = _query(client, f"max_over_time(({absent_steps})[1d:1m])", poll)
    found = float(result[0]["value"][1]) if result else None
    if found != expected:
        where = f"{traffic.case.service} at {rfc3339(poll)}"
        raise SystemExit(f"{where}: the canary's start is {found} in Prometheus, {expected} in process")
    return expected


def _verify_range(client: httpx.Client, traffic: CaseTraffic, version: str, start: float, at: float) -> None:
    """Prometheus' raw counters over (start, at] against counts_since()."""
    expected = counts_since(traffic, version, start, at)
    selector = _selector(traffic, version)
    buckets = _range_delta(client, f"sum by (le) ({DURATION_METRIC}_bucket{selector})", "le", start, at)
    statuses = _range_delta(client, f"sum by ({STATUS_LABEL}) ({REQUESTS_METRIC}{selector})", STATUS_LABEL, start, at)
    latency_sum = _range_delta(client, f"sum({DURATION_METRIC}_sum{selector})", None, start, at)
    where = f"{traffic.case.service} {version} over ({rfc3339(start)}, {rfc3339(at)}]"
    for le, count in zip(LE_LABELS, expected.buckets.tolist(), strict=True):
        if buckets.get(le, 0.0) != count:
            raise SystemExit(f"{where}: bucket le={le} holds {buckets.get(le)} in Prometheus, {count} in process")
    for status, count in expected.requests_by_status.items():
        if statuses.get(status, 0.0) != count:
            raise SystemExit(f"{where}: status {status} holds {statuses.get(status)} in Prometheus, {count} in process")
    if not math.isclose(latency_sum.get(None, 0.0), expected.latency_sum, rel_tol=1e-6, abs_tol=1e-3):
        raise SystemExit(f"{where}: _sum is {latency_sum} in Prometheus, {expected.latency_sum} in process")


def _increase_ratio(client: httpx.Client, traffic: CaseTraffic, version: str, poll: float, window: str) -> float:
    """Prometheus' increase() over the window, over the in-process request count."""
    expected = window_counts(traffic, version, poll, _duration_seconds(window))
    increase = _query(client, f"sum(increase({REQUESTS_METRIC}{_selector(traffic, version)}[{window}]))", poll)
    seen = float(increase[0]["value"][1]) if increase else 0.0
    return seen / expected.requests if expected.requests else (math.nan if seen else 1.0)


def _range_delta(
    client: httpx.Client, query: str, label: str | None, start: float, at: float
) -> dict[str | None, float]:
    """The query's value at `at` minus its value at `start` (absent = 0), by label."""
    now = _by_label(_query(client, query, at), label)
    then = _by_label(_query(client, query, start), label)
    return {key: value - then.get(key, 0.0) for key, value in now.items()}


def _by_label(result: list[dict], label: str | None) -> dict[str | None, float]:
    return {(r["metric"].get(label) if label else None): float(r["value"][1]) for r in result}


def _query(client: httpx.Client, query: str, at: float) -> list[dict]:
    response = client.get("/query", params={"query": query, "time": f"{at:.3f}"})
    response.raise_for_status()
    return response.json()["data"]["result"]


# --- the report ----------------------------------------------------------------------------------

OUTCOME_HEADERS = ["mode", "N", "% aborted", "% paused", "% promoted"]
MINUTES_TO_ABORT_HEADER = "median min to abort"
# A long run's polls shown in the per-poll table (all of them for ten polls or fewer).
POLLS_SHOWN = (1, 2, 3, 5, 10, 15, 20, 30, 45, 60, 90, 120)

Group = tuple[str, str, str]


def grouped_runs(runs: list[CaseRun], study: Study) -> dict[tuple[Group, str], list[CaseRun]]:
    """The runs by report row and mode."""
    groups: dict[tuple[Group, str], list[CaseRun]] = defaultdict(list)
    for run in runs:
        groups[study.group_of(run.case), run.mode].append(run)
    return groups


def outcome_rows(
    runs: list[CaseRun], modes: list[str], study: Study, measurements_until_stop: int | None = None
) -> list[list[str]]:
    """Per row and mode, the share of rollouts aborted, paused and promoted; for a background run,
    also how long the aborted ones took (median minutes from the run's start to the abort)."""
    grouped = grouped_runs(runs, study)
    rows = []
    for group in study.groups_of(runs):
        for mode in modes:
            members = grouped.get((group, mode), [])
            reached = [argo_phase(r.measurements, study.policy, measurements_until_stop) for r in members]
            outcomes = Counter(OUTCOME_OF_PHASE[r.phase] for r in reached)
            row = [*group, mode, str(len(members)), *(_percent(outcomes[o], len(members)) for o in OUTCOMES)]
            if study.policy.background:
                row.append(_median_minutes_to_abort(members, reached))
            rows.append(row)
    return rows


def _median_minutes_to_abort(runs: list[CaseRun], reached: list[PhaseReached]) -> str:
    minutes = [
        phase.minutes_after(run.case.run_start)
        for run, phase in zip(runs, reached, strict=True)
        if OUTCOME_OF_PHASE[phase.phase] == ABORTED
    ]
    return f"{statistics.median(minutes):.1f}" if minutes else "-"


def polls_shown(measurements: int) -> list[int]:
    """The 1-based polls the per-poll table shows."""
    if measurements <= 10:
        return list(range(1, measurements + 1))
    return [poll for poll in POLLS_SHOWN if poll <= measurements]


def per_poll_rows(runs: list[CaseRun], modes: list[str], study: Study) -> list[list[str]]:
    """Per poll: the share of cases whose measurement there was pass / fail / inconclusive, over
    the cases measured there (a background run is measured only until Argo would stop it: the
    number measured follows the share)."""
    grouped = grouped_runs(runs, study)
    polls = polls_shown(study.schedule().measurements)
    rows = []
    for group in study.groups_of(runs):
        for mode in modes:
            members = grouped.get((group, mode), [])
            judged = [r.judged() for r in members]
            cells = [_poll_cell(judged, poll - 1, with_count=study.policy.background) for poll in polls]
            rows.append([*group, mode, str(len(members)), *cells])
    return rows


def _poll_cell(judged: list[list[Measurement]], poll: int, with_count: bool = False) -> str:
    verdicts = Counter(j[poll].verdict for j in judged if len(j) > poll)
    total = sum(verdicts.values())
    shares = "/".join(_percent(verdicts[v], total) for v in VERDICTS)
    return f"{shares} ({total})" if with_count else shares


def thin_rows(runs: list[CaseRun], modes: list[str], study: Study) -> list[list[str]]:
    """Individual pass/fail answers for canaries too thin to judge on a 5m window: the `thin`
    class by what its canary really is, and canaries of the other classes (or of each band of
    true P95 / SLO) under THIN_RPS."""
    rows = []
    for label, belongs in _thin_groups(study):
        for mode in modes:
            group = [r for r in runs if r.mode == mode and belongs(r.case)]
            verdicts = Counter(m.verdict for r in group for m in r.judged())
            rows.append([label, mode, str(len(group)), str(verdicts["pass"]), str(verdicts["fail"])])
    return rows


def _thin_groups(study: Study) -> list[tuple[str, Callable[[Case], bool]]]:
    def thin_truth(truth: str) -> Callable[[Case], bool]:
        return lambda case: case.case_class == THIN and case.canary_truth == truth

    def under_thin_rps(truth: str) -> Callable[[Case], bool]:
        return lambda case: study.truth_of(case) == truth and case.canary_rps < THIN_RPS

    if study.population == FIRST_RELEASE_POPULATION:
        return [(f"P95 {truth} < {THIN_RPS} rps", under_thin_rps(truth)) for truth in study.truths()]
    others = [(f"{c} < {THIN_RPS} rps", under_thin_rps(c)) for c in CLASSES if c != THIN]
    return [*others, *((f"{THIN} ({truth})", thin_truth(truth)) for truth in (HEALTHY, SLOW, ERRORS))]


def failed_check_rows(runs: list[CaseRun], modes: list[str], study: Study) -> list[list[str]]:
    """Which checks the fail answers named: why rollouts of each class (or band) were aborted."""
    rows = []
    for truth in study.truths():
        for mode in modes:
            group = [r for r in runs if study.truth_of(r.case) == truth and r.mode == mode]
            fails = [m for r in group for m in r.judged() if m.verdict == "fail"]
            named = Counter(name for m in fails for name in m.failed_checks)
            shares = ", ".join(f"{name} {_percent(n, len(fails))}" for name, n in named.most_common())
            rows.append([truth, mode, str(len(fails)), shares or "-"])
    return rows


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


def report(runs: list[CaseRun], modes: list[str], study: Study, markdown: bool) -> str:
    policy, groups = study.policy, study.group_headers()
    outcome_headers = [*groups, *OUTCOME_HEADERS] + ([MINUTES_TO_ABORT_HEADER] if policy.background else [])
    sections = []
    for length in study.run_lengths:
        sections += [
            f"Rollout outcomes ({study.describe(length)}; Argo: {policy.describe()}):",
            render(outcome_headers, outcome_rows(runs, modes, study, length), markdown),
        ]
    poll_headers = [f"poll {k} p/f/i %" for k in polls_shown(study.schedule().measurements)]
    counted = " (cases measured there)" if policy.background else ""
    truth = "class" if study.population == ROLLOUTS else "true P95 / SLO"
    sections += [
        f"Verdicts at each poll (share of cases answered pass / fail / inconclusive there{counted}):",
        render([*groups, "mode", "N", *poll_headers], per_poll_rows(runs, modes, study), markdown),
        f"Canaries under {THIN_RPS} rps: individual pass / fail answers (target on a 5m window: none):",
        render(["canaries", "mode", "cases", "pass", "fail"], thin_rows(runs, modes, study), markdown),
        "Checks the fail answers named (% of fail answers naming each; an answer may name several):",
        render([truth, "mode", "fail answers", "checks failed"], failed_check_rows(runs, modes, study), markdown),
        error_summary(runs),
    ]
    return "\n\n".join(sections)


# --- the run ------------------------------------------------------------------------------------


def save_runs(runs: list[CaseRun], study: Study, path: Path) -> None:
    """One JSON line per rollout: the case as synthesised, Argo's outcome (for a background run,
    by the measurements after which the rollout stopped it) and every answer."""
    with path.open("w") as out:
        for run in runs:
            outcomes = {str(length): outcome(run, study.policy, length) for length in study.run_lengths}
            record = {
                "case": dataclasses.asdict(run.case),
                "canary_truth": run.case.canary_truth,
                "group": study.group_of(run.case),
                "mode": run.mode,
                **({"outcome_after": outcomes} if study.policy.background else {"outcome": outcomes["None"]}),
                "measurements": [dataclasses.asdict(m) for m in run.measurements],
            }
            out.write(json.dumps(record) + "\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_study_arguments(parser)
    parser.add_argument("--modes", nargs="+", help="the service's modes to run (default: every one it offers)")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="requests in flight")
    parser.add_argument("--verify", type=int, default=12, help="cases whose counters are checked in Prometheus")
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
    study = study_from_args(args)
    per_class = cases_per_class(args, study)
    ensure_installed()
    watch = Stopwatch()
    cases = study.cases(per_class, args.seed, history_start(study, time.time()))
    traffic = [synthesise(case) for case in cases]
    text = openmetrics(traffic)
    watch.lap(f"synthesised {len(cases)} cases, {sample_count(traffic):,} samples")
    with tempfile.TemporaryDirectory(prefix="judgment-quality-") as tmp:
        data = Path(tmp) / "tsdb"
        backfill(text, data)
        del text
        watch.lap("backfilled with promtool")
        with LocalPrometheus(data) as prometheus:
            checks = verify_backfill(prometheus.url, traffic, args.verify, study.policy.window)
            watch.lap("verified the backfill")
            server = AnalyzerServer(
                {"PROMETHEUS_URL": prometheus.url, "LOG_LEVEL": "WARNING"}, Path(tmp) / "analyzer.log"
            )
            server.start()
            try:
                modes = choose_modes(args.modes, supported_modes(server.url))
                runs = asyncio.run(run_all(server.url, cases, modes, study, args.concurrency))
            finally:
                server.stop()
            requests = sum(len(r.measurements) for r in runs)
            watch.lap(f"measured {len(runs)} rollouts ({requests} analyses)")
    if args.save:
        save_runs(runs, study, args.save)
    print(report(runs, [m.label for m in modes], study, args.markdown))
    print()
    print("\n".join(checks))
    print(f"seed {args.seed}, {per_class} cases per class; {watch.summary()}")


if __name__ == "__main__":
    main()
