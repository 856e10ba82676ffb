"""The result view: an Analysis turned, once, into the answer every consumer reads.

The JSON body, the report, the CLI table, the audit line and the metrics all read the
`AnalysisResponse` built here; none of them looks at the judgment's internals.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from app import dashboards, links
from app.analysis import Analysis
from app.judge.checks import Mode, Observed
from app.judge.distributions import Histogram, NativeHistogram
from app.judge.judgment import CheckResult, Guarantee
from app.judge.recent import SPAN_MINUTES, SPREAD
from app.judge.units import format_value
from app.measurement import Role
from app.models import (
    AlphaSplit,
    AnalysisResponse,
    CheckOut,
    ConfidenceOut,
    Interval,
    Links,
    Queries,
    Shown,
    Statistics,
)
from app.promql import duration_text
from app.settings import Settings


def finite_or_none(value: float | None) -> float | None:
    """JSON has no NaN or Infinity, and Argo reads them badly: they travel as null."""
    return value if value is not None and math.isfinite(value) else None


def analysis_response(analysis: Analysis, settings: Settings) -> AnalysisResponse:
    """The answer every consumer reads; the server adds each caller's trace id."""
    request, judgment = analysis.request, analysis.judgment
    # A graph per measure and version: checks that judge the same measure share one.
    graphed = {
        links.query_key(role, result.check.measure_key): analysis.expressions[result.check.name][role]
        for result in judgment.checks
        for role in Role
    }
    graphs = links.prometheus_graphs(settings.prometheus_browser_url, graphed, analysis.evaluated_at, request.window)
    dashboard = dashboards.uid(request.preset or settings.metrics_preset, settings.grafana_dashboard_uid)
    grafana = (
        links.grafana_dashboard(settings.grafana_url, dashboard, request, analysis.evaluated_at)
        if settings.grafana_url
        else None
    )
    return AnalysisResponse(
        verdict=judgment.verdict,
        mode=request.mode,
        confidence=_confidence(analysis) if request.mode is Mode.STATISTICAL else None,
        reasons=list(judgment.reasons),
        service=request.service,
        canary=request.canary,
        stable=request.stable,
        window=request.window,
        evaluated_at=analysis.evaluated_at,
        thresholds=request.thresholds(),
        checks=[_check(analysis, result) for result in judgment.checks],
        queries=analysis.plan.named_queries(),
        links=Links(prometheus=graphs, grafana=grafana, report=links.report(settings.public_url, request)),
        warnings=list(analysis.measurement.warnings),
        trace_id=None,
    )


def _check(analysis: Analysis, result: CheckResult) -> CheckOut:
    check, unit = result.check, result.check.unit
    expressions = analysis.expressions[check.name]
    return CheckOut(
        name=check.name,
        title=check.title,
        verdict=result.outcome,
        unit=unit,
        canary=finite_or_none(result.canary),
        stable=finite_or_none(result.stable),
        threshold=finite_or_none(result.limit),
        rule=result.rule,
        reason=result.reason,
        queries=Queries(canary=expressions[Role.CANARY], stable=expressions[Role.STABLE]),
        shown=Shown(
            canary=format_value(result.canary, unit),
            stable=format_value(result.stable, unit),
            threshold=format_value(result.limit, unit),
        ),
        canary_bucket=_bucket(result, analysis.measurement.observed[Role.CANARY]),
        stable_bucket=_bucket(result, analysis.measurement.observed[Role.STABLE]),
        statistics=_statistics(analysis, result) if result.evidence else None,
    )


def _confidence(analysis: Analysis) -> ConfidenceOut:
    request, span = analysis.request, analysis.span
    confidence = request.confidence()
    recent = confidence.recent_alpha(request.checks)
    split = None
    if recent is not None:
        whole = confidence.levels(request.checks).alpha
        split = AlphaSplit(whole=whole, recent=recent, span_minutes=SPAN_MINUTES, spread=SPREAD)
    # Under `anytime` the run's length does not enter: showing the request's polls would suggest it did.
    counts_polls = confidence.guarantee is Guarantee.FIXED_POLLS
    return ConfidenceOut(
        alpha=confidence.alpha,
        guarantee=confidence.guarantee,
        data=span.data.value,
        since=span.since,
        span=span.duration,
        polls=confidence.polls if counts_polls else None,
        failure_limit=confidence.failure_limit if counts_polls else None,
        pass_confidence=confidence.pass_confidence,
        alpha_per_check=confidence.levels(request.checks).alpha
        if recent is None
        else confidence.per_check(request.checks),
        split=split,
    )


def _statistics(analysis: Analysis, result: CheckResult) -> Statistics:
    evidence = result.evidence
    assert evidence is not None
    if result.span is None:
        scope, since, span = "whole", analysis.span.since, analysis.span.duration
    else:
        scope, since, span = (
            "recent",
            datetime.fromtimestamp(result.span.since, UTC),
            duration_text(result.span.seconds),
        )
    estimate, low, high = (format_value(v, evidence.unit) for v in (evidence.estimate, evidence.low, evidence.high))
    shown = f"{estimate} ({low} to {high})" if evidence.estimate is not None else f"{low} to {high}"
    return Statistics(
        method=evidence.method,
        estimate=finite_or_none(evidence.estimate),
        interval=Interval(low=finite_or_none(evidence.low), high=finite_or_none(evidence.high)),
        limit=evidence.limit,
        unit=evidence.unit,
        shown=shown,
        effect=finite_or_none(evidence.effect),
        effect_name=evidence.effect_name,
        p_value=finite_or_none(evidence.p_value),
        alpha=evidence.alpha,
        pass_confidence=evidence.pass_confidence,
        scope=scope,
        since=since,
        span=span,
    )


def _bucket(result: CheckResult, observed: Observed) -> Interval | None:
    histogram = observed.get(result.check.source)
    if result.check.quantile is None or not isinstance(histogram, Histogram | NativeHistogram):
        return None
    bucket = histogram.quantile_bucket(result.check.quantile)
    return Interval(low=bucket[0], high=finite_or_none(bucket[1])) if bucket else None
