"""The HTML report: the analysis, its checks charted over a lookback, and the link-outs."""

from __future__ import annotations

import math
from dataclasses import dataclass

from jinja2 import Environment, PackageLoader, select_autoescape

from app import links, promql
from app.analysis import Analysis, QueryKey, Role, gather_within
from app.charts import ChartView, Points, Series, chart
from app.judgment import Bound, CheckResult, Unit, format_value
from app.models import AnalysisResponse
from app.prometheus import PrometheusClient, PrometheusError

MAX_POINTS = 120
MIN_STEP_SECONDS = 15

templates = Environment(loader=PackageLoader("app", "templates"), autoescape=select_autoescape(), trim_blocks=True)
templates.globals["fmt"] = format_value
templates.globals["query_key"] = links.query_key


@dataclass(frozen=True)
class CheckChart:
    result: CheckResult
    view: ChartView


@dataclass(frozen=True)
class History:
    series: dict[QueryKey, Points]
    start: float
    end: float
    error: str | None = None


async def fetch_history(analysis: Analysis, client: PrometheusClient, lookback: str, budget_seconds: float) -> History:
    """Every query of the analysis as a range query; a failure leaves the charts empty, not the page."""
    end = analysis.evaluated_at.timestamp()
    start = end - promql.duration(lookback).total_seconds()
    step = max(MIN_STEP_SECONDS, (end - start) / MAX_POINTS)
    calls = {key: client.query_range(q, start, end, step, budget_seconds) for key, q in analysis.queries.items()}
    try:
        results = await gather_within(budget_seconds, calls)
    except PrometheusError as exc:
        return History({}, start, end, error=f"charts unavailable: Prometheus {exc.cause}: {exc.detail}")
    return History({key: result.points for key, result in results.items()}, start, end)


def check_charts(analysis: Analysis, history: History) -> list[CheckChart]:
    window_start = analysis.evaluated_at - promql.duration(analysis.request.window)
    thresholds = analysis.request.thresholds()
    charts = []
    for result in analysis.judgment.checks:
        spec = result.spec
        canary = history.series.get((Role.CANARY, spec.signal), ())
        stable = history.series.get((Role.STABLE, spec.signal), ())
        threshold = thresholds.get(spec.threshold)
        if spec.bound.relative:
            limit: Points = [(t, spec.bound.limit(threshold, v)) for t, v in stable if math.isfinite(v)]
        else:
            limit = [(history.start, threshold), (history.end, threshold)]
        series = [
            Series("canary", f"canary ({analysis.request.canary})", canary),
            Series("stable", f"stable ({analysis.request.stable})", stable),
            Series("threshold", _threshold_label(spec.bound, threshold, spec.signal.unit), limit),
        ]
        view = chart(series, spec.signal.unit, history.start, history.end, window_start.timestamp())
        charts.append(CheckChart(result, view))
    return charts


def _threshold_label(bound: Bound, threshold: float, unit: Unit) -> str:
    return "threshold: " + bound.describe(threshold, unit).removeprefix("canary ")


def render_report(
    body: AnalysisResponse, charts: list[CheckChart], history: History, lookback: str, form: dict[str, str]
) -> str:
    return templates.get_template("report.html").render(
        body=body,
        checks=list(zip(body.checks, charts, strict=True)),
        history=history,
        lookback=lookback,
        form=form,
    )


def render_problem(status: int, title: str, problems: list[str], form: dict[str, str], trace_id: str | None) -> str:
    return templates.get_template("problem.html").render(
        status=status, title=title, problems=problems, form=form, trace_id=trace_id
    )
