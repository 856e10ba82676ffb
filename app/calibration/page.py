"""calibrate's page (`--html FILE`): its figures in the report's style, one file that works offline.

No script and nothing fetched: the styles are inlined, the pictures are SVG drawn here (app/charts.py), and the
page's own Content-Security-Policy forbids anything else, so it can be mailed, attached to a ticket or opened
from a CI job's artifacts as it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

from jinja2 import Environment, PackageLoader, select_autoescape

from app import charts
from app.calibration.argo import ABORTED, PAUSED, PROMOTED
from app.calibration.buckets import BucketsOut
from app.calibration.figures import CalibrationOut, HourOut, PowerOut, TemplateOut
from app.calibration.power import Kind, Regression
from app.calibration.split import HALVES
from app.charts import ChartView, CurveView, DistributionView, Series, StripView
from app.judge.units import Unit
from app.presets import SECONDS_PER

# Runs drawn as the report draws verdicts: an aborted run as a fail, a paused one as inconclusive.
CELL_OF_OUTCOME = {ABORTED: "fail", PAUSED: "inconclusive", PROMOTED: "pass"}
TIME_FORMAT = "%a %H:%M"  # a period of days: the day matters as much as the hour
STYLES = ("report.css", "calibration.css")
HOUR = 3600.0

templates = Environment(loader=PackageLoader("app", "templates"), autoescape=select_autoescape(), trim_blocks=True)


@dataclass(frozen=True)
class RunsStrip:
    template: TemplateOut
    strip: StripView
    first: str
    last: str


@dataclass(frozen=True)
class HalvesChart:
    title: str
    view: ChartView


def page(out: CalibrationOut) -> str:
    start, end = out.since.timestamp(), out.until.timestamp()
    css = "\n".join(resources.files("app").joinpath("static", name).read_text() for name in STYLES)
    return templates.get_template("calibration.html").render(
        out=out,
        css=css,
        strips=[_runs_strip(template, start, end) for template in out.templates],
        charts=_hourly_charts(out, start, end),
        power=_power_curves(out.power) if out.power is not None else [],
        buckets=_buckets_chart(out.buckets),
    )


def _runs_strip(template: TemplateOut, start: float, end: float) -> RunsStrip:
    runs = [(run.start.timestamp(), CELL_OF_OUTCOME[run.outcome]) for run in template.over_time]
    spacing = (runs[1][0] - runs[0][0]) if len(runs) > 1 else end - start
    view = charts.strip_view(runs, start, end, spacing, TIME_FORMAT)
    return RunsStrip(template, view, _moment(start), _moment(end))


def _hourly_charts(out: CalibrationOut, start: float, end: float) -> list[HalvesChart]:
    """The requests each hour, and each relative check's number each hour, of both halves."""

    def chart(title: str, unit: Unit, number: Callable[[HourOut, str], float | None]) -> HalvesChart:
        series = [
            Series(half, f"half {half}", [(_middle(hour, end), _drawn(number(hour, half))) for hour in out.hours])
            for half in HALVES
        ]
        return HalvesChart(title, charts.chart(series, unit, start, end, end, time_format=TIME_FORMAT))

    found = [chart("requests each hour", Unit.COUNT, lambda hour, half: hour.requests[half])]
    for check, unit in out.units.items():
        found.append(chart(f"{check} each hour", unit, lambda hour, half, check=check: hour.values[check][half]))
    return found


@dataclass(frozen=True)
class PowerCurve:
    title: str
    view: CurveView


def _power_curves(power: PowerOut) -> list[PowerCurve]:
    """For each kind of regression, the share of runs aborted at each size injected, for each template."""
    curves = []
    for search in power.smallest:
        kind = Kind(search.kind)
        found = [*search.tried, *(row for row in power.injected if row.kind == search.kind)]
        series = []
        for template in dict.fromkeys(row.template for row in found):
            shares = {row.size: row.aborted.share for row in found if row.template == template}
            points = sorted((size, share) for size, share in shares.items() if share is not None)
            series.append(Series(template, f"{template} runs aborted", points))
        view = charts.curve(series, lambda size, kind=kind: Regression(kind, size).shown, power.at_least)
        curves.append(PowerCurve(f"{kind.value}: runs aborted by the size injected", view))
    return curves


def _buckets_chart(buckets: BucketsOut) -> DistributionView | None:
    """The stable's share of requests at or under each bound, the first SLO and its quantile marked."""
    if not buckets.bounds:
        return None
    per_unit = SECONDS_PER.get(buckets.unit, 1.0)
    points = [(bound * per_unit, share) for bound, share in zip(buckets.bounds, buckets.at_or_under, strict=True)]
    slo = buckets.slos[0] if buckets.slos else None
    series = [Series("stable", "the stable: share at or under each bound", points)]
    return charts.distribution(series, slo.slo if slo else None, slo.quantile if slo else None)


def _middle(hour: HourOut, end: float) -> float:
    return min(hour.start.timestamp() + HOUR / 2, end)


def _drawn(value: float | None) -> float:
    return value if value is not None else math.nan  # a break in the line, where the hour had no data


def _moment(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime(TIME_FORMAT)
