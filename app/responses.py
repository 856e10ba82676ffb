"""The result view: an Analysis turned, once, into the answer every consumer reads.

The JSON body, the report, the CLI table, the audit line and the metrics all read the
`AnalysisResponse` built here; none of them looks at the judgment's internals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Literal

from app import dashboards, links
from app.analysis import Analysis
from app.judge import threshold_rules
from app.judge.checks import Check, Method, Mode, Observed, Statistic
from app.judge.distributions import Histogram, NativeHistogram
from app.judge.findings import Evidence, Outcome
from app.judge.judgment import CheckResult, Guarantee
from app.judge.recent import SPAN_MINUTES, SPREAD
from app.judge.units import Unit, format_confidence, format_count, format_difference, format_value
from app.measurement import Role
from app.models import (
    AlphaSplit,
    AnalysisResponse,
    CheckOut,
    ConfidenceOut,
    Interval,
    Links,
    OneSidedBound,
    Queries,
    Shown,
    Statistics,
)
from app.promql import duration_text
from app.settings import Settings

Side = Literal["lower", "upper"]


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
    limits = request.limits()
    too_few = {
        role: too_few_requests(request.checks, limits, analysis.measurement.observed[role], request.window)
        for role in Role
    }
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
        checks=[_check(analysis, result, too_few) for result in judgment.checks],
        queries=analysis.plan.named_queries(),
        links=Links(prometheus=graphs, grafana=grafana, report=links.report(settings.public_url, request)),
        warnings=list(analysis.measurement.warnings),
        trace_id=None,
    )


def too_few_requests(
    checks: Sequence[Check], limits: Mapping[str, float], observed: Observed, window: str
) -> float | None:
    """A version's requests when they are fewer than the traffic gate needs to judge it, else None.

    A number from so few requests means nothing yet (a P95 of 2.05 s from 6 requests, beside the stable's 87 ms
    from thousands): it is shown as the count, whether or not the gate stopped the check (the stable's numbers
    are never judged on their own). The JSON's numbers stay as measured."""
    for gate in checks:
        if not gate.gate or gate.statistic is not Statistic.REQUESTS:
            continue
        count = gate.value(observed)
        held = threshold_rules.classify(gate, limits[gate.name], observed, {}, window)
        if count is not None and held.outcome is not Outcome.PASS:
            return count
    return None


def counts_requests(check: Check) -> bool:
    """The check's number comes from the version's requests (not a count of them, as the gate's, nor a user's
    check, which reads series of its own): too few requests make it meaningless."""
    return not check.gate and check.queries is None and check.unit is not Unit.COUNT


def _shown(value: float | None, unit: Unit, too_few: float | None) -> str:
    if too_few is not None and value is not None:
        return f"{format_count(too_few, 'request')}: not yet meaningful"
    return format_value(value, unit)


def _check(analysis: Analysis, result: CheckResult, too_few: Mapping[Role, float | None]) -> CheckOut:
    check, unit = result.check, result.check.unit
    expressions = analysis.expressions[check.name]
    few = too_few if counts_requests(check) else dict.fromkeys(Role)
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
            canary=_shown(result.canary, unit, few[Role.CANARY]),
            stable=_shown(result.stable, unit, few[Role.STABLE]),
            threshold=format_value(result.limit, unit),
        ),
        canary_bucket=_bucket(result, analysis.measurement.observed[Role.CANARY]),
        stable_bucket=_bucket(result, analysis.measurement.observed[Role.STABLE]),
        statistics=_statistics(analysis, result, result.evidence) if result.evidence else None,
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


def _statistics(analysis: Analysis, result: CheckResult, evidence: Evidence) -> Statistics:
    if result.span is None:
        scope, since, span = "whole", analysis.span.since, analysis.span.duration
    else:
        scope, since, span = (
            "recent",
            datetime.fromtimestamp(result.span.since, UTC),
            duration_text(result.span.seconds),
        )
    check = result.check
    value = value_text(check, evidence.unit)
    estimate, limit = _estimate_text(result, evidence, value)
    failing = fail_side(check)
    fail = _bound(evidence, failing, 1 - evidence.alpha, evidence.anytime, value)
    passing = _bound(evidence, _other(failing), evidence.pass_confidence, False, value)
    past = "above" if failing == "lower" else "below"
    shown = (
        f"{estimate}; a fail needs the {fail.side} bound {past} the limit: {_bound_text(fail, value)}; "
        f"a pass needs the {passing.side} bound within it: {_bound_text(passing, value)}"
    )
    return Statistics(
        method=evidence.method,
        estimate=finite_or_none(evidence.estimate),
        interval=Interval(low=finite_or_none(evidence.low), high=finite_or_none(evidence.high)),
        limit=evidence.limit,
        unit=evidence.unit,
        shown=shown,
        estimate_shown=estimate,
        limit_shown=limit,
        fail_bound=fail,
        pass_bound=passing,
        effect=finite_or_none(evidence.effect),
        effect_name=evidence.effect_name,
        p_value=finite_or_none(evidence.p_value),
        alpha=evidence.alpha,
        pass_confidence=evidence.pass_confidence,
        scope=scope,
        since=since,
        span=span,
    )


def fail_side(check: Check) -> Side:
    """The end of a check's interval that a fail needs past the limit. The interval is of what the test
    estimates: for a share held to a fixed limit, the share itself, so where lower is worse (a conversion
    rate) its upper end decides a fail; against the stable it is of how much worse the canary is, and its
    lower end decides, as for every other check."""
    return "upper" if check.method is Method.BINOMIAL and check.bound.lower_is_worse else "lower"


def _other(side: Side) -> Side:
    return "upper" if side == "lower" else "lower"


def value_text(check: Check, unit: Unit) -> Callable[[float | None], str]:
    """How a statistical check's estimate, its bounds and its limit read: a difference from the stable's share
    in points."""
    if check.method is Method.TWO_PROPORTIONS:
        return lambda value: format_difference(value, unit)
    return lambda value: format_value(value, unit)


def _estimate_text(result: CheckResult, evidence: Evidence, value: Callable[[float | None], str]) -> tuple[str, str]:
    """What the estimate is, with the limit it is held to; and that limit alone (what the graphic marks)."""
    check = result.check
    estimate, limit = value(evidence.estimate), value(evidence.limit)
    if check.method is Method.BINOMIAL:
        held = f"{limit} {'needed' if check.bound.lower_is_worse else 'allowed'}"
        if check.statistic is Statistic.QUANTILE:
            # "P95 <= 300 ms" is judged as the share of requests slower than 300 ms, against the 5 % a P95 allows.
            return f"{estimate} slower than {format_value(result.limit, Unit.SECONDS)} ({held})", held
        return f"{estimate} {check.title} ({held})", held
    held = f"{limit} tolerated"
    if check.method is Method.RANK_SHIFT:
        return f"{estimate} the stable's latency ({held})", held
    # Two proportions: how much worse the canary's share is than the stable's.
    relation = "short of" if check.bound.lower_is_worse else "vs"
    return f"{estimate} {check.title} {relation} the stable's ({held})", held


def _bound(
    evidence: Evidence, side: Side, confidence: float, anytime: bool, value: Callable[[float | None], str]
) -> OneSidedBound:
    number = evidence.low if side == "lower" else evidence.high
    at_least = "≥" if side == "lower" else "≤"
    return OneSidedBound(
        side=side,
        value=finite_or_none(number),
        confidence=confidence,
        anytime=anytime,
        shown=f"{at_least} {value(number)} with {_confidence_text(confidence, anytime)}",
    )


def _bound_text(bound: OneSidedBound, value: Callable[[float | None], str]) -> str:
    return f"{value(bound.value)} ({_confidence_text(bound.confidence, bound.anytime)})"


def _confidence_text(confidence: float, anytime: bool) -> str:
    return f"{format_confidence(confidence)} confidence{' at any look' if anytime else ''}"


def _bucket(result: CheckResult, observed: Observed) -> Interval | None:
    histogram = observed.get(result.check.source)
    if result.check.quantile is None or not isinstance(histogram, Histogram | NativeHistogram):
        return None
    bucket = histogram.quantile_bucket(result.check.quantile)
    return Interval(low=bucket[0], high=finite_or_none(bucket[1])) if bucket else None
