"""One analysis: measure both versions (one query per metric family), then judge."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from app import promql
from app.judge.checks import Check
from app.judge.judgment import Judgment, judge
from app.measurement import Measurement, Plan, Role, measure
from app.models import AnalysisRequest
from app.presets import Preset
from app.prometheus import PrometheusClient


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


def versions(request: AnalysisRequest) -> dict[Role, str]:
    return {Role.CANARY: request.canary, Role.STABLE: request.stable}


def plan_for(request: AnalysisRequest, preset: Preset) -> Plan:
    return Plan.build(request.checks, preset, request.service, versions(request), request.window)


def expressions_for(request: AnalysisRequest, preset: Preset) -> dict[str, dict[Role, str]]:
    def expression(check: Check, version: str) -> str:
        return promql.expression(check, preset, request.service, version, request.window)

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
    plan = plan_for(request, preset)
    started = time.perf_counter()
    measurement = await measure(plan, client, evaluated_at.timestamp(), budget_seconds)
    prometheus_seconds = time.perf_counter() - started
    judgment = judge(
        request.checks,
        request.limits(),
        measurement.observed[Role.CANARY],
        measurement.observed[Role.STABLE],
        request.window,
        request.mode,
        request.confidence(),
    )
    return Analysis(
        request,
        plan,
        measurement,
        judgment,
        expressions_for(request, preset),
        evaluated_at,
        prometheus_seconds,
    )
