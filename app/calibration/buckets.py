"""Where a latency SLO lies against the histogram's bucket bounds, how often its check could decide on the
A/A's answers, and the bound that would count it exactly, as a line to paste into a client library.

An SLO on a bound is counted: the requests slower than it are the count above that bound. Between two bounds,
the judge bounds that count by a model of the shape inside the SLO's bucket (app/judge/shapes.py), and an
answer whose canary sits near the SLO may be left open by the width of the bucket alone; beyond the last finite
bound, only the +Inf bucket is known, so the check can pass and never fail.

What a bound at the SLO would change is estimated, not measured: the history holds no count at the SLO. Each
minute's requests in the SLO's bucket are split at the SLO as the judge's own model of the shape inside a
bucket (app/judge/shapes.py) splits the whole period's, and the check judged again on every answer's data.
Where that model cannot be used (too few buckets around the SLO's), the split is linear inside the bucket, as
`histogram_quantile` assumes, which on a slow tail puts too many requests over the SLO: the figures say which.
Beyond the last finite bound nothing says how requests spread, so there is no estimate.

The check's outcome is its own test on the canary's data since the run started, as the judge runs it: at the
judge's level, behind the traffic gate. Not the recent spans (they only ever fail a check) nor the rule that
excuses a canary for a breach the stable shares: neither depends on where the buckets are.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from pydantic import BaseModel, Field

from app import promql
from app.calibration.aa import AsCanary, Calibration, HalfMinutes, Replayed, window_seconds
from app.calibration.history import History
from app.canary_lives import MINUTE
from app.judge import shapes, statistical_rules, threshold_rules
from app.judge.checks import Check, Mode, Observed, Source, Statistic
from app.judge.distributions import Histogram
from app.judge.findings import Outcome
from app.judge.recent import Counts
from app.judge.units import Unit, format_value
from app.measurement import Role
from app.models import AnalysisRequest
from app.presets import SECONDS_PER

SHAPE_MODEL = (
    "estimated, each minute's requests in the SLO's bucket split at the SLO as the judge's model of the shape "
    "inside a bucket splits the whole period's ({share} of the bucket under the SLO), and the check judged again "
    "on every answer's data"
)
LINEAR_MODEL = (
    "estimated, each minute's requests in the SLO's bucket split at the SLO in proportion to the bucket's width "
    "(linear inside the bucket, as histogram_quantile assumes: the judge's model of the shape needs a bucket on "
    "each side of the SLO's) and the check judged again on every answer's data; on a slow tail that puts more "
    "requests over the SLO than there are: it leans toward fail"
)
NO_MODEL = "no estimate: nothing in the +Inf bucket says how its requests spread over the SLO"


class Place(StrEnum):
    ON = "on a bound"
    BETWEEN = "between bounds"
    BEYOND = "beyond the last finite bound"


@dataclass(frozen=True)
class Where:
    """The SLO against the finite bounds (seconds): on one, between `lower` and `upper` (lower 0 under the first
    bound), or beyond the last; `bucket` is the index, among all bounds +Inf included, of the bucket holding it."""

    place: Place
    lower: float | None
    upper: float | None
    bucket: int


def where(slo: float, bounds: Sequence[float]) -> Where:
    finite = [bound for bound in bounds if math.isfinite(bound)]
    # Bounds come from label text times a unit: 0.3 s read from "300" ms is not 0.3 to the last bit.
    on = [i for i, bound in enumerate(finite) if math.isclose(bound, slo, rel_tol=1e-9)]
    if on:
        return Where(Place.ON, finite[on[0]], finite[on[0]], on[0])
    at = int(np.searchsorted(finite, slo))
    if at == len(finite):
        return Where(Place.BEYOND, finite[-1] if finite else None, None, at)
    return Where(Place.BETWEEN, finite[at - 1] if at else 0.0, finite[at], at)


def split_at(
    bounds: Sequence[float], buckets: np.ndarray, slo: float, below: float
) -> tuple[tuple[float, ...], np.ndarray]:
    """The bounds with the SLO among them, and each row's requests per bucket (the last axis) with the SLO's
    bucket split at it: `below` of its requests under the SLO, the rest over. Only for an SLO between two finite
    bounds, or under the first (its bucket starting at 0)."""
    place = where(slo, bounds)
    if place.place is not Place.BETWEEN:
        raise ValueError(f"{slo:g} is {place.place}: no bucket of the history to split at it")
    j = place.bucket
    straddling = buckets[..., j : j + 1]
    split = np.concatenate([buckets[..., :j], straddling * below, straddling * (1 - below), buckets[..., j + 1 :]], -1)
    return (*bounds[:j], slo, *bounds[j:]), split


def below_the_slo(bounds: Sequence[float], buckets: np.ndarray, slo: float) -> tuple[float, str]:
    """The share of the SLO's bucket under the SLO, over requests counted per bucket (`buckets`, the whole
    period), and the model that says so: the judge's estimate of the shape inside the bucket, else linear."""
    place = where(slo, bounds)
    assert place.place is Place.BETWEEN and place.lower is not None and place.upper is not None
    j = place.bucket
    in_bucket, over_it = float(buckets[j]), float(buckets[j + 1 :].sum())
    found = shapes.slower_than(Histogram(tuple(bounds), tuple(np.cumsum(buckets).tolist())), slo)
    if found.model is shapes.Model.SHAPE and in_bucket > 0:
        below = float(np.clip(1 - (found.estimate - over_it) / in_bucket, 0.0, 1.0))
        return below, SHAPE_MODEL.format(share=format_value(below, Unit.RATIO))
    return (slo - place.lower) / (place.upper - place.lower), LINEAR_MODEL


# --- the check's answers ------------------------------------------------------------------------------


def slo_checks(request: AnalysisRequest) -> list[Check]:
    """The checks that hold a latency quantile to a fixed SLO, read from the history's histogram."""
    return [
        check
        for check in request.checks
        if not check.bound.relative
        and check.statistic is Statistic.QUANTILE
        and check.source == Source.LATENCY
        and check.queries is None
    ]


Judged = Callable[[Observed, Observed, float], Outcome]  # both versions' data, over how many seconds


def outcome_of(request: AnalysisRequest, check: Check) -> Judged:
    """The check's outcome on both versions' data, as the judge reaches it on the data judged as a whole: a gate
    that does not pass leaves it open; then the check's own rule, at the judge's level."""
    limits, levels = request.limits(), request.confidence().levels(request.checks)
    gates = [gate for gate in request.checks if gate.gate and gate.queries is None]

    def judged(canary: Observed, stable: Observed, seconds: float) -> Outcome:
        span = promql.duration_text(seconds)  # the rules' reasons name it, and read a rate off it
        for gate in gates:
            if threshold_rules.classify(gate, limits[gate.name], canary, stable, span).outcome is not Outcome.PASS:
                return Outcome.INCONCLUSIVE
        if request.mode is Mode.THRESHOLD:
            return threshold_rules.classify(check, limits[check.name], canary, stable, span).outcome
        return statistical_rules.classify(check, limits[check.name], canary, stable, span, levels).outcome

    return judged


@dataclass(frozen=True)
class Decided:
    """Of one template's answers, how many the check decided (passed or failed), and failed."""

    template: str
    answers: int
    decided: int
    failed: int


def decided(replayed: Replayed, halves: HalfMinutes, window: float, outcome: Judged) -> Decided:
    """The check judged again on each answer of the template's runs, on the data the judge had then: the canary
    half since the run started, the stable half over the same span, never less than the window."""
    answers = count = failed = 0
    for run, half in zip(replayed.runs, replayed.canaries, strict=True):
        served = AsCanary(halves, half, run.start)
        for measurement in run.measurements:
            at = measurement.at
            span = max(window, at - run.start)
            canary, stable = (served.observed(role, at - span, at) for role in (Role.CANARY, Role.STABLE))
            found = outcome(canary, stable, span)
            answers += 1
            count += found in (Outcome.PASS, Outcome.FAIL)
            failed += found is Outcome.FAIL
    return Decided(replayed.template.name, answers, count, failed)


def quantile_in_bucket(history: History, quantile: float, window: float, bucket: int) -> tuple[int, int]:
    """Over the history cut in windows, the whole stable's: windows with requests, and those whose quantile lies
    in the bucket `bucket` (where an SLO between its bounds cannot be told from it by the bounds alone)."""
    minutes = history.buckets.sum(axis=0)
    per_window = max(1, round(window / MINUTE))
    whole = len(minutes) // per_window * per_window
    windows = minutes[:whole].reshape(-1, per_window, minutes.shape[1]).sum(axis=1)
    served = inside = 0
    for row in windows:
        found = Histogram(history.bounds, tuple(np.cumsum(row).tolist())).quantile_bucket(quantile)
        if found is None:
            continue
        served += 1
        inside += found[1] == history.bounds[bucket]
    return served, inside


# --- the lines to paste ---------------------------------------------------------------------------------


def number(value: float) -> str:
    """A bound as a person writes it: 0.3, not 0.30000000000000004 (a unit's product) nor 0.300."""
    return repr(float(f"{value:.12g}"))


def python_line(bounds: Sequence[float]) -> str:
    numbers = ", ".join(map(number, bounds))
    return f"Histogram(..., buckets=({numbers}{',' if len(bounds) == 1 else ''}))"


def go_line(bounds: Sequence[float]) -> str:
    return f"Buckets: []float64{{{', '.join(map(number, bounds))}}},"


def micrometer_line(seconds: Sequence[float]) -> str:
    """Micrometer adds a service level objective's bound to the buckets it publishes: a Duration, unit-free."""

    def duration(value: float) -> str:
        millis = round(value * 1000, 9)
        if millis == int(millis):
            return f"Duration.ofMillis({int(millis)})"
        return f"Duration.ofNanos({round(value * 1e9)})"

    return f".serviceLevelObjectives({', '.join(map(duration, seconds))})"


def lines(bounds: Sequence[float], added_seconds: Sequence[float]) -> dict[str, str]:
    """The full list of finite bounds (the client's unit), for each client library; Micrometer, the bounds added."""
    return {
        "Python prometheus_client": python_line(bounds),
        "Go client_golang": go_line(bounds),
        "Java Micrometer": micrometer_line(added_seconds),
    }


# --- the figures ------------------------------------------------------------------------------------------


class DecidedOut(BaseModel):
    template: str
    answers: int
    decided: int = Field(description="Answers whose check passed or failed, on the data the judge had then.")
    share: float | None = Field(description="decided / answers; null without answers.")
    failed: int = Field(description="Of the decided, those failed: in an A/A, a healthy half held beyond its SLO.")
    with_bound: int | None = Field(
        description="Answers it would decide with a bound at the SLO: an estimate under `model`; null when the SLO "
        "is on a bound already or beyond the last finite one."
    )
    with_bound_share: float | None
    with_bound_failed: int | None


class SloOut(BaseModel):
    """One check that holds a latency quantile to an SLO, against the history's bucket bounds."""

    check: str
    quantile: float
    slo: float = Field(description="Seconds.")
    where: str = Field(description="on a bound, between bounds, or beyond the last finite bound.")
    lower: float | None = Field(description="The bound under the SLO (seconds; 0 under the first bound).")
    upper: float | None = Field(description="The bound over it (seconds); null beyond the last finite bound.")
    answers: list[DecidedOut] = Field(description="Per template: how often the check could decide its answers.")
    windows: int = Field(description="Windows of the request's window over the history with requests.")
    in_slo_bucket: int | None = Field(
        description="Of those, the windows whose quantile of the whole stable lies in the SLO's bucket, where the "
        "bounds alone cannot tell it from the SLO; null when the SLO is on a bound."
    )
    add: float | None = Field(description="The bound to add, in the histogram's unit; null when the SLO is one.")
    model: str | None = Field(description="What the estimate with the bound assumes.")
    shown: list[str] = Field(description="In words, one line each.")


class BucketsOut(BaseModel):
    """The SLOs against the bucket bounds, and the bounds to add, as lines to paste."""

    unit: str = Field(description="The histogram's unit, as its `le` labels count: the clients' lines are in it.")
    bounds: list[float] = Field(description="The history's finite bucket bounds, in that unit.")
    at_or_under: list[float] = Field(
        description="The stable's share of requests at or under each of `bounds` over the period."
    )
    slos: list[SloOut]
    add: list[float] = Field(description="Every bound to add, in that unit; empty when each SLO is a bound.")
    lines: dict[str, str] = Field(
        description="By client library: its configuration with the bounds added (empty when none is to be added)."
    )


def buckets_out(calibration: Calibration) -> BucketsOut:
    history, analysis = calibration.history, calibration.request.analysis_request()
    per_unit = calibration.seconds_per_unit
    window = window_seconds(analysis)
    slos = [_slo(calibration, check, window) for check in slo_checks(analysis)]
    added = sorted({slo.slo for slo in slos if slo.add is not None})
    finite = [bound for bound in history.bounds if math.isfinite(bound)]
    in_unit = [_in_unit(bound, per_unit) for bound in sorted({*finite, *added})]
    counted = history.buckets.sum(axis=(0, 1))
    shares = np.cumsum(counted) / counted.sum() if counted.sum() else np.zeros(len(counted))
    return BucketsOut(
        unit=_unit_name(per_unit),
        bounds=[_in_unit(bound, per_unit) for bound in finite],
        at_or_under=[float(share) for share in shares[: len(finite)]],
        slos=slos,
        add=[_in_unit(slo, per_unit) for slo in added],
        lines=lines(in_unit, added) if added else {},
    )


def _slo(calibration: Calibration, check: Check, window: float) -> SloOut:
    history, analysis, minutes = calibration.history, calibration.request.analysis_request(), calibration.minutes
    assert check.quantile is not None
    slo = analysis.limits()[check.name]
    found = where(slo, history.bounds)
    outcome = outcome_of(analysis, check)
    now = [decided(replayed, minutes, window, outcome) for replayed in calibration.replayed]
    after: list[Decided | None] = [None] * len(now)
    model = {Place.ON: None, Place.BEYOND: NO_MODEL}.get(found.place)
    if found.place is Place.BETWEEN:
        below, model = below_the_slo(history.bounds, history.buckets.sum(axis=(0, 1)), slo)

        def with_the_bound(_: str, counts: Counts) -> Counts:
            return Counts(counts.ok, counts.errors, *split_at(counts.bounds, counts.buckets, slo, below))

        with_it = minutes.changed(with_the_bound)
        after = [decided(replayed, with_it, window, outcome) for replayed in calibration.replayed]
    windows, inside = quantile_in_bucket(history, check.quantile, window, found.bucket)
    answers = [
        DecidedOut(
            template=n.template,
            answers=n.answers,
            decided=n.decided,
            share=n.decided / n.answers if n.answers else None,
            with_bound=a.decided if a else None,
            with_bound_share=a.decided / a.answers if a and a.answers else None,
            failed=n.failed,
            with_bound_failed=a.failed if a else None,
        )
        for n, a in zip(now, after, strict=True)
    ]
    out = SloOut(
        check=check.name,
        quantile=check.quantile,
        slo=slo,
        where=found.place.value,
        lower=found.lower,
        upper=found.upper,
        answers=answers,
        windows=windows,
        in_slo_bucket=None if found.place is Place.ON else inside,
        add=None if found.place is Place.ON else _in_unit(slo, calibration.seconds_per_unit),
        model=model,
        shown=[],
    )
    return out.model_copy(update={"shown": shown(out, check, promql.duration_text(window))})


def _in_unit(seconds: float, per_unit: float) -> float:
    return float(f"{seconds / per_unit:.12g}")


def _unit_name(per_unit: float) -> str:
    return next((name for name, seconds in SECONDS_PER.items() if seconds == per_unit), f"{per_unit:g} s")


def shown(out: SloOut, check: Check, window: str) -> list[str]:
    """The SLO's place, how often the check decided, and what a bound at the SLO would change."""
    slo = _seconds(out.slo)
    said = [f"{check.name}: the SLO of {slo} is {_place(out)}"]
    for answers in out.answers:
        decided_text = (
            f"{answers.template}: the check decided {_of(answers.decided, answers.answers, 'answers')}"
            f"{_failed(answers.failed)}"
        )
        if answers.with_bound is not None:
            decided_text += (
                f"; with a bound at {slo}, about {_of(answers.with_bound, answers.answers)}"
                f"{_failed(answers.with_bound_failed or 0)}"
            )
        said.append(decided_text)
    if out.in_slo_bucket is not None and out.lower is not None:
        bucket = f"({_seconds(out.lower)}, {_seconds(out.upper) if out.upper is not None else '+Inf'}]"
        said.append(
            f"the stable's P{out.quantile * 100:g} over {window} windows lay in {bucket}, the SLO's bucket, in "
            f"{_of(out.in_slo_bucket, out.windows, 'windows')}"
        )
    if out.model is not None:
        said.append(f"with a bound at {slo}: {out.model}")
    return said


def _failed(count: int) -> str:
    return f", {count:,} of them failed" if count else ""


def _place(out: SloOut) -> str:
    if out.where == Place.ON:
        return "a bucket bound: counted exactly, nothing to add"
    if out.where == Place.BEYOND:
        return f"beyond the last finite bound, {_seconds(out.lower)}: the check can pass, never fail"
    return f"between the bounds {_seconds(out.lower)} and {_seconds(out.upper)}"


def _seconds(value: float | None) -> str:
    return format_value(value, Unit.SECONDS)


def _of(count: int, total: int, noun: str = "") -> str:
    share = f" ({format_value(count / total, Unit.RATIO)})" if total else ""
    return f"{count:,} of {total:,}{f' {noun}' if noun else ''}{share}"
