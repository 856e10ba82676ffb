"""A version's history for `calibrate`: which label tells its pods apart, whether Prometheus holds the period,
and its counts minute by minute per value of that label; read within a budget that keeps a shared Prometheus
healthy.

What is asked (app/measurement.py writes and reads it):

- a survey, two cheap range queries at a coarse step: which values of the candidate labels the version's
  series carry (`group by (pod, instance)`), so which label splits it, since when Prometheus holds it, how
  many pods it has at once; and its histogram's bucket bounds;
- for each family, the counters summed by the label (`sum by (pod, le, version)`, by outcome for requests)
  at every minute boundary of the period, in range queries each sized to stay under PROMETHEUS_MAX_SAMPLES,
  at most `concurrency` at a time. A query Prometheus refuses as too large is asked again in two halves.

A value's minute counts the sums at its end less those at its start, as the analyzer counts its recent
minutes (Counts.less): a minute where a counter fell (a pod restarted) counts nothing, and neither does one at
whose start or end the value's series were there in one family and not at the other end (a pod that came or
went, or lost its series for a while: its counters' past would be counted as one minute).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np

from app import promql
from app.canary_lives import MINUTE
from app.judge.checks import Source
from app.judge.recent import Counts
from app.measurement import Labelled, LabelledSums, labelled_sums, labels_present
from app.models import CalibrationRequest
from app.presets import Preset
from app.prometheus import Cause, PrometheusClient, PrometheusError

T = TypeVar("T")

SURVEY_MOST_STEPS = 168  # the survey's steps over the period: an hour apart over a week
SURVEY_LEAST_STEP = 300.0
QUERY_TIMEOUT_SECONDS = 30.0
SAMPLES_FILL = 0.8  # of PROMETHEUS_MAX_SAMPLES a chunk is sized to fill
CHURN = 1.5  # a chunk may hold more pods than are there at once: some come as others go
LEAST_CHUNK_STEPS = 2


class Unusable(ValueError):
    """The history cannot answer what was asked: no such version, a period beyond what Prometheus holds, a label
    that does not split it, more series than an answer may hold. Says what to change."""


@dataclass
class Spent:
    """What the read cost Prometheus: queries sent (those refused as too large, asked again in halves, among
    them), samples answered, and how long it took."""

    queries: int = 0
    refused: int = 0
    samples: int = 0
    seconds: float = 0.0
    concurrency: int = 1


class Asking:
    """Queries to one Prometheus, at most `concurrency` at a time, counted; `progress(done, planned)` after each."""

    def __init__(
        self,
        client: PrometheusClient,
        concurrency: int,
        progress: Callable[[int, int], None] | None = None,
        timeout: float = QUERY_TIMEOUT_SECONDS,
    ) -> None:
        self.client, self.timeout, self.progress = client, timeout, progress
        self.semaphore = asyncio.Semaphore(concurrency)
        self.spent = Spent(concurrency=concurrency)
        self.planned = 0

    async def __call__(self, ask: Callable[[], Awaitable[T]], samples: Callable[[T], int]) -> T:
        async with self.semaphore:
            self.spent.queries += 1
            try:
                answer = await ask()
            except PrometheusError as exc:
                if exc.cause is Cause.TOO_LARGE:
                    self.spent.refused += 1
                raise
            finally:
                if self.progress is not None:
                    self.progress(self.spent.queries, max(self.planned, self.spent.queries))
        self.spent.samples += samples(answer)
        return answer


@dataclass(frozen=True)
class Survey:
    """What the survey found: the label that splits the version, the values seen, how many at once at most,
    when the version was first seen in the period, and how many bucket bounds its histogram has."""

    label: str
    values: tuple[str, ...]
    most_at_once: int
    first_seen: float
    bounds: int
    step: float


async def survey(asking: Asking, reading: Labelled, split_label: str | None, start: float, end: float) -> Survey:
    """Which label splits the version (the one named, else the first of the preset's that does), and whether
    Prometheus holds it from `start` on. Unusable otherwise."""
    candidates = (split_label,) if split_label else reading.preset.split_labels
    step = max(SURVEY_LEAST_STEP, math.ceil((end - start) / SURVEY_MOST_STEPS / MINUTE) * MINUTE)
    budget = asking.timeout
    asking.planned += 2
    pods, bounds = await _all(
        asking(
            lambda: labels_present(reading, Source.REQUESTS, candidates, asking.client, start, end, step, budget),
            _points,
        ),
        asking(
            lambda: labels_present(reading, Source.LATENCY, ["le"], asking.client, start, end, step, budget), _points
        ),
    )
    period = promql.duration_text(end - start)
    if not pods:
        raise Unusable(
            f"no series of the {reading.version!r} version of {reading.service!r} in the last {period}: check "
            "--service, --stable, --namespace and --preset"
        )
    first_seen = min(float(moments[0]) for moments in pods.values() if len(moments))
    if first_seen > start + step:
        held = promql.duration_text(end - first_seen)
        raise Unusable(
            f"Prometheus holds the {reading.version!r} version of {reading.service!r} for the last {held} only, "
            f"not the {period} asked for: give --period {_whole_hours(end - first_seen)} or less"
        )
    if not bounds:
        raise Unusable(f"no latency histogram for the {reading.version!r} version of {reading.service!r}")
    label, values = _splitting(candidates, pods)
    at_once = _most_at_once(candidates.index(label), pods)
    return Survey(label, values, at_once, first_seen, len(bounds), step)


def _points(present: dict[tuple[str, ...], np.ndarray]) -> int:
    return sum(len(moments) for moments in present.values())


def _whole_hours(seconds: float) -> str:
    return promql.duration_text(max(3600, math.floor(seconds / 3600) * 3600))


def _splitting(candidates: Sequence[str], present: dict[tuple[str, ...], np.ndarray]) -> tuple[str, tuple[str, ...]]:
    """The first candidate label with two values or more on the series (a series without it does not count)."""
    found = []
    for at, label in enumerate(candidates):
        values = tuple(sorted({key[at] for key in present if key[at]}))
        if len(values) >= 2:
            return label, values
        found.append(f"one value of {label!r} ({values[0]})" if values else f"no value of {label!r}")
    which = (
        f"the label {candidates[0]!r} does"
        if len(candidates) == 1
        else f"neither {' nor '.join(map(repr, candidates))} does"
    )
    raise Unusable(
        f"{which} not tell the stable's pods apart: its series carry {' and '.join(found)}; name a label with a "
        "value per pod with --split-label"
    )


def _most_at_once(at: int, present: dict[tuple[str, ...], np.ndarray]) -> int:
    moments: dict[float, set[str]] = {}
    for key, times in present.items():
        for moment in times.tolist():
            moments.setdefault(moment, set()).add(key[at])
    return max((len(values) for values in moments.values()), default=0)


@dataclass(frozen=True)
class History:
    """A version's counts minute by minute per value of `label`: the minute ending at `ends[m]`, for value v, is
    `ok[v, m]`, `errors[v, m]` and `buckets[v, m]` (requests per bucket of `bounds`, in seconds); `kept[v, m]`
    where it was counted, `left_out[v, m]` where the value had series but the minute was not counted."""

    label: str
    values: tuple[str, ...]
    ends: np.ndarray
    ok: np.ndarray
    errors: np.ndarray
    bounds: tuple[float, ...]
    buckets: np.ndarray
    kept: np.ndarray
    left_out: np.ndarray
    spent: Spent = field(default_factory=Spent)

    def counts(self, values: Sequence[str]) -> Counts:
        """The values' counts together, minute by minute."""
        rows = [self.values.index(value) for value in values]
        return Counts(
            self.ok[rows].sum(axis=0), self.errors[rows].sum(axis=0), self.bounds, self.buckets[rows].sum(axis=0)
        )

    @property
    def requests(self) -> np.ndarray:
        """Each value's requests over the period."""
        return self.ok.sum(axis=1) + self.errors.sum(axis=1)


async def read_history(
    asking: Asking,
    reading: Labelled,
    split_label: str | None,
    start: float,
    end: float,
    max_samples: int,
    max_series: int,
) -> History:
    """The minutes ending after `start` up to `end` (minute boundaries). Raises Unusable or PrometheusError."""
    started = time.perf_counter()
    found = await survey(asking, reading, split_label, start, end)
    reading = replace(reading, label=found.label)
    first = start  # the sums at the first minute's start
    families = {Source.REQUESTS: 2, Source.LATENCY: found.bounds}
    chunks = {}
    for source, columns in families.items():
        series = found.most_at_once * columns
        if series > max_series:
            raise Unusable(
                f"the stable's {found.most_at_once} {found.label} values with {columns} {source} series each are "
                f"more series than one answer may hold (PROMETHEUS_MAX_SERIES {max_series:,}): raise it"
            )
        steps = max(LEAST_CHUNK_STEPS, math.floor(SAMPLES_FILL * max_samples / (series * CHURN)))
        chunks[source] = _chunks(first, end, steps)
    asking.planned += sum(len(ranges) for ranges in chunks.values())
    sums = await _all(*(_read_family(asking, reading, source, ranges) for source, ranges in chunks.items()))
    history = _minutes(found.label, *sums)
    asking.spent.seconds = time.perf_counter() - started
    return replace(history, spent=asking.spent)


async def _all(*calls: Coroutine[Any, Any, T]) -> list[T]:
    """The calls' results in order; the first to fail ends the others (a read that cannot finish stops asking)."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(call) for call in calls]
    except* (PrometheusError, Unusable) as failures:
        raise failures.exceptions[0] from None
    return [task.result() for task in tasks]


def _chunks(first: float, end: float, steps: int) -> list[tuple[float, float]]:
    """Consecutive ranges of minute boundaries, `steps` each at most, from `first` to `end`."""
    moments = round((end - first) / MINUTE) + 1
    return [(first + MINUTE * i, first + MINUTE * (min(i + steps, moments) - 1)) for i in range(0, moments, steps)]


async def _read_family(
    asking: Asking, reading: Labelled, source: Source, ranges: list[tuple[float, float]]
) -> LabelledSums:
    parts = await _all(*(_read_range(asking, reading, source, start, end) for start, end in ranges))
    return LabelledSums.joined([part for range_parts in parts for part in range_parts])


async def _read_range(
    asking: Asking, reading: Labelled, source: Source, start: float, end: float
) -> list[LabelledSums]:
    """One range query; asked again in two halves when Prometheus, or the caps, find its answer too large."""
    try:
        read = await asking(
            lambda: labelled_sums(reading, source, asking.client, start, end, MINUTE, asking.timeout),
            lambda sums: sums.samples,
        )
        return [read]
    except PrometheusError as exc:
        moments = round((end - start) / MINUTE) + 1
        if exc.cause is not Cause.TOO_LARGE or moments < 2 * LEAST_CHUNK_STEPS:
            raise
    middle = start + MINUTE * (moments // 2)
    asking.planned += 2
    halves = await _all(
        _read_range(asking, reading, source, start, middle - MINUTE), _read_range(asking, reading, source, middle, end)
    )
    return [part for half in halves for part in half]


def _minutes(label: str, requests: LabelledSums, latency: LabelledSums) -> History:
    """Each value's minutes: the sums at each minute's end less those at its start (Counts.counted_since)."""
    values = tuple(sorted(set(requests.values) | set(latency.values)))
    minutes = len(requests.steps) - 1
    bounds = tuple(float(bound) for bound in latency.columns)
    ok, errors = np.zeros((len(values), minutes)), np.zeros((len(values), minutes))
    buckets = np.zeros((len(values), minutes, len(bounds)))
    kept, left_out = np.zeros((len(values), minutes), dtype=bool), np.zeros((len(values), minutes), dtype=bool)
    for row, value in enumerate(values):
        counted, there = _counts(requests, value), _present(requests, value)
        histogram, measured = _counts(latency, value), _present(latency, value)
        cumulative = histogram if len(bounds) else np.zeros((minutes + 1, 0))
        per_bucket = np.diff(cumulative, axis=1, prepend=0.0)
        late = Counts(counted[1:, 0], counted[1:, 1], bounds, per_bucket[1:])
        early = Counts(counted[:-1, 0], counted[:-1, 1], bounds, per_bucket[:-1])
        since, grew = late.counted_since(early)
        # Each family there at both ends of the minute, or at neither; and something there.
        steady = (there[1:] == there[:-1]) & (measured[1:] == measured[:-1]) & (there[1:] | measured[1:])
        kept[row] = grew & steady
        left_out[row] = (there[1:] | there[:-1] | measured[1:] | measured[:-1]) & ~kept[row]
        ok[row], errors[row] = since.ok * kept[row], since.errors * kept[row]
        buckets[row] = since.buckets * kept[row][:, None]
    return History(label, values, requests.steps[1:], ok, errors, bounds, buckets, kept, left_out)


def _counts(sums: LabelledSums, value: str) -> np.ndarray:
    """A value's counts at each step, (steps, columns); zeros where it has none."""
    if value not in sums.values:
        return np.zeros((len(sums.steps), len(sums.columns)))
    return sums.counts[sums.values.index(value)]


def _present(sums: LabelledSums, value: str) -> np.ndarray:
    if value not in sums.values:
        return np.zeros(len(sums.steps), dtype=bool)
    return sums.present[sums.values.index(value)]


async def history_of(
    asking: Asking,
    preset: Preset,
    request: CalibrationRequest,
    end: float,
    max_samples: int,
    max_series: int,
) -> History:
    """The stable's history the request asks for, over its period up to `end` (a minute boundary)."""
    label = request.split_label or preset.split_labels[0]
    reading = Labelled(preset, request.service, request.stable, label, request.namespace)
    start = end - request.period_seconds
    return await read_history(asking, reading, request.split_label, start, end, max_samples, max_series)


def unreadable(preset: Preset) -> str | None:
    """Why calibrate cannot read a version's pods with this preset; None when it can."""
    if preset.series != "counters":
        return (
            f"the {preset.name!r} preset reads recorded increases, whose pods are summed away: calibrate reads "
            "each pod's counters (a preset with `series: counters`)"
        )
    if not promql.read_by_minute(Source.LATENCY, preset):
        return f"the {preset.name!r} preset's latency is a native histogram, which calibrate does not read by minute"
    for label in preset.split_labels:
        problem = label_problem(preset, label)
        if problem:
            return f"the {preset.name!r} preset's split_labels: {problem}"
    return None


def label_problem(preset: Preset, label: str) -> str | None:
    """Why the version's series cannot be grouped by `label` besides the families' groups; None when they can."""
    try:
        promql.grouping_label(label, preset)
    except ValueError as exc:
        return str(exc)
    return None
