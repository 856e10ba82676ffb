"""Power on real traffic: known regressions injected into the canary half's counts and replayed, as the A/A's runs
are (app/calibration/aa.py), to see how often and how soon the analysis catches them at the service's own rates.

- **What is injected.** More 5xx (`+3 points of 5xx`: the canary's error share is the stable's plus 0.03) or
  slower requests (`x1.25 latency`: every request takes 1.25 times as long), from the run's start: the half that
  is a run's canary is read regressed, the other half as it served.
- **The replay.** At most MOST_RUNS runs of each template per regression, evenly over the period and in pairs of
  consecutive runs (each half the canary of as many), so power adds seconds to a week's calibration, not minutes.
- **The smallest effect caught.** For each kind, the smallest size on a grid whose step runs abort at least
  CAUGHT_AT_LEAST of the time, found by bisection (a larger regression is caught at least as often).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from app.calibration.aa import Calibration, HalfMinutes, Replayed, Template, replay, window_seconds
from app.calibration.aa import run_starts as all_run_starts
from app.calibration.argo import ABORTED
from app.calibration.split import HALVES
from app.canary_lives import MINUTE
from app.judge.checks import Source
from app.judge.recent import Counts
from app.models import AnalysisRequest

CAUGHT_AT_LEAST = 0.95  # of step runs aborted: a regression the analysis catches
MOST_RUNS = 100  # runs of a template replayed per regression
SEED = 20240601  # the error draws': the same figures every time


class Kind(StrEnum):
    ERRORS = "errors"
    LATENCY = "latency"


# What each kind of regression changes: the relative check that reads it holds it to its tolerance.
SOURCE_OF_KIND = {Kind.ERRORS: Source.REQUESTS, Kind.LATENCY: Source.LATENCY}


MODELS = {
    Kind.ERRORS: (
        "each ok request of a minute becomes a 5xx with probability d / (the minute's ok share), capped at 1, "
        "drawn binomially with a fixed seed: the error share rises by d in expectation, requests and latencies "
        "unchanged"
    ),
    Kind.LATENCY: (
        "inside a bucket requests are spread evenly in log latency (as the judge reads a histogram), the first "
        "bucket reaching down one bucket's width in log; a request x f slower crosses the bounds that model says, "
        "expected counts (not drawn), the total unchanged, nothing out of +Inf"
    ),
}

# The grids the smallest caught effect is searched on: 5xx in points (0.01 = one point), latency as a factor.
GRIDS = {
    Kind.ERRORS: (0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.07, 0.1, 0.15, 0.2),
    Kind.LATENCY: (1.02, 1.05, 1.1, 1.15, 1.2, 1.25, 1.3, 1.4, 1.5, 1.75, 2.0, 2.5, 3.0),
}


@dataclass(frozen=True)
class Regression:
    """A regression injected: `size` points of 5xx more (0.03: three points), or latency `size` times."""

    kind: Kind
    size: float

    @property
    def name(self) -> str:
        if self.kind is Kind.ERRORS:
            points = self.size * 100
            return f"+{points:g} point{'' if points == 1 else 's'} of 5xx"
        return f"x{self.size:g} latency"

    @property
    def shown(self) -> str:
        """Its size alone, as an axis reads it: +3 pp, x1.25."""
        return f"+{self.size * 100:g} pp" if self.kind is Kind.ERRORS else f"x{self.size:g}"

    def applied(self, counts: Counts, seed: int) -> Counts:
        if self.kind is Kind.ERRORS:
            return with_more_errors(counts, self.size, np.random.default_rng([SEED, seed]))
        return slower(counts, self.size)


# The regressions every calibration reports (the benchmarks' are x1.25 and +3 points).
NAMED = (
    Regression(Kind.ERRORS, 0.01),
    Regression(Kind.ERRORS, 0.03),
    Regression(Kind.ERRORS, 0.05),
    Regression(Kind.LATENCY, 1.1),
    Regression(Kind.LATENCY, 1.25),
    Regression(Kind.LATENCY, 1.5),
)
BENCHMARKED = {Kind.ERRORS: 0.03, Kind.LATENCY: 1.25}


def with_more_errors(counts: Counts, points: float, rng: np.random.Generator) -> Counts:
    """MODELS[ERRORS]: ok requests moved to errors, each minute's requests as many as before."""
    served = counts.ok + counts.errors
    with np.errstate(divide="ignore", invalid="ignore"):
        chance = np.where(counts.ok > 0, points * served / counts.ok, 0.0)
    # Counters' increases are whole requests; a fraction left over stays ok.
    whole = np.floor(counts.ok)
    moved = rng.binomial(whole.astype(np.int64), np.clip(chance, 0.0, 1.0)).astype(float)
    return Counts(counts.ok - moved, counts.errors + moved, counts.bounds, counts.buckets)


def slower(counts: Counts, factor: float) -> Counts:
    """MODELS[LATENCY]: each row's requests at or under a bound b become those at or under b / factor before."""
    finite = [bound for bound in counts.bounds if math.isfinite(bound)]
    if factor == 1 or len(finite) < 2 or finite[0] <= 0:
        return counts  # no bucket to read a shape from
    cumulative = np.cumsum(counts.buckets, axis=1)
    at_or_under = cumulative_at(np.asarray(finite), cumulative[:, : len(finite)], np.asarray(finite) / factor)
    moved = np.concatenate([at_or_under, cumulative[:, len(finite) :]], axis=1)
    return Counts(counts.ok, counts.errors, counts.bounds, np.diff(moved, axis=1, prepend=0.0))


def cumulative_at(bounds: np.ndarray, cumulative: np.ndarray, moments: np.ndarray) -> np.ndarray:
    """Each row's requests at or under each of `moments`, from those at or under each bound (rows x bounds):
    linear in log latency between bounds, from none a bucket's width in log under the first bound, all those of
    the last finite bound above it (+Inf's requests have no shape to read)."""
    edges = np.log(bounds)
    edges = np.concatenate([[edges[0] - (edges[1] - edges[0])], edges])
    levels = np.concatenate([np.zeros((cumulative.shape[0], 1)), cumulative], axis=1)
    where = np.log(moments)
    below = np.clip(np.searchsorted(edges, where, side="right") - 1, 0, len(edges) - 2)
    weight = np.clip((where - edges[below]) / (edges[below + 1] - edges[below]), 0.0, 1.0)
    return levels[:, below] * (1 - weight) + levels[:, below + 1] * weight


# --- the replay ----------------------------------------------------------------------------------------


def spread(starts: Sequence[float], most: int) -> list[float]:
    """At most `most` of the runs' starts, evenly over the period, in pairs of consecutive runs: the halves take
    turns being the canary, so each is the canary of as many."""
    if len(starts) <= most:
        return list(starts)
    pairs = np.unique(np.linspace(0, len(starts) // 2 - 1, max(1, most // 2)).round().astype(int))
    return [starts[2 * pair + turn] for pair in pairs.tolist() for turn in (0, 1)]


@dataclass(frozen=True)
class Injected:
    """A regression replayed on a template's runs."""

    regression: Regression
    replayed: Replayed

    @property
    def aborted(self) -> int:
        return sum(run.outcome == ABORTED for run in self.replayed.runs)

    @property
    def share(self) -> float:
        runs = len(self.replayed.runs)
        return self.aborted / runs if runs else 0.0

    @property
    def minutes_to_abort(self) -> list[float]:
        return [run.reached.minutes_after(run.start) for run in self.replayed.runs if run.outcome == ABORTED]


@dataclass(frozen=True)
class Search:
    """The smallest size of a kind whose step runs abort at least CAUGHT_AT_LEAST: `caught`, or None on the
    whole grid; `tried` holds every size replayed, ascending."""

    kind: Kind
    caught: Regression | None
    tried: tuple[Injected, ...]


@dataclass(frozen=True)
class Power:
    injected: tuple[Injected, ...]  # each of NAMED on each template
    searched: tuple[Search, ...]
    most_runs: int
    rps: dict[str, float]  # each half's requests a second over the period
    seconds: float


class Replaying:
    """Regressions replayed on a calibration's halves, each (regression, template) once."""

    def __init__(
        self,
        minutes: HalfMinutes,
        request: AnalysisRequest,
        first: float,
        last: float,
        on_run: Callable[[], None] | None,
    ) -> None:
        self.minutes, self.request, self.first, self.last, self.on_run = minutes, request, first, last, on_run
        self.done: dict[tuple[Regression, str], Injected] = {}

    def starts(self, template: Template) -> list[float]:
        return spread(all_run_starts(self.first + window_seconds(self.request), self.last, template), MOST_RUNS)

    def known(self, regression: Regression, template: Template) -> Injected | None:
        return self.done.get((regression, template.name))

    def __call__(self, regression: Regression, template: Template) -> Injected:
        if (found := self.known(regression, template)) is not None:
            return found
        regressed = self.minutes.changed(lambda half, counts: regression.applied(counts, HALVES.index(half)))
        starts = self.starts(template)
        replayed = replay(
            self.minutes, self.request, template, self.first, self.last, self.on_run, regressed=regressed, starts=starts
        )
        self.done[(regression, template.name)] = found = Injected(regression, replayed)
        return found


def smallest_caught(kind: Kind, step: Template, replaying: Replaying) -> Search:
    """Bisection on the kind's grid, from what is known already: the smallest size caught lies above every size
    not caught and at or below every size caught."""
    grid = GRIDS[kind]
    known = {at: replaying.known(Regression(kind, size), step) for at, size in enumerate(grid)}
    low = max((at for at, found in known.items() if found and found.share < CAUGHT_AT_LEAST), default=-1)
    high = min((at for at, found in known.items() if found and found.share >= CAUGHT_AT_LEAST), default=len(grid))
    while high - low > 1:
        middle = (low + high) // 2
        if replaying(Regression(kind, grid[middle]), step).share >= CAUGHT_AT_LEAST:
            high = middle
        else:
            low = middle
    tried = [found for size in grid if (found := replaying.known(Regression(kind, size), step)) is not None]
    return Search(kind, Regression(kind, grid[high]) if high < len(grid) else None, tuple(tried))


def searches(kinds: int = len(GRIDS)) -> int:
    """The most replays a search takes beyond NAMED's: a bisection of the widest grid."""
    return kinds * math.ceil(math.log2(max(len(grid) for grid in GRIDS.values()) + 1))


def runs_planned(calibration: Calibration, templates: Sequence[Template]) -> int:
    """At most: NAMED on every template, and the searches on the step template."""
    first, last = calibration.period
    request = calibration.request.analysis_request()
    starts = {
        t.name: len(spread(all_run_starts(first + window_seconds(request), last, t), MOST_RUNS)) for t in templates
    }
    step = starts.get("step", 0)
    return len(NAMED) * sum(starts.values()) + searches() * step


def power(
    calibration: Calibration,
    on_run: Callable[[], None] | None = None,
    on_planned: Callable[[int], None] | None = None,
) -> Power:
    """NAMED replayed on each of the calibration's templates, and the smallest effect of each kind caught in a
    step analysis. `on_planned(runs)` once (the most there may be), `on_run()` after each."""
    templates = [replayed.template for replayed in calibration.replayed]
    if on_planned is not None:
        on_planned(runs_planned(calibration, templates))
    started = time.perf_counter()
    minutes = calibration.minutes
    first, last = calibration.period
    replaying = Replaying(minutes, calibration.request.analysis_request(), first, last, on_run)
    injected = tuple(replaying(regression, template) for regression in NAMED for template in templates)
    step = next((template for template in templates if template.name == "step"), None)
    searched = tuple(smallest_caught(kind, step, replaying) for kind in Kind) if step is not None else ()
    seconds = (last - first) or MINUTE
    rps = {half: float((counts.ok + counts.errors).sum()) / seconds for half, counts in minutes.halves.items()}
    return Power(injected, searched, MOST_RUNS, rps, time.perf_counter() - started)
