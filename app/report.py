"""The HTML report: the analysis, its checks charted over a lookback, and the link-outs."""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import Environment, PackageLoader, select_autoescape

from app import charts, links, promql
from app.analysis import Analysis
from app.charts import Cell, ChartView, DistributionView, IntervalView, Points, Series
from app.judge import threshold_rules
from app.judge.checks import Bound, Check, Observed
from app.judge.distributions import Histogram, NativeHistogram, on_shared_buckets
from app.judge.judgment import judge
from app.judge.units import Unit
from app.measurement import History, Role, measure_range
from app.models import AnalysisResponse, CheckOut
from app.prometheus import PrometheusClient, PrometheusError

MAX_POINTS = 120
# The verdict strip shows what the analyzer would have answered each minute (coarser for long lookbacks).
MIN_STEP_SECONDS = 60

templates = Environment(loader=PackageLoader("app", "templates"), autoescape=select_autoescape(), trim_blocks=True)
templates.globals["query_key"] = links.query_key


@dataclass(frozen=True)
class CheckChart:
    check: Check
    out: CheckOut
    view: ChartView
    distribution: DistributionView | None  # latency checks: both versions' shares under each bound
    interval: IntervalView | None  # statistical checks: the estimate, its interval and the limit


@dataclass(frozen=True)
class Lookback:
    """What the charts show: the same measurement at each step of the lookback."""

    history: History
    start: float
    end: float
    step: float
    error: str | None = None


async def fetch_history(analysis: Analysis, client: PrometheusClient, lookback: str, budget_seconds: float) -> Lookback:
    """The analysis' own queries over a range; a failure leaves the charts empty, not the page."""
    end = analysis.evaluated_at.timestamp()
    start = end - promql.duration(lookback).total_seconds()
    step = max(MIN_STEP_SECONDS, (end - start) / MAX_POINTS)
    try:
        history = await measure_range(analysis.plan, client, start, end, step, budget_seconds)
    except PrometheusError as exc:
        empty = History((), ())
        return Lookback(empty, start, end, step, error=f"charts unavailable: Prometheus {exc.cause}: {exc.detail}")
    return Lookback(history, start, end, step)


def verdict_strip(analysis: Analysis, lookback: Lookback) -> tuple[Cell, ...]:
    """The verdict the analyzer would have given at each step: when the canary started to go wrong."""
    request = analysis.request
    limits, confidence = request.limits(), request.confidence()
    verdicts = [
        (t, judge(request.checks, limits, observed[Role.CANARY], observed[Role.STABLE], request.window,
                  request.mode, confidence).verdict.value)
        for t, observed in lookback.history.steps
    ]  # fmt: skip
    return charts.strip(verdicts, lookback.start, lookback.end, lookback.step)


def check_charts(analysis: Analysis, body: AnalysisResponse, lookback: Lookback) -> list[CheckChart]:
    window_start = analysis.evaluated_at - promql.duration(analysis.request.window)
    limits = analysis.request.limits()
    outs = {out.name: out for out in body.checks}
    views = []
    for result in analysis.judgment.checks:
        check = result.check
        canary = _series(check, lookback.history, Role.CANARY)
        stable = _series(check, lookback.history, Role.STABLE)
        limit = limits[check.name]
        if check.bound.relative:
            line: Points = [(t, threshold_rules.effective_limit(check.bound, limit, v)) for t, v in stable]
        else:
            line = [(lookback.start, limit), (lookback.end, limit)]
        series = [
            Series("canary", f"canary ({analysis.request.canary})", canary),
            Series("stable", f"stable ({analysis.request.stable})", stable),
            Series("threshold", _threshold_label(check.bound, limit, check.unit), line),
        ]
        view = charts.chart(series, check.unit, lookback.start, lookback.end, window_start.timestamp())
        out = outs[check.name]
        views.append(CheckChart(check, out, view, _distribution(analysis, check, limit), _interval(out)))
    return views


def _distribution(analysis: Analysis, check: Check, limit: float) -> DistributionView | None:
    if check.quantile is None:
        return None
    request, observed = analysis.request, analysis.measurement.observed
    series = [
        Series("canary", f"canary ({request.canary})", _shares(observed[Role.CANARY], check)),
        Series("stable", f"stable ({request.stable})", _shares(observed[Role.STABLE], check)),
    ]
    slo = limit if check.bound is Bound.AT_MOST else None
    return charts.distribution(series, slo=slo, quantile=check.quantile)


def _shares(observed: Observed, check: Check) -> Points:
    """The share of requests at or under each bucket bound."""
    measured = observed.get(check.source)
    if not isinstance(measured, Histogram | NativeHistogram) or measured.total <= 0:
        return []
    [histogram] = on_shared_buckets(measured)
    counts = zip(histogram.bounds, histogram.cumulative, strict=True)
    return [(bound, count / histogram.total) for bound, count in counts]


def _interval(out: CheckOut) -> IntervalView | None:
    statistics = out.statistics
    if statistics is None or statistics.interval.low is None or statistics.interval.high is None:
        return None
    return charts.interval(
        statistics.interval.low, statistics.interval.high, statistics.estimate, statistics.limit, statistics.unit
    )


def _series(check: Check, history: History, role: Role) -> Points:
    points = ((t, check.value(observed[role])) for t, observed in history.steps)
    return [(t, value) for t, value in points if value is not None]


def _threshold_label(bound: Bound, limit: float, unit: Unit) -> str:
    return "threshold: " + bound.describe(limit, unit).removeprefix("canary ")


def render_report(
    body: AnalysisResponse,
    charts: list[CheckChart],
    lookback: Lookback,
    cells: tuple[Cell, ...],
    lookback_text: str,
    form: dict[str, str],
) -> str:
    return templates.get_template("report.html").render(
        body=body, charts=charts, history=lookback, cells=cells, lookback=lookback_text, form=form
    )


def render_problem(status: int, title: str, problems: list[str], form: dict[str, str], trace_id: str | None) -> str:
    return templates.get_template("problem.html").render(
        status=status, title=title, problems=problems, form=form, trace_id=trace_id
    )
