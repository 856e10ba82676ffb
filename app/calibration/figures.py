"""calibrate's figures: every number the A/A replay found, as `--json` prints it and the terminal reads it, and
whether they are within the analyzer's promise (a healthy canary aborted by at most `alpha` of runs, paused by
at most PAUSED_AT_MOST); and power's, the regressions injected and replayed (never part of the promise)."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime

import numpy as np
from pydantic import BaseModel, Field

from app import promql
from app.calibration.aa import Calibration, Comparison, Replayed, ValueCompared, relative_checks, total
from app.calibration.argo import ABORTED, OUTCOMES, PAUSED, PROMOTED
from app.calibration.buckets import BucketsOut, buckets_out
from app.calibration.power import (
    BENCHMARKED,
    CAUGHT_AT_LEAST,
    GRIDS,
    MODELS,
    SOURCE_OF_KIND,
    Injected,
    Kind,
    Power,
    Regression,
    Search,
)
from app.calibration.split import HALVES, shown
from app.canary_lives import MINUTE
from app.judge import statistics
from app.judge.checks import Method
from app.judge.units import Unit, format_difference, format_value
from app.models import AnalysisRequest

PAUSED_AT_MOST = 0.05  # of healthy canaries' step runs: what a person is asked to look at needlessly
INTERVAL_CONFIDENCE = 0.95  # of the interval shown around a share of runs
MINUTES_AN_HOUR = 60


class Counted(BaseModel):
    """How many runs of how many, the share and its two-sided interval."""

    count: int
    runs: int
    share: float | None = Field(description="count / runs; null without runs.")
    low: float | None = Field(description=f"Clopper-Pearson, {INTERVAL_CONFIDENCE:.0%} two-sided.")
    high: float | None


class Share(Counted):
    """How many runs of how many, the share, its two-sided interval, and the most the promise allows."""

    at_most: float = Field(description="What the analyzer promises for healthy canaries.")
    within: bool = Field(description="share <= at_most.")


class RunOut(BaseModel):
    start: datetime
    canary: str = Field(description="The half judged as the canary.")
    outcome: str = Field(description="aborted, paused or promoted (a background run stopped with its rollout).")
    answers: int
    minutes: float = Field(description="From the run's start to the answer Argo ended it at.")
    failed: list[str] = Field(description="The checks the last answer failed.")
    undecided: list[str] = Field(description="The checks the last answer left inconclusive.")


class RunAt(BaseModel):
    start: datetime
    outcome: str


class TemplateOut(BaseModel):
    template: str
    argo: str = Field(description="How Argo measures, as the template says.")
    measurements: int = Field(description="A run's answers when no limit ends it first.")
    every: str = Field(description="Between two runs' starts: runs do not overlap.")
    runs: int
    aborted: Share
    paused: Share
    promoted: int
    by_canary: dict[str, dict[str, int]] = Field(description="Runs by the half that was the canary, by outcome.")
    failed_checks: dict[str, int] = Field(description="Aborted runs by the checks their last answer failed.")
    undecided_checks: dict[str, int] = Field(description="Paused runs by the checks their last answer left open.")
    not_promoted: list[RunOut] = Field(description="Every aborted or paused run.")
    over_time: list[RunAt] = Field(description="Every run's start and outcome, in time order.")


class ComparisonOut(BaseModel):
    """A relative check, one side against the other, with its statistics over the whole period."""

    check: str
    tolerance: float
    unit: str = Field(description="factor (latency, x the other's) or ratio (error rate, a difference of shares).")
    estimate: float | None
    low: float | None = Field(description="The fail side's one-sided bound, at 1 - alpha.")
    high: float | None = Field(description="The pass side's one-sided bound, at pass_confidence.")
    alpha: float
    side: float | None = Field(description="The check's number for the side judged: its P95 (s) or error rate.")
    other: float | None = Field(description="The same for what it is judged against.")
    beyond: bool = Field(description="Failed at the tolerance: a canary like it is failed by the check.")
    differs: bool = Field(description="Failed at no difference at all: more than noise, whatever the tolerance.")
    shown: str


class HalfOut(BaseModel):
    half: str
    values: list[str]
    requests: float
    share: float
    against_the_other: list[ComparisonOut]


class ValueOut(BaseModel):
    value: str
    half: str
    requests: float
    share: float = Field(description="Of the stable's requests over the period.")
    minutes: int = Field(description="Minutes counted.")
    left_out: int = Field(description="Minutes with series not counted: a counter fell, the pod came or went.")
    differs: bool
    beyond: bool
    against_the_rest: list[ComparisonOut]
    consequences: list[str] = Field(description="What the relative checks do with it.")


class HourOut(BaseModel):
    """One hour of the period, each half as the relative checks read it: where a daily cycle shows."""

    start: datetime
    requests: dict[str, float] = Field(description="By half.")
    values: dict[str, dict[str, float | None]] = Field(
        description="By relative check, then by half: its number over the hour (a P95 in seconds, an error rate)."
    )


class CostOut(BaseModel):
    queries: int
    refused: int = Field(description="Queries refused as too large, asked again in halves (counted in queries).")
    samples: int
    read_seconds: float
    concurrency: int = Field(description="Queries in flight at most.")
    runs: int
    answers: int
    replay_seconds: float


class CalibrationOut(BaseModel):
    service: str
    namespace: str | None
    stable: str
    preset: str
    label: str = Field(description="The label that splits the stable's pods in halves.")
    period: str
    since: datetime
    until: datetime
    alpha: float
    paused_at_most: float
    within_promise: bool
    reasons: list[str]
    halves: list[HalfOut]
    templates: list[TemplateOut]
    values: list[ValueOut]
    hours: list[HourOut]
    units: dict[str, Unit] = Field(description="Each relative check's unit, in which `hours` gives its numbers.")
    cost: CostOut
    buckets: BucketsOut = Field(description="The latency SLOs against the histogram's bucket bounds.")
    power: PowerOut | None = Field(None, description="Known regressions injected into the canary half and replayed.")


def figures(calibration: Calibration, power: Power | None = None) -> CalibrationOut:
    history, request = calibration.history, calibration.request
    analysis = request.analysis_request()
    templates = [_template(replayed, analysis.alpha) for replayed in calibration.replayed]
    total = float(history.requests.sum())
    requests = {
        half: float(sum(history.requests[history.values.index(v)] for v in calibration.halves.members(half)))
        for half in HALVES
    }
    halves = [
        HalfOut(
            half=half,
            values=list(calibration.halves.members(half)),
            requests=requests[half],
            share=requests[half] / total if total else 0.0,
            against_the_other=[
                _comparison(c, f"half {half}", f"half {_other(half)}") for c in calibration.compared[half]
            ],
        )
        for half in HALVES
    ]
    values = [_value(value, calibration) for value in calibration.values]
    within = all(t.aborted.within and t.paused.within for t in templates)
    spent = history.spent
    powered = _power(power, analysis) if power is not None else None
    return CalibrationOut(
        service=request.service,
        namespace=request.namespace,
        stable=request.stable,
        preset=calibration.preset,
        label=history.label,
        period=request.period,
        since=_moment(calibration.period[0]),
        until=_moment(calibration.period[1]),
        alpha=analysis.alpha,
        paused_at_most=PAUSED_AT_MOST,
        within_promise=within,
        reasons=_reasons(within, templates, halves, values) + (powered.reasons if powered else []),
        halves=halves,
        templates=templates,
        values=values,
        hours=_hours(calibration),
        units={check.name: check.unit for check in relative_checks(analysis)},
        cost=CostOut(
            queries=spent.queries,
            refused=spent.refused,
            samples=spent.samples,
            read_seconds=round(spent.seconds, 3),
            concurrency=spent.concurrency,
            runs=sum(len(r.runs) for r in calibration.replayed),
            answers=sum(len(run.answers) for r in calibration.replayed for run in r.runs),
            replay_seconds=round(calibration.replay_seconds, 3),
        ),
        buckets=buckets_out(calibration),
        power=powered,
    )


def _other(half: str) -> str:
    return HALVES[1 - HALVES.index(half)]


def _moment(unix: float) -> datetime:
    return datetime.fromtimestamp(unix, UTC)


def _share(count: int, runs: int, at_most: float) -> Share:
    if not runs:
        return Share(count=0, runs=0, share=None, low=None, high=None, at_most=at_most, within=True)
    tail = (1 + INTERVAL_CONFIDENCE) / 2
    low = statistics.share_lower_bound(count, runs, tail)
    high = statistics.share_upper_bound(count, runs, tail)
    share = count / runs
    return Share(count=count, runs=runs, share=share, low=low, high=high, at_most=at_most, within=share <= at_most)


def _template(replayed: Replayed, alpha: float) -> TemplateOut:
    runs, template = replayed.runs, replayed.template
    outcomes = Counter(run.outcome for run in runs)
    by_canary = {half: dict.fromkeys(OUTCOMES, 0) for half in HALVES}
    for run, half in zip(runs, replayed.canaries, strict=True):
        by_canary[half][run.outcome] += 1
    failed = Counter(name for run in runs if run.outcome == ABORTED for name in run.answers[-1].failed)
    undecided = Counter(name for run in runs if run.outcome == PAUSED for name in run.answers[-1].undecided)
    not_promoted = [
        RunOut(
            start=_moment(run.start),
            canary=half,
            outcome=run.outcome,
            answers=len(run.answers),
            minutes=run.reached.minutes_after(run.start),
            failed=list(run.answers[-1].failed),
            undecided=list(run.answers[-1].undecided),
        )
        for run, half in zip(runs, replayed.canaries, strict=True)
        if run.outcome != PROMOTED
    ]
    return TemplateOut(
        template=template.name,
        argo=template.policy.describe(),
        measurements=template.measurements,
        every=promql.duration_text(template.spacing),
        runs=len(runs),
        aborted=_share(outcomes[ABORTED], len(runs), alpha),
        paused=_share(outcomes[PAUSED], len(runs), PAUSED_AT_MOST),
        promoted=outcomes[PROMOTED],
        by_canary=by_canary,
        failed_checks=dict(failed.most_common()),
        undecided_checks=dict(undecided.most_common()),
        not_promoted=not_promoted,
        over_time=[RunAt(start=_moment(run.start), outcome=run.outcome) for run in runs],
    )


def _hours(calibration: Calibration) -> list[HourOut]:
    """Each whole or partial hour of the history (from its first minute), both halves summed over it."""
    history = calibration.history
    checks = relative_checks(calibration.request.analysis_request())
    hour_of_minute = np.arange(len(history.ends)) // MINUTES_AN_HOUR
    hours = []
    for hour in range(int(hour_of_minute[-1]) + 1 if len(hour_of_minute) else 0):
        rows = np.flatnonzero(hour_of_minute == hour)
        parts = {half: counts.rows(rows) for half, counts in calibration.minutes.halves.items()}
        observed = {half: total(part) for half, part in parts.items()}
        hours.append(
            HourOut(
                start=_moment(float(history.ends[rows[0]]) - MINUTE),
                requests={half: float(part.ok.sum() + part.errors.sum()) for half, part in parts.items()},
                values={c.name: {half: _finite(c.value(seen)) for half, seen in observed.items()} for c in checks},
            )
        )
    return hours


def _comparison(comparison: Comparison, side: str, other: str) -> ComparisonOut:
    return ComparisonOut(
        check=comparison.check.name,
        tolerance=comparison.tolerance,
        unit=comparison.unit.value,
        estimate=_finite(comparison.estimate),
        low=_finite(comparison.low),
        high=_finite(comparison.high),
        alpha=comparison.alpha,
        side=_finite(comparison.side),
        other=_finite(comparison.rest),
        beyond=comparison.beyond,
        differs=comparison.differs,
        shown=shown_comparison(comparison, side, other),
    )


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def shown_comparison(comparison: Comparison, side: str, other: str) -> str:
    """In words: "half B's latency is 1.03x half A's (at least 1.03x), within the tolerated 1.1x"."""
    check, estimate, low = comparison.check, comparison.estimate, comparison.low
    if estimate is None or low is None:
        return f"{check.title}: not compared (no data)"
    tolerated = _limit(comparison, comparison.tolerance)
    where = "beyond" if comparison.beyond else "within"
    numbers = (
        format_value(comparison.side, comparison.check.unit),
        format_value(comparison.rest, comparison.check.unit),
    )
    if comparison.check.method is Method.RANK_SHIFT:
        head = (
            f"{side}'s latency is {_factor(estimate)} {other}'s (at least {_factor(low)}; "
            f"{check.title} {numbers[0]} against {numbers[1]})"
        )
    else:
        head = (
            f"{side}'s {check.title} {numbers[0]} against {other}'s {numbers[1]}: "
            f"{format_difference(estimate, Unit.RATIO)} (at least {format_difference(low, Unit.RATIO)})"
        )
    noise = "" if comparison.differs or comparison.beyond else ", no more than noise"
    return f"{head}, {where} the tolerated {tolerated}{noise}"


def _factor(value: float) -> str:
    return f"{value:.2f}x"


def _limit(comparison: Comparison, limit: float) -> str:
    return _factor(limit) if comparison.unit is Unit.FACTOR else format_difference(limit, Unit.RATIO)


def _value(value: ValueCompared, calibration: Calibration) -> ValueOut:
    comparisons = [_comparison(c, shown(value.value), "the rest") for c in value.comparisons]
    return ValueOut(
        value=value.value,
        half=value.half,
        requests=value.requests,
        share=value.share,
        minutes=value.minutes,
        left_out=value.left_out,
        differs=value.differs,
        beyond=value.beyond,
        against_the_rest=comparisons,
        consequences=_consequences(value, calibration) if value.differs else [],
    )


def _consequences(value: ValueCompared, calibration: Calibration) -> list[str]:
    """What each relative check does with a value that differs from the rest: with a canary served like it, and
    with its half as the A/A's canary."""
    said = []
    halves = {c.check.name: c for c in calibration.compared[value.half]}
    as_canary = sum(
        1
        for replayed in calibration.replayed
        for run, half in zip(replayed.runs, replayed.canaries, strict=True)
        if half == value.half and run.outcome == ABORTED
    )
    runs = sum(half == value.half for replayed in calibration.replayed for half in replayed.canaries)
    for comparison in value.comparisons:
        if not comparison.differs:
            continue
        check, tolerated = comparison.check.name, _limit(comparison, comparison.tolerance)
        half = halves.get(check)
        if comparison.beyond:
            said.append(
                f"{check} fails a canary whose pods serve like {shown(value.value)} (beyond the tolerated {tolerated})"
            )
        else:
            said.append(
                f"{check} passes a canary whose pods serve like {shown(value.value)}: within the tolerated {tolerated}"
            )
        if half is not None and half.estimate is not None:
            diluted = "beyond" if half.beyond else "within"
            said.append(
                f"in the A/A its half {value.half} is {_estimate(half)} against the other, {diluted} the tolerance: "
                f"aborted in {as_canary} of the {runs} runs it was the canary"
            )
    return said


def _estimate(comparison: Comparison) -> str:
    assert comparison.estimate is not None
    if comparison.unit is Unit.FACTOR:
        return _factor(comparison.estimate)
    return format_difference(comparison.estimate, Unit.RATIO)


def _reasons(within: bool, templates: list[TemplateOut], halves: list[HalfOut], values: list[ValueOut]) -> list[str]:
    """The first says whether the figures are within the promise; then where the halves differ, and who."""
    runs = "; ".join(_runs_text(t) for t in templates)
    reasons = [f"{'within' if within else 'beyond'} the analyzer's promise: {runs}"]
    differing = [c for half in halves for c in half.against_the_other if c.differs or c.beyond]
    if differing:
        reasons += [f"the halves differ: {c.shown}" for c in differing]
    else:
        reasons.append("the halves do not differ beyond noise")
    for value in values:
        if value.differs:
            worse = [c.shown for c in value.against_the_rest if c.differs]
            reasons.append(f"{'; '.join(worse)} ({value.share:.1%} of the requests, in half {value.half})")
    return reasons


def _runs_text(template: TemplateOut) -> str:
    def part(share: Share, what: str) -> str:
        figure = f"{share.count} {what} ({format_value(share.share, Unit.RATIO)}, at most {share.at_most:.0%})"
        return figure if share.share is not None else f"0 {what}"

    aborted, paused = part(template.aborted, "aborted"), part(template.paused, "paused")
    return f"{template.template}: {template.runs} runs, {aborted}, {paused}"


# --- power on real traffic --------------------------------------------------------------------------------


class CaughtOut(Counted):
    """How many runs of how many aborted, the share and its two-sided interval."""

    caught: bool = Field(description=f"share >= {CAUGHT_AT_LEAST:.0%}: the analysis catches the regression.")


class InjectedOut(BaseModel):
    regression: str
    kind: str
    size: float = Field(description="Points of 5xx as a share (0.03: +3 points), or the latency factor.")
    template: str
    aborted: CaughtOut
    paused: int
    median_minutes: float | None = Field(description="From an aborted run's start to its abort; null without one.")
    p90_minutes: float | None
    failed_checks: dict[str, int] = Field(description="Aborted runs by the checks their last answer failed.")


class SmallestOut(BaseModel):
    kind: str
    caught: str | None = Field(
        description=f"The smallest on the grid aborted in >= {CAUGHT_AT_LEAST:.0%} of step runs."
    )
    size: float | None
    tolerance: float | None = Field(description="The relative check's: what a canary may differ by and pass.")
    grid: list[float] = Field(description="The sizes searched.")
    tried: list[InjectedOut] = Field(description="The sizes replayed on the step template, ascending.")


class PowerOut(BaseModel):
    at_least: float = Field(description="The share of step runs aborted that counts a regression as caught.")
    most_runs: int = Field(description="Runs of a template replayed per regression, spread over the period.")
    rps: dict[str, float] = Field(description="Each half's requests a second over the period: the canary's rates.")
    models: dict[str, str] = Field(description="How each kind of regression is injected.")
    injected: list[InjectedOut]
    smallest: list[SmallestOut]
    runs: int
    answers: int
    seconds: float
    reasons: list[str] = Field(description="What the figures say; power never changes the exit code.")


def _caught(count: int, runs: int) -> CaughtOut:
    share = _share(count, runs, 1.0)  # its interval; the promise's at_most means nothing here
    caught = share.share is not None and share.share >= CAUGHT_AT_LEAST
    return CaughtOut(count=count, runs=runs, share=share.share, low=share.low, high=share.high, caught=caught)


def _injected(injected: Injected) -> InjectedOut:
    runs = injected.replayed.runs
    minutes = injected.minutes_to_abort
    failed = Counter(name for run in runs if run.outcome == ABORTED for name in run.answers[-1].failed)
    return InjectedOut(
        regression=injected.regression.name,
        kind=injected.regression.kind.value,
        size=injected.regression.size,
        template=injected.replayed.template.name,
        aborted=_caught(injected.aborted, len(runs)),
        paused=sum(run.outcome == PAUSED for run in runs),
        median_minutes=float(np.median(minutes)) if minutes else None,
        p90_minutes=float(np.percentile(minutes, 90)) if minutes else None,
        failed_checks=dict(failed.most_common()),
    )


def _smallest(search: Search, analysis: AnalysisRequest) -> SmallestOut:
    limits = analysis.limits()
    tolerance = next(
        (limits[c.name] for c in relative_checks(analysis) if c.source == SOURCE_OF_KIND[search.kind]), None
    )
    return SmallestOut(
        kind=search.kind.value,
        caught=search.caught.name if search.caught else None,
        size=search.caught.size if search.caught else None,
        tolerance=tolerance,
        grid=list(GRIDS[search.kind]),
        tried=[_injected(injected) for injected in search.tried],
    )


def _power(power: Power, analysis: AnalysisRequest) -> PowerOut:
    injected = [_injected(found) for found in power.injected]
    smallest = [_smallest(search, analysis) for search in power.searched]
    replays = [*power.injected, *(found for search in power.searched for found in search.tried)]
    # A named regression on the step template is among a search's tries too: counted once.
    unique = {(found.regression, found.replayed.template.name): found for found in replays}
    runs = [run for found in unique.values() for run in found.replayed.runs]
    return PowerOut(
        at_least=CAUGHT_AT_LEAST,
        most_runs=power.most_runs,
        rps={half: round(rps, 3) for half, rps in power.rps.items()},
        models={kind.value: model for kind, model in MODELS.items()},
        injected=injected,
        smallest=smallest,
        runs=len(runs),
        answers=sum(len(run.answers) for run in runs),
        seconds=round(power.seconds, 3),
        reasons=_power_reasons(injected, smallest),
    )


def _power_reasons(injected: list[InjectedOut], smallest: list[SmallestOut]) -> list[str]:
    """What a step analysis catches at the service's own rates; and whether it misses what the benchmarks name."""
    named = [
        f"{found.regression} in {format_value(found.aborted.share, Unit.RATIO)}"
        + (f" (median {found.median_minutes:g} min)" if found.median_minutes is not None else "")
        for found in injected
        if found.template == "step" and found.size == BENCHMARKED[Kind(found.kind)]
    ]
    reasons = [f"power (not in the exit code): step runs abort {', '.join(named)}"] if named else []
    for search in smallest:
        tolerated = _tolerance(search)
        if search.caught is None:
            reasons.append(
                f"power: no {search.kind} regression up to {_size_name(search.kind, search.grid[-1])} is caught in "
                f"{CAUGHT_AT_LEAST:.0%} of step runs at this traffic (tolerated {tolerated})"
            )
            continue
        reasons.append(
            f"power: a step analysis catches {search.caught} and more in at least {CAUGHT_AT_LEAST:.0%} of runs "
            f"(tolerated {tolerated})"
        )
        benchmarked = BENCHMARKED[Kind(search.kind)]
        if search.size is not None and search.size > benchmarked:
            reasons.append(
                f"power: worse than the benchmarks' {_size_name(search.kind, benchmarked)}, caught in fewer than "
                f"{CAUGHT_AT_LEAST:.0%} of step runs on this traffic"
            )
    return reasons


def _tolerance(search: SmallestOut) -> str:
    if search.tolerance is None:
        return "n/a"
    return _factor(search.tolerance) if search.kind == Kind.LATENCY else format_difference(search.tolerance, Unit.RATIO)


def _size_name(kind: str, size: float) -> str:
    return Regression(Kind(kind), size).name
