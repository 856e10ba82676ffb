"""One analysis: find what data to judge, measure both versions (one query for every family), judge."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from app import promql
from app.canary_lives import EMPTY as EMPTY_MINUTES
from app.canary_lives import MINUTE, CanaryLives, Known, Minutes, Sums
from app.judge.checks import Check, Mode, Observed, Source, Statistic
from app.judge.judgment import Guarantee, Judgment, judge
from app.judge.recent import SPAN_MINUTES, Counts, Timeline, with_current
from app.measurement import FAMILIES, Measurement, Plan, Role, canary_start, gather_within, measure, measure_range
from app.models import MAX_WINDOW_SECONDS, AnalysisRequest
from app.presets import Preset
from app.prometheus import PrometheusClient

# How far back the canary's start is looked for, and to what resolution. A first look asks over the
# last hour, where a canary under judgment mostly started, and over the day only when the canary was
# there through that hour: the same answer, for a twenty-fourth of the steps.
START_LOOKBACK_SECONDS = MAX_WINDOW_SECONDS
START_FIRST_LOOKBACK_SECONDS = 3600
START_RESOLUTION_SECONDS = 60


class Data(StrEnum):
    """What an analysis judged."""

    WINDOW = "window"  # the request's window, sliding with each answer
    SINCE_CANARY_START = "since_canary_start"  # everything since the canary's series began: only grows
    LAST_DAY = "last_day"  # a canary older than the look-back: its last day


@dataclass(frozen=True)
class Span:
    """The data an analysis judged: (since, evaluated_at], both versions alike."""

    data: Data
    since: datetime
    seconds: float

    @property
    def duration(self) -> str:
        return promql.duration_text(self.seconds)


@dataclass(frozen=True)
class Analysis:
    request: AnalysisRequest
    plan: Plan
    measurement: Measurement
    judgment: Judgment
    # Per check, per version: the PromQL that shows the check's number in Prometheus or Grafana.
    expressions: dict[str, dict[Role, str]]
    evaluated_at: datetime
    prometheus_seconds: float
    span: Span
    timeline: Timeline | None = None  # the recent minutes of both versions, under the anytime guarantee


def versions(request: AnalysisRequest) -> dict[Role, str]:
    return {Role.CANARY: request.canary, Role.STABLE: request.stable}


def plan_for(request: AnalysisRequest, preset: Preset, span: str) -> Plan:
    return Plan.build(request.checks, preset, request.service, versions(request), span, request.namespace)


def expressions_for(
    request: AnalysisRequest, preset: Preset, span: str, current_seconds: float | None = None
) -> dict[str, dict[Role, str]]:
    """`current_seconds`: what the current traffic covered, when it was read apart from the span judged."""

    def expression(check: Check, version: str) -> str:
        window = span
        if check.statistic is Statistic.CURRENT_REQUESTS:
            window = request.window if current_seconds is None else promql.duration_text(current_seconds)
        return promql.expression(check, preset, request.service, version, window, request.namespace)

    return {
        check.name: {role: expression(check, version) for role, version in versions(request).items()}
        for check in request.checks
    }


def evaluation_time(request: AnalysisRequest, resolution_seconds: float) -> datetime:
    """The request's `at`, or now rounded down to the resolution: a second is well under any scrape
    interval, and identical analyses asked within it are one analysis (app/single_flight.py)."""
    if request.at is not None:
        return request.at
    now = time.time()
    if resolution_seconds > 0:
        now = math.floor(now / resolution_seconds) * resolution_seconds
    return datetime.fromtimestamp(now, UTC)


async def run_analysis(
    request: AnalysisRequest,
    client: PrometheusClient,
    preset: Preset,
    budget_seconds: float,
    evaluated_at: datetime | None = None,
    lives: CanaryLives | None = None,
) -> Analysis:
    """Raises PrometheusError when anything could not be measured: no verdict without data.
    `lives`: what earlier analyses found of canaries' lives (starts, settled minutes), read again otherwise."""
    evaluated_at = evaluated_at or request.at or datetime.now(UTC)
    started = time.perf_counter()
    measuring = Measuring(request, preset, client, evaluated_at, started + budget_seconds)
    span, plan, measurement, timeline = await measuring.run(lives)
    prometheus_seconds = time.perf_counter() - started
    judgment = judge(
        request.checks,
        request.limits(),
        measurement.observed[Role.CANARY],
        measurement.observed[Role.STABLE],
        span.duration,
        request.mode,
        request.confidence(),
        timeline,
    )
    current = measurement.observed[Role.CANARY].get(Source.CURRENT)
    return Analysis(
        request,
        plan,
        measurement,
        judgment,
        expressions_for(request, preset, span.duration, current.seconds if current else None),
        evaluated_at,
        prometheus_seconds,
        span,
        timeline,
    )


Measured = tuple[Span, Plan, Measurement, Timeline | None]


@dataclass(frozen=True)
class Measuring:
    """What to judge, and measuring it. An anytime guarantee needs data that only grow: everything
    since the canary's series began (its counters start at zero then), and the stable's over the
    same span; never less than the window. Beside them, the recent minutes of both versions
    (RecentMinutes), asked in the same query where they are not known yet. Otherwise the window."""

    request: AnalysisRequest
    preset: Preset
    client: PrometheusClient
    evaluated_at: datetime
    deadline: float  # time.perf_counter() by which every answer must be in

    async def run(self, lives: CanaryLives | None) -> Measured:
        request = self.request
        if request.mode is not Mode.STATISTICAL or request.guarantee is not Guarantee.ANYTIME:
            window = promql.duration_seconds(request.window)
            span = Span(Data.WINDOW, self.evaluated_at - timedelta(seconds=window), window)
            plan, measurement = await self.measured(span)
            return span, plan, measurement, None
        canary = self.start_query(START_LOOKBACK_SECONDS)
        minutes = RecentMinutes.of(plan_for(request, self.preset, "1m"), self.at, lives)
        known = lives.recall(canary, self.at, START_LOOKBACK_SECONDS) if lives else None
        if known is None:
            recent = self.start_query(START_FIRST_LOOKBACK_SECONDS)
            found = await gather_within(
                self.left(),
                {
                    "start": canary_start(recent, self.client, self.at, self.left()),
                    "minutes": minutes.fetched(self.client, self.left()),
                },
            )
            start, fetched = found["start"], found["minutes"]
            if start is None:  # there through the last hour: look over the day
                start = await canary_start(canary, self.client, self.at, self.left())
            plan, measurement = await self.measured(self.since(start), between=minutes.asked())
        else:
            # The start found last time, checked over the minutes since in the same query as the families
            # measured from it: one round trip unless the canary's series went away and came back in between
            # (or more than a few of its minutes are missing: then read at the same time).
            check = self.start_query(self.at - known.checked_at + START_RESOLUTION_SECONDS)
            found = await gather_within(
                self.left(),
                {
                    "measured": self.measured(self.since(known.start), check, minutes.asked()),
                    "minutes": minutes.fetched(self.client, self.left()),
                },
            )
            (plan, measurement), fetched = found["measured"], found["minutes"]
            start = known.start if measurement.canary_start is None else measurement.canary_start
            if start != known.start:
                plan, measurement = await self.measured(self.since(start), between=minutes.asked())
        if lives is not None:
            lives.remember(canary, Known(start, self.at))
        span = self.since(start)
        timeline = minutes.timeline(measurement, fetched, start if span.data is Data.SINCE_CANARY_START else None)
        window = promql.duration_seconds(request.window)
        canary_now, stable_now = with_current(*(measurement.observed[role] for role in Role), timeline, window)
        observed = {Role.CANARY: canary_now, Role.STABLE: stable_now}
        return span, plan, replace(measurement, observed=observed), timeline

    @property
    def at(self) -> float:
        return self.evaluated_at.timestamp()

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def start_query(self, lookback_seconds: float) -> str:
        lookback = promql.duration_text(max(lookback_seconds, 2 * START_RESOLUTION_SECONDS))
        resolution = promql.duration_text(START_RESOLUTION_SECONDS)
        request = self.request
        return promql.canary_start_query(
            self.preset, request.service, request.canary, lookback, resolution, request.namespace
        )

    def since(self, start: float | None) -> Span:
        if start is None:
            since = self.evaluated_at - timedelta(seconds=START_LOOKBACK_SECONDS)
            return Span(Data.LAST_DAY, since, START_LOOKBACK_SECONDS)
        # Whole seconds, so that the span reads as a PromQL duration and starts at or before the canary.
        seconds = max(promql.duration_seconds(self.request.window), math.ceil(self.at - start))
        return Span(Data.SINCE_CANARY_START, self.evaluated_at - timedelta(seconds=seconds), seconds)

    async def measured(
        self, span: Span, start_check: str | None = None, between: dict[str, str] | None = None
    ) -> tuple[Plan, Measurement]:
        plan = replace(
            plan_for(self.request, self.preset, span.duration), start_check=start_check, between=between or {}
        )
        return plan, await measure(plan, self.client, self.at, self.left())


# A minute's counts are read once it has settled, this long after it ended: late samples (a slow scrape,
# remote write) have landed by then, so every replica, and a restarted one, reads the same.
SETTLE_SECONDS = 60.0
# Recorded increases: missing settled minutes asked inside the families' query; more are read in a range query.
INLINE_MINUTES = 2
TAIL = "tail"  # what was served since the last settled minute


def settled_minute(at: float) -> float:
    """The end of the last minute settled at `at` (a minute boundary)."""
    return math.floor((at - SETTLE_SECONDS) / MINUTE) * MINUTE


@dataclass(frozen=True)
class RecentMinutes:
    """The recent minutes of both versions for one analysis, read as the counters' sums at minute boundaries
    (promql.AT_A_MOMENT) or, from recording rules, as each minute's recorded increases: those kept from earlier
    analyses, the newest asked beside the families, more read in one range query; and the tail since the last
    settled minute, asked beside the families too."""

    base: Plan  # what reads them
    at: float
    settled: float  # the end of the last settled minute
    needed: tuple[float, ...]  # the ends of the minutes the timeline holds, ascending
    kept: Minutes
    lives: CanaryLives | None

    @classmethod
    def of(cls, base: Plan, at: float, lives: CanaryLives | None) -> RecentMinutes:
        settled = settled_minute(at)
        needed = tuple(settled - MINUTE * i for i in reversed(range(SPAN_MINUTES)))
        kept = lives.minutes(_key(base)) if lives else EMPTY_MINUTES
        return cls(base, at, settled, needed, kept, lives)

    @property
    def missing(self) -> list[float]:
        kept = set(self.kept.ends)
        return [end for end in self.needed if end not in kept]

    def _inline(self) -> list[float]:
        """The missing minutes asked beside the families: as sums, the newest alone when the sums it starts
        from are kept; as recorded increases, a few."""
        missing, sums = self.missing, self.kept.sums
        if self.base.summed:
            follows = missing == [self.settled] and sums is not None and sums.at == self.settled - MINUTE
            return missing if follows else []
        return missing if len(missing) <= INLINE_MINUTES else []

    def asked(self) -> dict[str, str]:
        """What rides in the families' query: the newest minute when it is all that is missing, and the tail."""
        inline = self._inline()
        if self.base.summed:
            return {_name(end): self.base.sums_at(end) for end in inline} | {TAIL: self.base.sums_at()}
        minutes = {_name(end): self.base.counts_between(MINUTE, end) for end in inline}
        return minutes | {TAIL: self.base.counts_between(self.at - self.settled)}

    async def fetched(self, client: PrometheusClient, budget: float) -> Minutes:
        """The missing minutes that do not ride in the families' query, read in one range query."""
        missing = self.missing
        if not missing or self._inline():
            return EMPTY_MINUTES
        return await minutes_read(self.base, client, missing[0], self.settled, budget)

    def timeline(self, measurement: Measurement, fetched: Minutes, canary_start: float | None) -> Timeline:
        asked = {name: _counts(observed) for name, observed in measurement.between.items()}
        tail = asked.pop(TAIL, _counts({}))
        if self.base.summed:
            sums = [Sums(float(name), *counts) for name, counts in asked.items()]
            newest = Minutes.between([self.kept.sums, *sums]) if sums and self.kept.sums else EMPTY_MINUTES
        else:
            newest = Minutes.of((float(name), *counts) for name, counts in asked.items())
        minutes = self.kept.merged(fetched, self.needed[0]).merged(newest, self.needed[0])
        if self.lives is not None and minutes is not self.kept:
            self.lives.keep(_key(self.base), minutes)
        if self.base.summed:
            settled = minutes.sums
            tail = Sums(self.at, *tail).less(settled) if settled and settled.at == self.settled else _counts({})
        return minutes.timeline(self.needed, canary_start, (self.at, *tail))


async def minutes_read(base: Plan, client: PrometheusClient, first: float, last: float, budget: float) -> Minutes:
    """The minutes ending at `first` to `last` (minute boundaries), in one range query."""
    start = first - MINUTE if base.summed else first  # sums: from the first minute's start
    history = await measure_range(base.minutely(), client, start, last, MINUTE, budget)
    read = dict(history.steps)
    moments = [start + MINUTE * i for i in range(round((last - start) / MINUTE) + 1)]
    # A moment with no series at all: nothing counted.
    if base.summed:
        return Minutes.between([Sums(t, *_counts(read.get(t, {}))) for t in moments])
    return Minutes.of((t, *_counts(read.get(t, {}))) for t in moments)


def _key(base: Plan) -> str:
    """Whose minutes: the query that reads one, which names the versions, the service and its scope."""
    return base.minutely().calls()[FAMILIES]


def _name(end: float) -> str:
    return str(int(end))


def _counts(observed: dict[Role, Observed]) -> tuple[Counts, Counts]:
    return Counts.of(observed.get(Role.CANARY, {})), Counts.of(observed.get(Role.STABLE, {}))
