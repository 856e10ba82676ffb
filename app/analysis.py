"""One analysis: find what data to judge, measure both versions (one query for every family), judge."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from app import promql
from app.canary_lives import CanaryStarts, Known
from app.judge.checks import Check, Mode
from app.judge.judgment import Guarantee, Judgment, judge
from app.measurement import Measurement, Plan, Role, canary_start, measure
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


def versions(request: AnalysisRequest) -> dict[Role, str]:
    return {Role.CANARY: request.canary, Role.STABLE: request.stable}


def plan_for(request: AnalysisRequest, preset: Preset, span: str) -> Plan:
    return Plan.build(request.checks, preset, request.service, versions(request), span, request.namespace)


def expressions_for(request: AnalysisRequest, preset: Preset, span: str) -> dict[str, dict[Role, str]]:
    def expression(check: Check, version: str) -> str:
        return promql.expression(check, preset, request.service, version, span, request.namespace)

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
    starts: CanaryStarts | None = None,
) -> Analysis:
    """Raises PrometheusError when anything could not be measured: no verdict without data.
    `starts`: canaries' starts found before, to look back only as far as the last analysis."""
    evaluated_at = evaluated_at or request.at or datetime.now(UTC)
    started = time.perf_counter()
    measured = Measuring(request, preset, client, evaluated_at, started + budget_seconds)
    span, plan, measurement = await measured.run(starts)
    prometheus_seconds = time.perf_counter() - started
    judgment = judge(
        request.checks,
        request.limits(),
        measurement.observed[Role.CANARY],
        measurement.observed[Role.STABLE],
        span.duration,
        request.mode,
        request.confidence(),
    )
    return Analysis(
        request,
        plan,
        measurement,
        judgment,
        expressions_for(request, preset, span.duration),
        evaluated_at,
        prometheus_seconds,
        span,
    )


@dataclass(frozen=True)
class Measuring:
    """What to judge, and measuring it. An anytime guarantee needs data that only grow: everything
    since the canary's series began (its counters start at zero then), and the stable's over the
    same span; never less than the window. Otherwise the window."""

    request: AnalysisRequest
    preset: Preset
    client: PrometheusClient
    evaluated_at: datetime
    deadline: float  # time.perf_counter() by which every answer must be in

    async def run(self, starts: CanaryStarts | None) -> tuple[Span, Plan, Measurement]:
        request = self.request
        if request.mode is not Mode.STATISTICAL or request.guarantee is not Guarantee.ANYTIME:
            window = promql.duration_seconds(request.window)
            return await self.measured(Span(Data.WINDOW, self.evaluated_at - timedelta(seconds=window), window))
        canary = self.start_query(START_LOOKBACK_SECONDS)
        known = starts.recall(canary, self.at, START_LOOKBACK_SECONDS) if starts else None
        if known is None:
            recent = self.start_query(START_FIRST_LOOKBACK_SECONDS)
            start = await canary_start(recent, self.client, self.at, self.left())
            if start is None:  # there through the last hour: look over the day
                start = await canary_start(canary, self.client, self.at, self.left())
            found = await self.measured(self.since(start))
        else:
            # The start found last time, checked over the minutes since in the same query as the families
            # measured from it: one round trip unless the canary's series went away and came back in between.
            recent = self.start_query(self.at - known.checked_at + START_RESOLUTION_SECONDS)
            found = await self.measured(self.since(known.start), start_check=recent)
            restarted = found[2].canary_start
            start = known.start if restarted is None else restarted
            if start != known.start:
                found = await self.measured(self.since(start))
        if starts is not None:
            starts.remember(canary, Known(start, self.at))
        return found

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

    async def measured(self, span: Span, start_check: str | None = None) -> tuple[Span, Plan, Measurement]:
        plan = replace(plan_for(self.request, self.preset, span.duration), start_check=start_check)
        return span, plan, await measure(plan, self.client, self.at, self.left())
