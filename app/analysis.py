"""One analysis: find what data to judge, measure both versions (one query for every family), judge."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from app import promql
from app.judge.checks import Check, Mode
from app.judge.judgment import Guarantee, Judgment, judge
from app.measurement import Measurement, Plan, Role, canary_start, measure
from app.models import MAX_WINDOW_SECONDS, AnalysisRequest
from app.presets import Preset
from app.prometheus import PrometheusClient

# How far back the canary's start is looked for, and to what resolution.
START_LOOKBACK_SECONDS = MAX_WINDOW_SECONDS
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
    return Plan.build(request.checks, preset, request.service, versions(request), span)


def expressions_for(request: AnalysisRequest, preset: Preset, span: str) -> dict[str, dict[Role, str]]:
    def expression(check: Check, version: str) -> str:
        return promql.expression(check, preset, request.service, version, span)

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
) -> Analysis:
    """Raises PrometheusError when anything could not be measured: no verdict without data."""
    evaluated_at = evaluated_at or request.at or datetime.now(UTC)
    at = evaluated_at.timestamp()
    started = time.perf_counter()
    span = await data_span(request, preset, client, evaluated_at, budget_seconds)
    plan = plan_for(request, preset, span.duration)
    measurement = await measure(plan, client, at, budget_seconds - (time.perf_counter() - started))
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


async def data_span(
    request: AnalysisRequest, preset: Preset, client: PrometheusClient, evaluated_at: datetime, budget_seconds: float
) -> Span:
    """What to judge. An anytime guarantee needs data that only grows: everything since the canary's
    series began (counters start at zero then), the stable's over the same span; never less than the
    window. Otherwise the window."""
    window = promql.duration_seconds(request.window)
    if request.mode is not Mode.STATISTICAL or request.guarantee is not Guarantee.ANYTIME:
        return Span(Data.WINDOW, evaluated_at - timedelta(seconds=window), window)
    query = promql.canary_start_query(
        preset,
        request.service,
        request.canary,
        promql.duration_text(START_LOOKBACK_SECONDS),
        promql.duration_text(START_RESOLUTION_SECONDS),
    )
    start = await canary_start(query, client, evaluated_at.timestamp(), budget_seconds)
    if start is None:
        return Span(Data.LAST_DAY, evaluated_at - timedelta(seconds=START_LOOKBACK_SECONDS), START_LOOKBACK_SECONDS)
    # Whole seconds, so that the span reads as a PromQL duration and starts at or before the canary.
    seconds = max(window, math.ceil(evaluated_at.timestamp() - start))
    return Span(Data.SINCE_CANARY_START, evaluated_at - timedelta(seconds=seconds), seconds)
