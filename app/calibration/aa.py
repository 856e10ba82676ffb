"""A/A on real traffic: half the stable's pods judged as the canary against the other half, on the service's own
history, as Argo runs the shipped templates; and where the halves truly differ, the pods behind it.

- **The runs.** A run of each template starts at instants spread over the period, the canary half's life
  starting with the run (under `anytime`, the canary's data are everything since it started), its answers on
  the template's schedule, each judged on what the server would hand the judge then (app/calibration/replay.py):
  the canary half since the run started, the stable half over the same span (never less than the window), both
  halves' recent minutes, their traffic of the last window. Runs of a template do not overlap: each judges
  minutes of its own. The halves take turns being the canary, by the instant's place in time.
- **Where the halves differ.** Both halves over the whole period, each as the canary against the other; and each
  pod against the rest of the stable in the minutes it served, with the relative checks' own statistics: how
  much slower, how many more errors, and whether that is beyond the check's tolerance (a canary served like it
  would be failed) or only beyond no difference at all (noise cannot explain it, the tolerance absorbs it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app import promql
from app.calibration.argo import TEMPLATES, Policy, load_policy
from app.calibration.history import History, Unusable
from app.calibration.replay import Answer, Run, judged_as_the_server_does, replay_run, since_start
from app.calibration.split import HALVES, Halves, split
from app.canary_lives import MINUTE
from app.judge.checks import Check, Method, Observed
from app.judge.findings import Outcome
from app.judge.recent import Counts
from app.judge.statistical_rules import Levels, classify
from app.judge.units import Unit
from app.measurement import Role
from app.models import AnalysisRequest, CalibrationRequest

BACKGROUND_MEASUREMENTS = 60  # a background run of a typical rollout: stopped with it after an hour


@dataclass(frozen=True)
class Template:
    """A template replayed: its policy, and for a run without a count, after how many measurements the rollout
    stops it."""

    name: str
    policy: Policy
    measurements_until_stop: int | None = None

    @property
    def measurements(self) -> int:
        return self.policy.count if self.policy.count is not None else self.measurements_until_stop or 0

    @property
    def last_answer(self) -> float:
        """Seconds from a run's start to its last answer, when no limit ends it first."""
        return self.policy.initial_delay + self.policy.interval * (self.measurements - 1)

    @property
    def spacing(self) -> float:
        """Between two runs' starts: the next starts as the last answer of this one is taken."""
        return max(MINUTE, self.last_answer + self.policy.interval)


def templates(step: Path | None = None, background: Path | None = None) -> tuple[Template, Template]:
    """The step and background templates (the shipped ones unless others are named), as replayed: a run's answers
    must fall on minute boundaries, where the history's minutes end. Unusable otherwise."""
    found = []
    for name, path, stop in (("step", step, None), ("background", background, BACKGROUND_MEASUREMENTS)):
        path = path or TEMPLATES[name]
        try:
            policy = load_policy(path)
        except FileNotFoundError:
            raise Unusable(f"no {name} template at {path}: name one with --{name}-template") from None
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise Unusable(f"{path} is not an AnalysisTemplate calibrate can replay: {exc}") from None
        for field, seconds in (("initialDelay", policy.initial_delay), ("interval", policy.interval)):
            if seconds % MINUTE:
                raise Unusable(f"{path}: {field} {seconds:g}s is not whole minutes, where the history's minutes end")
        if policy.count is None and policy.interval <= 0:
            raise Unusable(f"{path}: a run without a count needs an interval")
        found.append(Template(name, policy, stop if policy.count is None else None))
    return found[0], found[1]


class HalfMinutes:
    """Both halves' counts minute by minute (the m-th minute ends at `ends[m]`, a minute after the one before),
    any stretch of them summed at once."""

    def __init__(self, ends: np.ndarray, halves: dict[str, Counts]) -> None:
        self.first_end, self.count = float(ends[0]), len(ends)
        self.halves = halves
        self.bounds = next(iter(halves.values())).bounds
        self._sums = {half: _cumulative(counts) for half, counts in halves.items()}

    def _after(self, moment: float) -> int:
        """How many minutes end at or before `moment` (a minute boundary), between 0 and all."""
        return int(np.clip(round((moment - self.first_end) / MINUTE) + 1, 0, self.count))

    def total(self, half: str, begin: float, end: float) -> Counts:
        """The half's counts in the minutes ending in (begin, end], as one row."""
        ok, errors, buckets = self._sums[half]
        first, last = self._after(begin), max(self._after(begin), self._after(end))
        return Counts(
            ok[[last]] - ok[[first]], errors[[last]] - errors[[first]], self.bounds, buckets[[last]] - buckets[[first]]
        )

    def changed(self, change: Callable[[str, Counts], Counts]) -> HalfMinutes:
        """The same minutes, each half's counts as `change(half, counts)` makes them (power: regressions)."""
        return HalfMinutes(
            self.first_end + MINUTE * np.arange(self.count), {h: change(h, c) for h, c in self.halves.items()}
        )

    def rows(self, half: str, starts: Sequence[float], end: float, since: float = -math.inf) -> Counts:
        """The half's minutes starting at `starts` (the last one ending at `end`): none before the data, or ending
        at or before `since`."""
        if end - starts[-1] != MINUTE:
            raise ValueError("a replayed answer must fall on a minute boundary, where the history's minutes end")
        minute = np.rint((np.asarray(starts) + MINUTE - self.first_end) / MINUTE).astype(int)
        held = (minute >= 0) & (minute < self.count) & (np.asarray(starts) + MINUTE > since)
        at = np.where(held, minute, 0)
        counts = self.halves[half].rows(at)
        return Counts(counts.ok * held, counts.errors * held, self.bounds, counts.buckets * held[:, None])


def half_minutes(history: History, halves: Halves) -> HalfMinutes:
    return HalfMinutes(history.ends, {half: history.counts(halves.members(half)) for half in HALVES})


def _cumulative(counts: Counts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    def summed(values: np.ndarray) -> np.ndarray:
        return np.concatenate([np.zeros((1, *values.shape[1:])), np.cumsum(values, axis=0)])

    return summed(counts.ok), summed(counts.errors), summed(counts.buckets)


@dataclass(frozen=True)
class AsCanary:
    """One run's versions: the `canary` half, whose life starts with the run, against the other half
    (app/calibration/replay.py, Served). The canary half is read from `regressed` when given (power)."""

    halves: HalfMinutes
    canary: str
    start: float
    regressed: HalfMinutes | None = None

    @property
    def _canary(self) -> HalfMinutes:
        return self.regressed if self.regressed is not None else self.halves

    @property
    def stable(self) -> str:
        return HALVES[1 - HALVES.index(self.canary)]

    def observed(self, role: Role, begin: float, end: float) -> Observed:
        if role is Role.CANARY:
            return self._canary.total(self.canary, max(begin, self.start), end).observed(0)
        return self.halves.total(self.stable, begin, end).observed(0)

    def minutes(self, role: Role, starts: Sequence[float], end: float) -> Counts:
        if role is Role.CANARY:
            return self._canary.rows(self.canary, starts, end, since=self.start)
        return self.halves.rows(self.stable, starts, end)


@dataclass(frozen=True)
class Replayed:
    """A template's runs over the period, and the half that was the canary in each."""

    template: Template
    runs: tuple[Run, ...]
    canaries: tuple[str, ...]


def run_starts(first: float, last: float, template: Template) -> list[float]:
    """Runs' starts, a spacing apart at multiples of it in unix time (the same instants however the period is
    cut), from `first` on, each run's last answer by `last`."""
    spacing = template.spacing
    start = math.ceil(first / spacing) * spacing
    count = max(0, math.floor((last - template.last_answer - start) / spacing) + 1)
    return [start + spacing * k for k in range(count)]


def canary_half(start: float, template: Template) -> str:
    """The halves take turns: by the parity of the run's instant among the template's."""
    return HALVES[round(start / template.spacing) % 2]


def replay(
    halves: HalfMinutes,
    request: AnalysisRequest,
    template: Template,
    first: float,
    last: float,
    on_run: Callable[[], None] | None = None,
    regressed: HalfMinutes | None = None,
    starts: Sequence[float] | None = None,
) -> Replayed:
    """The template's runs from `first` (the data's first minute start) to `last` (its last minute's end), each
    run's canary half starting with it; its stable half over the window before too. Only those at `starts`, when
    given; the canary half read from `regressed`, when given."""
    window = window_seconds(request)
    runs, canaries = [], []
    for start in run_starts(first + window, last, template) if starts is None else starts:
        served = AsCanary(halves, canary_half(start, template), start, regressed)

        def answer_at(at: float, served: AsCanary = served) -> Answer:
            observation = since_start(served, at, served.start, window)
            return Answer.of(judged_as_the_server_does(request, observation))

        runs.append(replay_run(template.policy, start, answer_at, template.measurements_until_stop))
        canaries.append(served.canary)
        if on_run is not None:
            on_run()
    return Replayed(template, tuple(runs), tuple(canaries))


def window_seconds(request: AnalysisRequest) -> float:
    """The least a run's answer judges, in whole minutes."""
    return math.ceil(promql.duration_seconds(request.window) / MINUTE) * MINUTE


def runs_planned(first: float, last: float, request: AnalysisRequest, templates: Sequence[Template]) -> int:
    window = window_seconds(request)
    return sum(len(run_starts(first + window, last, template)) for template in templates)


# --- where the halves differ -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """One relative check on one side against another: its estimate and the two one-sided bounds, at the
    check's tolerance; `beyond`: failed at the tolerance (a canary like it is failed); `differs`: failed at no
    difference at all (more than noise, if within the tolerance)."""

    check: Check
    tolerance: float
    estimate: float | None
    low: float | None  # the fail side's bound, at 1 - alpha
    high: float | None  # the pass side's, at pass_confidence
    alpha: float
    beyond: bool
    differs: bool
    side: float | None  # the check's number for the side judged (P95, error rate)
    rest: float | None  # and for what it was judged against

    @property
    def unit(self) -> Unit:
        return Unit.FACTOR if self.check.method is Method.RANK_SHIFT else Unit.RATIO


def relative_checks(request: AnalysisRequest) -> list[Check]:
    """The checks that compare with the stable and can be judged on the history's counts."""
    return [
        check
        for check in request.checks
        if check.bound.relative and check.method is not Method.POINT and check.queries is None
    ]


def compared(check: Check, tolerance: float, side: Observed, rest: Observed, levels: Levels, span: str) -> Comparison:
    at_tolerance = classify(check, tolerance, side, rest, span, levels)
    at_none = classify(check, check.limit.minimum, side, rest, span, levels)
    evidence = at_tolerance.evidence
    return Comparison(
        check,
        tolerance,
        evidence.estimate if evidence else None,
        evidence.low if evidence else None,
        evidence.high if evidence else None,
        levels.alpha,
        at_tolerance.outcome is Outcome.FAIL,
        at_none.outcome is Outcome.FAIL,
        check.value(side),
        check.value(rest),
    )


@dataclass(frozen=True)
class ValueCompared:
    """One value of the label (a pod) against the rest of the stable in the minutes it was counted."""

    value: str
    half: str
    requests: float
    share: float  # of the stable's requests over the period
    minutes: int  # counted
    left_out: int  # with series, not counted (a counter fell, a pod came or went)
    comparisons: tuple[Comparison, ...]

    @property
    def differs(self) -> bool:
        return any(c.differs for c in self.comparisons)

    @property
    def beyond(self) -> bool:
        return any(c.beyond for c in self.comparisons)


def levels_for(request: AnalysisRequest, tests: int) -> Levels:
    """The judge's alpha for one check, split over `tests` comparisons (Bonferroni), each one look at the data."""
    return Levels(request.confidence().per_check(request.checks) / max(1, tests), request.pass_confidence)


def halves_compared(minutes: HalfMinutes, request: AnalysisRequest) -> dict[str, tuple[Comparison, ...]]:
    """Each half as the canary against the other over the whole period."""
    checks, limits = relative_checks(request), request.limits()
    levels = levels_for(request, len(HALVES))
    span = promql.duration_text(minutes.count * MINUTE)
    totals = {half: total(counts) for half, counts in minutes.halves.items()}
    return {
        half: tuple(
            compared(check, limits[check.name], totals[half], totals[HALVES[1 - i]], levels, span) for check in checks
        )
        for i, half in enumerate(HALVES)
    }


def values_compared(history: History, halves: Halves, request: AnalysisRequest) -> list[ValueCompared]:
    """Every value with requests against the rest of the stable in the minutes the value was counted."""
    checks, limits = relative_checks(request), request.limits()
    served = [*halves.a, *halves.b]
    levels = levels_for(request, len(served))
    span = promql.duration_text(len(history.ends) * MINUTE)
    everyone = history.counts(history.values)
    total_requests = float(history.requests.sum())
    found = []
    for value in served:
        row = history.values.index(value)
        kept = history.kept[row].astype(float)
        mine = history.counts([value])
        rest = Counts(
            everyone.ok * kept - mine.ok, everyone.errors * kept - mine.errors, history.bounds,
            everyone.buckets * kept[:, None] - mine.buckets,
        )  # fmt: skip
        side, others = total(mine), total(rest)
        requests = float(history.requests[row])
        found.append(
            ValueCompared(
                value,
                halves.of(value),
                requests,
                requests / total_requests if total_requests else 0.0,
                int(history.kept[row].sum()),
                int(history.left_out[row].sum()),
                tuple(compared(check, limits[check.name], side, others, levels, span) for check in checks),
            )
        )
    return found


def total(counts: Counts) -> Observed:
    """Minutes summed, as the judge reads them."""
    whole = Counts(
        counts.ok.sum(keepdims=True),
        counts.errors.sum(keepdims=True),
        counts.bounds,
        counts.buckets.sum(axis=0, keepdims=True),
    )
    return whole.observed(0)


# --- the whole --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calibration:
    """What calibrate found: the history read, its halves, each template's runs, and where the halves differ."""

    request: CalibrationRequest
    preset: str
    history: History
    halves: Halves
    minutes: HalfMinutes  # both halves' counts minute by minute: what every replay reads
    replayed: tuple[Replayed, ...]
    compared: dict[str, tuple[Comparison, ...]]  # each half against the other
    values: tuple[ValueCompared, ...]
    replay_seconds: float
    seconds_per_unit: float = 1.0  # of the histogram's bucket bounds, as its clients configure them

    @property
    def period(self) -> tuple[float, float]:
        """The history's first minute's start and its last minute's end."""
        return period_of(self.history)


def period_of(history: History) -> tuple[float, float]:
    return float(history.ends[0]) - MINUTE, float(history.ends[-1])


def calibrated(
    history: History,
    request: CalibrationRequest,
    preset: str,
    replayed_templates: Sequence[Template],
    on_run: Callable[[], None] | None = None,
    on_planned: Callable[[int], None] | None = None,
    seconds_per_unit: float = 1.0,
) -> Calibration:
    """The history split in halves by its values that served requests (NotSplit with fewer than two), each
    template's runs replayed on them, the halves and the values compared. `on_planned(runs)` once the runs are
    known, `on_run()` after each."""
    halves = split(history.label, [value for value, n in zip(history.values, history.requests, strict=True) if n > 0])
    minutes = half_minutes(history, halves)
    analysis = request.analysis_request()
    first, last = period_of(history)
    if on_planned is not None:
        on_planned(runs_planned(first, last, analysis, replayed_templates))
    started = time.perf_counter()
    replayed = tuple(replay(minutes, analysis, template, first, last, on_run) for template in replayed_templates)
    compared = halves_compared(minutes, analysis)
    values = tuple(values_compared(history, halves, analysis))
    seconds = time.perf_counter() - started
    return Calibration(request, preset, history, halves, minutes, replayed, compared, values, seconds, seconds_per_unit)
