"""Measuring: one query per metric family for both versions, answered as distributions.

This layer knows the shapes of Prometheus' answers and nothing of verdicts: it hands the
judgment, per version, the window's request counts by outcome and latency histogram.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections import defaultdict
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, TypeVar

import numpy as np

from app import promql
from app.judge.checks import Check, Measured, Observed, Reading, Source
from app.judge.distributions import Histogram, NativeHistogram, Outcomes
from app.judge.recent import MINUTE
from app.presets import Preset
from app.prometheus import Cause, Labels, Matrix, NativeSample, PrometheusClient, PrometheusError, Value

K = TypeVar("K")
T = TypeVar("T")


class Role(StrEnum):
    CANARY = "canary"
    STABLE = "stable"


ReadingKey = tuple[str, Role, str]  # a user check's source, the version, and which of its queries
FAMILIES = "families"  # the one query that asks for every family
START_MARK = "canary_analyzer_start"  # the label marking the start check's series among the families'
# The label marking what is asked beside the families for the canary's recent minutes; its value says which.
BETWEEN_MARK = "canary_analyzer_between"


@dataclass(frozen=True)
class Plan:
    """What to ask Prometheus: a query per family, each covering both versions, and the user
    checks' own queries, one per version (their templates select a single version)."""

    queries: dict[Source, str]
    versions: dict[Role, str]
    version_label: str
    seconds_per_unit: float = 1.0  # of the histogram's bucket bounds
    native: bool = False  # the latency histogram is a native one: its buckets come in one value
    readings: dict[ReadingKey, str] = field(default_factory=dict)
    # The canary's start query, asked inside the families' query (its series marked) to check a known start.
    start_check: str | None = None
    # The recent minutes' sums or counts asked inside the families' query, each's series marked with its name
    # (app/analysis.py).
    between: dict[str, str] = field(default_factory=dict)
    # What they are written from (sums_at, counts_between).
    preset: Preset = field(default_factory=Preset)
    service: str = ""
    namespace: str | None = None

    @classmethod
    def build(
        cls,
        checks: Iterable[Check],
        preset: Preset,
        service: str,
        versions: Mapping[Role, str],
        window: str,
        namespace: str | None = None,
    ) -> Plan:
        checks = list(checks)
        # The last window's requests are the request family's too, read minute by minute (app/analysis.py).
        families = dict.fromkeys(
            Source.REQUESTS if check.source == Source.CURRENT else Source(check.source)
            for check in checks
            if check.queries is None
        )
        queries = {
            source: promql.family_query(source, preset, service, list(versions.values()), window, namespace)
            for source in families
        }
        readings = {
            (check.source, role, part): promql.user_query(template, preset, service, version, window, namespace)
            for check in checks
            if check.queries is not None
            for role, version in versions.items()
            for part, template in check.queries.parts()
        }
        native = preset.latency_histogram == "native"
        return cls(
            queries,
            dict(versions),
            preset.version_label,
            preset.seconds_per_unit,
            native,
            readings,
            preset=preset,
            service=service,
            namespace=namespace,
        )

    @property
    def summed(self) -> bool:
        """Minutes are read as counters' sums at moments (`sums_at`); else as recorded increases between two."""
        return self.preset.series == "counters"

    def sums_at(self, end: float | None = None) -> str:
        """The families' counters of both versions summed at `end` (None: the evaluation), as one query: each
        family read minute by minute (not a native histogram)."""
        return promql.union(self._minutely(source, end=end) for source in self._by_minute())

    def counts_between(self, seconds: float, end: float | None = None) -> str:
        """The families' recorded increases of both versions in the `seconds` before `end`, as one query."""
        return promql.union(self._minutely(source, seconds, end) for source in self._by_minute())

    def minutely(self) -> Plan:
        """A plan that measures, at each moment it is evaluated, what `sums_at` (or a minute's `counts_between`)
        measures at it: for a range of minute boundaries."""
        queries = {source: self._minutely(source, MINUTE) for source in self._by_minute()}
        return replace(self, queries=queries, readings={}, start_check=None, between={})

    def _minutely(self, source: Source, seconds: float = MINUTE, end: float | None = None) -> str:
        versions, ns = list(self.versions.values()), self.namespace
        if self.summed:
            return promql.family_sums_query(source, self.preset, self.service, versions, end, ns)
        return promql.family_between_query(source, self.preset, self.service, versions, seconds, end, ns)

    def _by_minute(self) -> list[Source]:
        return [source for source in self.queries if promql.read_by_minute(source, self.preset)]

    def calls(self) -> dict[str | ReadingKey, str]:
        """What is sent: every family in one query (one round trip, and Prometheus evaluates it
        in one go), with the start check if any, and each user check's own queries."""
        families = list(self.queries.values())
        if self.start_check is not None:
            families.append(promql.marked(self.start_check, START_MARK))
        families += [promql.marked(query, BETWEEN_MARK, name) for name, query in self.between.items()]
        return ({FAMILIES: promql.union(families)} if families else {}) | self.readings

    def named_queries(self) -> dict[str, str]:
        """Every query sent, by a name people read: `families`, or `check:<name>:<version role>:<part>`."""
        return {key if isinstance(key, str) else "{}:{}:{}".format(*key): query for key, query in self.calls().items()}


@dataclass(frozen=True)
class Measurement:
    observed: dict[Role, Observed]
    warnings: tuple[str, ...]
    # What the plan's start check found: when the canary's series last began within its look-back;
    # None when they did not (or nothing was checked).
    canary_start: float | None = None
    # The plan's counts between two moments, by name: per version, what each family counted.
    between: dict[str, dict[Role, Observed]] = field(default_factory=dict)


@dataclass(frozen=True)
class History:
    """The same measurement at each step of a range: (unix time, what was observed then)."""

    steps: tuple[tuple[float, dict[Role, Observed]], ...]
    warnings: tuple[str, ...]


async def measure(plan: Plan, client: PrometheusClient, at: float, budget: float) -> Measurement:
    """Raises PrometheusError when anything could not be measured."""
    answers = await gather_within(budget, {key: client.query(query, at, budget) for key, query in plan.calls().items()})
    samples = {key: answer.samples for key, answer in answers.items()}
    try:
        start = None
        families, marked = _marked(samples.get(FAMILIES, ()), (START_MARK, BETWEEN_MARK))
        samples[FAMILIES] = families
        if plan.start_check is not None:
            start = _start(marked[START_MARK].get("1", []), at)
        observed = _observed(plan, samples)
        counted = replace(plan, readings={})
        between = {name: _observed(counted, {FAMILIES: marked[BETWEEN_MARK].get(name, [])}) for name in plan.between}
    except PrometheusError as exc:
        raise client.failed(exc) from None
    return Measurement(observed, _warnings(a.warnings for a in answers.values()), start, between)


async def canary_start(query: str, client: PrometheusClient, at: float, budget: float) -> float | None:
    """When the canary's series last began (unix time, to the query's resolution); None when they were
    there through the whole look-back. Raises PrometheusError as `measure` does."""
    answer = await gather_within(budget, {"start": client.query(query, at, budget)})
    try:
        return _start(answer["start"].samples, at)
    except PrometheusError as exc:
        raise client.failed(exc) from None


def _start(samples: Iterable[tuple[Labels, Value]], at: float) -> float | None:
    samples = list(samples)
    if len(samples) > 1 or any(labels for labels, _ in samples):
        raise _shape(f"the canary's start came as {len(samples)} series: {[dict(s[0]) for s in samples][:3]}")
    if not samples:
        return None
    start = samples[0][1]
    if isinstance(start, NativeSample) or not math.isfinite(start) or start > at:
        raise _shape(f"the canary's start is not a moment before the evaluation: {start}")
    return start


def _marked(
    samples: Iterable[tuple[Labels, Value]], marks: Iterable[str]
) -> tuple[list[tuple[Labels, Value]], dict[str, dict[str, list[tuple[Labels, Value]]]]]:
    """The families' own series, and those of the queries asked beside them, by mark and its value, the
    mark taken off (what is left is the query's own labels, and anything added on the way)."""
    marks = tuple(marks)
    own: list[tuple[Labels, Value]] = []
    marked: dict[str, dict[str, list[tuple[Labels, Value]]]] = {mark: defaultdict(list) for mark in marks}
    for labels, value in samples:
        mark = next((m for m in marks if m in labels), None)
        if mark is None:
            own.append((labels, value))
        else:
            rest = {name: v for name, v in labels.items() if name != mark}
            marked[mark][labels[mark]].append((rest, value))
    return own, marked


async def measure_range(
    plan: Plan, client: PrometheusClient, start: float, end: float, step: float, budget: float
) -> History:
    plan = replace(plan, start_check=None, between={})  # asked at one moment, not over a range
    answers = await gather_within(
        budget,
        {key: client.query_range(query, start, end, step, budget) for key, query in plan.calls().items()},
    )
    samples_at: dict[float, dict[str | ReadingKey, list[tuple[Labels, Value]]]] = defaultdict(lambda: defaultdict(list))
    for key, answer in answers.items():
        for labels, points in answer.series:
            for t, value in points:
                samples_at[t][key].append((labels, value))
    try:
        steps = tuple((t, _observed(plan, samples_at[t])) for t in sorted(samples_at))
    except PrometheusError as exc:
        raise client.failed(exc) from None
    return History(steps, _warnings(a.warnings for a in answers.values()))


def _observed(plan: Plan, samples: Mapping[str | ReadingKey, Iterable[tuple[Labels, Value]]]) -> dict[Role, Observed]:
    """Per version, what each family and each user check measured."""
    observed: dict[Role, dict[str, Measured | None]] = {role: {} for role in Role}
    for source, series in _by_family(plan, samples.get(FAMILIES, ())).items():
        for role, measured in distributions(plan, source, series).items():
            observed[role][source] = measured
    numbers = {key: _scalar(samples.get(key, ()), query) for key, query in plan.readings.items()}
    for source, role, _ in plan.readings:
        observed[role][source] = _reading(numbers, source, role)
    return observed


def _by_family(plan: Plan, samples: Iterable[tuple[Labels, Value]]) -> dict[Source, list[tuple[Labels, Value]]]:
    """The families' answer, split: request counts carry an outcome, bucket counts do not."""
    by_family: dict[Source, list[tuple[Labels, Value]]] = {source: [] for source in plan.queries}
    for labels, value in samples:
        source = Source.REQUESTS if promql.OUTCOME_LABEL in labels else Source.LATENCY
        if source not in by_family:
            raise _shape(f"a series of a family that was not asked for: {dict(labels)}")
        by_family[source].append((labels, value))
    return by_family


def _scalar(samples: Iterable[tuple[Labels, Value]], query: str) -> float | None:
    """A user check's query must give one number, or nothing (no data)."""
    samples = list(samples)
    if len(samples) > 1:
        raise _shape(
            f"a check's query gave {len(samples)} series, not one: {[dict(labels) for labels, _ in samples][:3]}"
        )
    if not samples:
        return None
    labels, value = samples[0]
    _held_to_fixed_labels(labels, query)
    if isinstance(value, NativeSample):
        raise _shape("a check's query gave a native histogram, not a number")
    return None if math.isnan(value) else value


def _held_to_fixed_labels(labels: Labels, query: str) -> None:
    """A check's series may carry only labels its query fixes with `=`, as `sum` or `sum by (version)` leave
    them: any other label (`pod`, `instance`) was not aggregated away, or was added on the way (a federation
    layer), and the number may be one of several."""
    fixed = promql.fixed_labels(query)
    loose = sorted(name for name, value in labels.items() if value not in fixed.get(name, ()))
    if loose:
        raise _shape(
            f"a check's series carries labels its query does not fix with =: {', '.join(loose)} in {dict(labels)}"
            " (aggregate them away: sum, max)"
        )


def _reading(numbers: Mapping[ReadingKey, float | None], source: str, role: Role) -> Measured | None:
    if (source, role, "value") in numbers:
        value = numbers[source, role, "value"]
        return None if value is None else Reading(value)
    trials = numbers[source, role, "trials"]
    if trials is None:
        return None
    # Events counted by a counter that never moved have no series: none happened.
    events = numbers[source, role, "events"] or 0.0
    if not 0 <= events <= trials:
        raise _shape(f"a check counted {events:g} events in {trials:g} trials")
    return Outcomes(ok=trials - events, errors=events)


def distributions(
    plan: Plan, source: Source, samples: Iterable[tuple[Labels, Value]]
) -> dict[Role, Histogram | NativeHistogram | Outcomes | None]:
    """Per version, the family's distribution; None for a version without series."""
    samples = list(samples)
    _held_to_grouping(plan, source, samples)
    role_of = {version: role for role, version in plan.versions.items()}
    grouped: dict[Role, list[tuple[Labels, Value]]] = {role: [] for role in Role}
    for labels, value in samples:
        role = role_of.get(labels.get(plan.version_label, ""))
        if role is None:
            raise _shape(f"a series for a version that was not asked for: {dict(labels)}")
        grouped[role].append((labels, value))
    if source is not Source.LATENCY:
        parse: Callable[[list[tuple[Labels, Value]]], Histogram | NativeHistogram | Outcomes] = _outcomes
    elif plan.native:
        parse = functools.partial(_native_histogram, seconds_per_unit=plan.seconds_per_unit)
    else:
        parse = functools.partial(_histogram, seconds_per_unit=plan.seconds_per_unit)
    return {role: parse(series) if series else None for role, series in grouped.items()}


def _grouping(plan: Plan, source: Source) -> tuple[str, ...]:
    """The labels a family's query groups by (app/promql.py), the version last."""
    if source is Source.REQUESTS:
        return (promql.OUTCOME_LABEL, plan.version_label)
    return (plan.version_label,) if plan.native else ("le", plan.version_label)


def _held_to_grouping(plan: Plan, source: Source, samples: Iterable[tuple[Labels, Value]]) -> None:
    """Refuses what the query's `sum by` cannot have answered: a label it does not group by, or one group
    answered twice (a proxy or federation layer that merges answers without deduplicating them): summed,
    either would be counted twice. A version label may be absent: the empty version (Prometheus drops empty
    labels). A series missing another of the labels is left to the parsers, which say what it lacks."""
    grouping = _grouping(plan, source)
    expected = ", ".join(grouping)
    seen: set[tuple[str, ...]] = set()
    for labels, _ in samples:
        unexpected = sorted(set(labels) - set(grouping))
        if unexpected:
            raise _shape(
                f"{source} series carry labels the query does not group by ({expected}):"
                f" {', '.join(unexpected)} in {dict(labels)}"
            )
        if any(name not in labels for name in grouping[:-1]):
            continue
        key = tuple(labels.get(name, "") for name in grouping)
        if key in seen:
            group = ", ".join(f'{name}="{value}"' for name, value in zip(grouping, key, strict=True))
            raise _shape(f"{source} series repeated: {group} answered more than once, where ({expected}) is unique")
        seen.add(key)


# --- one version's counters by the values of a label (calibrate) -------------------------------------


@dataclass(frozen=True)
class Labelled:
    """What reads one version's counters summed by the values of a label besides the families' own groups:
    `calibrate` reads the stable's by `pod`, to judge half its pods against the other half."""

    preset: Preset
    service: str
    version: str
    label: str
    namespace: str | None = None

    def sums(self, source: Source) -> str:
        """The family's counters summed by the label, the family's groups and the version, at the evaluation."""
        return promql.labelled_sums_query(source, self.preset, self.service, self.version, self.label, self.namespace)

    def labels(self, source: Source, labels: Iterable[str]) -> str:
        """Which values of `labels` the version's series of a family carry."""
        return promql.labels_query(source, self.preset, self.service, self.version, list(labels), self.namespace)


@dataclass(frozen=True)
class LabelledSums:
    """A family's counters of one version summed by a label's values at each step of a range: `counts[v, s, k]`
    for value v at step s and column k (the outcomes ok and error, or the bucket bounds in seconds, ascending,
    counts at or under each), `present[v, s]` where the value had series then (absent: all its counts 0)."""

    steps: np.ndarray  # (S,) unix times
    values: tuple[str, ...]  # ascending; "" for series without the label
    columns: tuple[str, ...] | tuple[float, ...]
    counts: np.ndarray  # (V, S, K)
    present: np.ndarray  # (V, S)
    samples: int = 0  # the points the answers held

    @classmethod
    def joined(cls, parts: Sequence[LabelledSums]) -> LabelledSums:
        """Consecutive ranges' sums as one: every value and column any of them has (a bound one range lacks
        counted at the next bound up, as _at_or_under counts it)."""
        values = tuple(sorted({value for part in parts for value in part.values}))
        columns = tuple(sorted({column for part in parts for column in part.columns}, key=_column_order))
        sizes = [len(part.steps) for part in parts]
        counts = np.zeros((len(values), sum(sizes), len(columns)))
        seen, present = np.zeros(counts.shape, dtype=bool), np.zeros(counts.shape[:2], dtype=bool)
        row_of, column_of = {value: i for i, value in enumerate(values)}, {c: i for i, c in enumerate(columns)}
        first = 0
        for part, size in zip(parts, sizes, strict=True):
            rows = np.array([row_of[value] for value in part.values], dtype=int)
            at = np.array([column_of[column] for column in part.columns], dtype=int)
            span = np.arange(first, first + size)
            counts[np.ix_(rows, span, at)] = part.counts
            seen[np.ix_(rows, span, at)] = part.present[:, :, None]
            present[np.ix_(rows, span)] = part.present
            first += size
        if columns and isinstance(columns[0], float):
            counts = _at_or_under(counts, seen, present)
        steps = np.concatenate([part.steps for part in parts]) if parts else np.zeros(0)
        return cls(steps, values, columns, counts, present, sum(part.samples for part in parts))


def _column_order(column: str | float) -> tuple[float, str]:
    """Bounds ascending; the outcomes ok, then error."""
    if isinstance(column, float):
        return column, ""
    return (0.0 if column == promql.OK else 1.0), column


async def labelled_sums(
    reading: Labelled, source: Source, client: PrometheusClient, start: float, end: float, step: float, budget: float
) -> LabelledSums:
    """The family's sums by the label at each step from `start` to `end`, in one range query. Raises
    PrometheusError when they could not be read, or came in a shape the query cannot have given."""
    answer = await client.query_range(reading.sums(source), start, end, step, budget)
    try:
        return _labelled_sums(reading, source, answer, start, end, step)
    except PrometheusError as exc:
        raise client.failed(exc) from None


async def labels_present(
    reading: Labelled,
    source: Source,
    labels: Iterable[str],
    client: PrometheusClient,
    start: float,
    end: float,
    step: float,
    budget: float,
) -> dict[tuple[str, ...], np.ndarray]:
    """Each combination of the values of `labels` the version's series of a family carried at a step from
    `start` to `end` (a label a series lacks: ""), with the steps it was there at."""
    labels = list(labels)
    answer = await client.query_range(reading.labels(source, labels), start, end, step, budget)
    present: dict[tuple[str, ...], np.ndarray] = {}
    try:
        for series, points in answer.series:
            unexpected = sorted(set(series) - set(labels))
            if unexpected:
                raise _shape(f"a grouping by {', '.join(labels)} answered other labels: {dict(series)}")
            key = tuple(series.get(label, "") for label in labels)
            if key in present:
                raise _shape(f"a grouping by {', '.join(labels)} answered {dict(series)} more than once")
            present[key] = np.array([t for t, _ in points], dtype=float)
    except PrometheusError as exc:
        raise client.failed(exc) from None
    return present


def _labelled_sums(
    reading: Labelled, source: Source, answer: Matrix, start: float, end: float, step: float
) -> LabelledSums:
    steps = start + step * np.arange(round((end - start) / step) + 1)
    version_label = reading.preset.version_label
    column_label = "le" if source is Source.LATENCY else promql.OUTCOME_LABEL
    grouping = {reading.label, version_label, column_label}
    cells: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    for labels, points in answer.series:
        unexpected = sorted(set(labels) - grouping)
        if unexpected:
            raise _shape(
                f"{source} series carry labels the query does not group by ({', '.join(sorted(grouping))}):"
                f" {', '.join(unexpected)} in {dict(labels)}"
            )
        if labels.get(version_label, "") != reading.version:
            raise _shape(f"a series for a version that was not asked for: {dict(labels)}")
        if column_label not in labels:
            raise _shape(f"{source} series without {column_label}: {dict(labels)}")
        key = (labels.get(reading.label, ""), labels[column_label])
        if key in cells:
            raise _shape(f"{source} series repeated: {dict(labels)} answered more than once")
        cells[key] = _on_steps(points, start, step, len(steps), labels)
    values = tuple(sorted({value for value, _ in cells}))
    columns = _columns(source, {column for _, column in cells}, reading.preset.seconds_per_unit)
    counts = np.zeros((len(values), len(steps), len(columns)))
    seen = np.zeros(counts.shape, dtype=bool)
    value_at = {value: i for i, value in enumerate(values)}
    column_at = {text: i for i, (text, _) in enumerate(columns)}
    for (value, column), (at, numbers) in cells.items():
        counts[value_at[value], at, column_at[column]] = numbers
        seen[value_at[value], at, column_at[column]] = True
    present = seen.any(axis=2)
    counts = _at_or_under(counts, seen, present) if source is Source.LATENCY else _ok_and_errors(counts, seen)
    samples = sum(len(points) for _, points in answer.series)
    return LabelledSums(steps, values, tuple(bound for _, bound in columns), counts, present, samples)


def _on_steps(
    points: tuple[tuple[float, Value], ...], start: float, step: float, steps: int, labels: Labels
) -> tuple[np.ndarray, np.ndarray]:
    """A series' points as (the step each is at, its count), each a finite, non-negative number at a step."""
    if any(isinstance(value, NativeSample) for _, value in points):
        raise _shape(f"a native histogram where counts were asked for: {dict(labels)}")
    table = np.array(points, dtype=float).reshape(-1, 2)
    where = (table[:, 0] - start) / step
    at = np.rint(where).astype(int)
    if np.any(np.abs(where - at) > 1e-6) or np.any(at < 0) or np.any(at >= steps):
        raise _shape(f"a series with points off the range's steps: {dict(labels)}")
    counts = table[:, 1]
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise _shape(f"a count that is not a finite, non-negative number in {dict(labels)}")
    return at, counts


def _columns(source: Source, texts: set[str], seconds_per_unit: float) -> list[tuple[str, Any]]:
    """The columns' label values and what each stands for, in order: outcomes ok then error; bounds ascending."""
    if source is not Source.LATENCY:
        odd = sorted(texts - {promql.ALL, promql.ERROR})
        if odd:
            raise _shape(f"request counts marked other than all and error: {odd}")
        return [(promql.ALL, promql.OK), (promql.ERROR, promql.ERROR)]
    try:
        bounds = sorted((float(text) * seconds_per_unit, text) for text in texts)
    except ValueError:
        raise _shape(f"not a histogram's bucket bounds: {sorted(texts)[:5]}") from None
    if bounds and bounds[-1][0] != math.inf:
        raise _shape("a histogram without a +Inf bucket")
    return [(text, bound) for bound, text in bounds]


def _ok_and_errors(counts: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """All requests and the errors among them (promql.OUTCOME_SUMS) as the ok ones and the errors."""
    every, errors = counts[:, :, 0], counts[:, :, 1]
    if np.any(seen[:, :, 1] & ~seen[:, :, 0]) or np.any(errors > every):
        raise _shape("more errors than requests: the errors' sums are not part of all the requests'")
    return np.stack([every - errors, errors], axis=2)


def _at_or_under(counts: np.ndarray, seen: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Where a value had some bucket series at a step but not another bound's (a bucket layout that changed),
    the requests at or under the missing bound are those at or under the bound below it (0 under the first):
    its bucket's requests are counted at the next bound up, as Counts.stack counts them."""
    if seen[present].all():
        return counts
    columns = np.arange(counts.shape[2])
    last_seen = np.maximum.accumulate(np.where(seen, columns, -1), axis=2)
    below = np.take_along_axis(np.concatenate([np.zeros((*counts.shape[:2], 1)), counts], axis=2), last_seen + 1, 2)
    return np.where(present[:, :, None], below, 0.0)


def _count(value: Value) -> float:
    if isinstance(value, NativeSample) or not math.isfinite(value) or value < 0:
        raise _shape(f"a count that is not a finite, non-negative number: {value}")
    return value


def _outcomes(series: list[tuple[Labels, float]]) -> Outcomes:
    counts = {promql.OK: 0.0, promql.ERROR: 0.0}
    for labels, value in series:
        outcome = labels.get(promql.OUTCOME_LABEL)
        if outcome not in counts:
            raise _shape(f"request counts without an ok/error outcome: {dict(labels)}")
        counts[outcome] += _count(value)
    return Outcomes(ok=counts[promql.OK], errors=counts[promql.ERROR])


def _histogram(series: list[tuple[Labels, Value]], seconds_per_unit: float) -> Histogram:
    """Bucket bounds in seconds, whatever unit the exporter counts in."""
    try:
        buckets = [(float(labels["le"]) * seconds_per_unit, _count(value)) for labels, value in series]
        return Histogram.from_buckets(buckets)
    except (KeyError, ValueError) as exc:
        raise _shape(f"not a histogram's buckets ({exc}): {[dict(labels) for labels, _ in series][:3]}") from None


def _native_histogram(series: list[tuple[Labels, Value]], seconds_per_unit: float) -> NativeHistogram:
    labels, value = series[0]
    if len(series) != 1 or not isinstance(value, NativeSample):
        raise _shape(f"not one native histogram per version (a classic one, or several?): {dict(labels)}")
    if not math.isfinite(value.count) or value.count < 0 or any(not count >= 0 for *_, count in value.buckets):
        raise _shape(f"a native histogram with counts that are not finite, non-negative numbers: {dict(labels)}")
    buckets = tuple(
        (lower * seconds_per_unit, upper * seconds_per_unit, count) for lower, upper, count in value.buckets
    )
    return NativeHistogram(buckets, value.count)


def _shape(detail: str) -> PrometheusError:
    # Not cut here: the client's excerpt cuts after redacting (half a secret would no longer match).
    return PrometheusError(Cause.BAD_RESPONSE, detail)


def _warnings(groups: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(w for group in groups for w in group))


async def gather_within(budget: float, calls: dict[K, Coroutine[Any, Any, T]]) -> dict[K, T]:
    """Runs the calls concurrently; the first PrometheusError, or the budget running out, ends all."""
    try:
        async with asyncio.timeout(budget):
            try:
                async with asyncio.TaskGroup() as group:
                    tasks = {key: group.create_task(call) for key, call in calls.items()}
            except* PrometheusError as failures:
                raise failures.exceptions[0] from None
    except TimeoutError:
        raise PrometheusError(Cause.TIMEOUT, f"Prometheus did not answer within {budget:g}s") from None
    return {key: task.result() for key, task in tasks.items()}
