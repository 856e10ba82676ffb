"""Turns an Analysis into the JSON answer of /analyze."""

from __future__ import annotations

import math
from dataclasses import asdict

from app import links
from app.analysis import Analysis, Role
from app.models import AnalysisResponse, CheckOut, Links, Queries
from app.settings import Settings


def finite_or_none(value: float | None) -> float | None:
    """JSON has no NaN or Infinity, and Argo reads them badly: they travel as null."""
    return value if value is not None and math.isfinite(value) else None


def analysis_response(analysis: Analysis, settings: Settings, trace_id: str | None = None) -> AnalysisResponse:
    request, judgment = analysis.request, analysis.judgment
    checks = [
        CheckOut(
            name=result.spec.name,
            verdict=result.outcome,
            canary=finite_or_none(result.canary),
            stable=finite_or_none(result.stable),
            threshold=finite_or_none(result.threshold),
            rule=result.rule,
            reason=result.reason,
            queries=Queries(
                canary=analysis.queries[(Role.CANARY, result.spec.signal)],
                stable=analysis.queries[(Role.STABLE, result.spec.signal)],
            ),
        )
        for result in judgment.checks
    ]
    graphs = {
        links.query_key(role, signal.key): links.prometheus_graph(
            settings.prometheus_browser_url, query, analysis.evaluated_at, request.window
        )
        for (role, signal), query in analysis.queries.items()
    }
    grafana = (
        links.grafana_dashboard(settings.grafana_url, settings.grafana_dashboard_uid, request, analysis.evaluated_at)
        if settings.grafana_url
        else None
    )
    return AnalysisResponse(
        verdict=judgment.verdict,
        reasons=list(judgment.reasons),
        service=request.service,
        canary=request.canary,
        stable=request.stable,
        window=request.window,
        evaluated_at=analysis.evaluated_at,
        thresholds=asdict(request.thresholds()),
        checks=checks,
        links=Links(prometheus=graphs, grafana=grafana, report=links.report(settings.public_url, request)),
        warnings=list(analysis.warnings),
        trace_id=trace_id,
    )
