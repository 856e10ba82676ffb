"""One analysis: build the queries, run them concurrently, hand the numbers to the judgment."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from app import promql
from app.judgment import CHECKS, CheckSpec, Judgment, Signal, judge
from app.models import AnalysisRequest
from app.prometheus import Cause, PrometheusClient, PrometheusError


class Role(StrEnum):
    CANARY = "canary"
    STABLE = "stable"


QueryKey = tuple[Role, Signal]
K = TypeVar("K")
T = TypeVar("T")


@dataclass(frozen=True)
class Analysis:
    request: AnalysisRequest
    judgment: Judgment
    queries: dict[QueryKey, str]
    warnings: tuple[str, ...]
    evaluated_at: datetime
    prometheus_seconds: float


def signals(checks: tuple[CheckSpec, ...] = CHECKS) -> tuple[Signal, ...]:
    return tuple(dict.fromkeys(spec.signal for spec in checks))


def build_queries(
    request: AnalysisRequest, conventions: promql.Conventions, checks: tuple[CheckSpec, ...] = CHECKS
) -> dict[QueryKey, str]:
    versions = {Role.CANARY: request.canary, Role.STABLE: request.stable}
    return {
        (role, signal): promql.signal_query(conventions, signal, request.service, version, request.window)
        for role, version in versions.items()
        for signal in signals(checks)
    }


async def run_analysis(
    request: AnalysisRequest,
    client: PrometheusClient,
    conventions: promql.Conventions,
    budget_seconds: float,
) -> Analysis:
    """Raises PrometheusError when any number could not be measured: no verdict without data."""
    evaluated_at = request.at or datetime.now(UTC)
    queries = build_queries(request, conventions)
    started = time.perf_counter()
    timestamp = evaluated_at.timestamp()
    results = await gather_within(
        budget_seconds, {key: client.query(query, timestamp, budget_seconds) for key, query in queries.items()}
    )
    prometheus_seconds = time.perf_counter() - started

    measured: dict[Role, dict[Signal, float | None]] = {role: {} for role in Role}
    for (role, signal), result in results.items():
        measured[role][signal] = result.value
    judgment = judge(request.thresholds(), measured[Role.CANARY], measured[Role.STABLE], request.window)
    warnings = tuple(dict.fromkeys(w for result in results.values() for w in result.warnings))
    return Analysis(request, judgment, queries, warnings, evaluated_at, prometheus_seconds)


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
