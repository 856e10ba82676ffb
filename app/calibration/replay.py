"""Replaying analyses: what the server hands the judge at a moment, built from counts known some other way,
and a run of them on Argo's schedule.

The server reads Prometheus (app/analysis.py); a replay knows both versions' counts already (synthetic
counters in the benchmarks, a service's history read minute by minute in `calibrate`). Either way the judge
is handed what the server hands it under the `anytime` guarantee: both versions over everything since the
canary started (never less than the window), the recent minutes as a timeline beside them (the last
SPAN_MINUTES settled minutes and the tail since the last), and each version's traffic of the last window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from app import promql
from app.analysis import START_LOOKBACK_SECONDS, settled_minute
from app.calibration.argo import (
    OUTCOME_OF_PHASE,
    Measurement,
    PhaseReached,
    Policy,
    measurement_of,
    next_poll,
    phase_so_far,
)
from app.canary_lives import MINUTE
from app.judge.checks import Observed
from app.judge.findings import Outcome
from app.judge.judgment import Judgment, judge
from app.judge.recent import SPAN_MINUTES, Counts, Timeline, with_current
from app.measurement import Role
from app.models import AnalysisRequest


@dataclass(frozen=True)
class Observation:
    """What judge() is handed for each version, and the span it covers: (at - span, at]."""

    canary: Observed
    stable: Observed
    span_seconds: float
    timeline: Timeline | None = None  # the recent minutes, when the judge is to see them


class Served(Protocol):
    """Both versions' counts, however they are known."""

    def observed(self, role: Role, begin: float, end: float) -> Observed:
        """A version's data over (begin, end], as app/measurement.py hands them to the judge."""
        ...

    def minutes(self, role: Role, starts: Sequence[float], end: float) -> Counts:
        """A version's counts in rows (starts[i], starts[i + 1]], the last (starts[-1], end]."""
        ...


def timeline_starts(at: float) -> tuple[float, ...]:
    """Where the rows of the timeline an analysis at `at` reads start: the last SPAN_MINUTES settled minutes,
    and the tail since the last of them (app/analysis.py, RecentMinutes)."""
    settled = settled_minute(at)
    return (*(settled - MINUTE * i for i in reversed(range(1, SPAN_MINUTES + 1))), settled)


def since_start(
    served: Served,
    at: float,
    canary_start: float | None,
    window_seconds: float,
    look_back_seconds: float = START_LOOKBACK_SECONDS,
) -> Observation:
    """What the server judges at `at` under `anytime`: both versions over everything since the canary started
    (its last `look_back_seconds` when the start is not known), never less than the window; the recent minutes
    beside them, and each version's requests of the last window (Source.CURRENT)."""
    since = at - canary_start if canary_start is not None else look_back_seconds
    span = max(window_seconds, since)
    starts = timeline_starts(at)
    canary, stable = (served.observed(role, at - span, at) for role in (Role.CANARY, Role.STABLE))
    timeline = Timeline(
        canary_start, starts, at, served.minutes(Role.CANARY, starts, at), served.minutes(Role.STABLE, starts, at)
    )
    canary, stable = with_current(canary, stable, timeline, window_seconds)
    return Observation(canary, stable, span, timeline)


def judged_as_the_server_does(request: AnalysisRequest, observation: Observation) -> Judgment:
    """The one call into the judge, made as app/analysis.py makes it."""
    return judge(
        request.checks,
        request.limits(),
        observation.canary,
        observation.stable,
        promql.duration_text(observation.span_seconds),
        request.mode,
        request.confidence(),
        observation.timeline,
    )


# --- a run ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One answer of a replayed run: its verdict, and the checks that failed or did not decide."""

    verdict: str
    failed: tuple[str, ...] = ()
    undecided: tuple[str, ...] = ()

    @classmethod
    def of(cls, judgment: Judgment) -> Answer:
        def named(outcome: Outcome) -> tuple[str, ...]:
            return tuple(result.check.name for result in judgment.checks if result.outcome is outcome)

        return cls(judgment.verdict.value, named(Outcome.FAIL), named(Outcome.INCONCLUSIVE))


@dataclass(frozen=True)
class Run:
    """A replayed run: when it started, Argo's measurements and the answers behind them, where Argo ended it."""

    start: float
    measurements: tuple[Measurement, ...]
    answers: tuple[Answer, ...]
    reached: PhaseReached

    @property
    def outcome(self) -> str:
        """What the run does to the rollout: aborted, paused or promoted (a stopped background run: promoted)."""
        return OUTCOME_OF_PHASE[self.reached.phase]


def replay_run(
    policy: Policy, start: float, answer_at: Callable[[float], Answer], measurements_until_stop: int | None = None
) -> Run:
    """A run that starts at `start`, measured on the template's schedule until Argo would end it: at its count,
    at a limit that trips, or, without a count, when the rollout stops it after `measurements_until_stop`."""
    measurements: list[Measurement] = []
    answers: list[Answer] = []
    at = start + policy.initial_delay
    while (reached := phase_so_far(measurements, policy, measurements_until_stop)) is None:
        answer = answer_at(at)
        answers.append(answer)
        measurements.append(measurement_of(at, answer.verdict, policy, answer.failed))
        at = next_poll(measurements[-1], policy)
    return Run(start, tuple(measurements), tuple(answers), reached)
