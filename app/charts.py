"""Time-series charts as SVG geometry: pure data in, path strings and ticks out.

Server-side SVG keeps the report free of scripts and of any network fetch at view time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from app.judge.units import Unit, format_value

WIDTH, HEIGHT = 640, 220
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 24, 12, 28
Y_TICKS = 4
X_TICKS = 6

Points = Sequence[tuple[float, float]]
SMALLEST_SCALE = 1e-9


@dataclass(frozen=True)
class Series:
    name: str  # canary, stable, threshold
    label: str  # what the legend says
    points: Points


@dataclass(frozen=True)
class Path:
    name: str
    label: str
    d: str


@dataclass(frozen=True)
class Mark:
    """A labelled position on an axis: a tick, or a line drawn across the plot."""

    position: float
    label: str


@dataclass(frozen=True)
class PlotView:
    """What every plot has: its size, the plotting area inside the margins, the series and the axes."""

    width: int
    height: int
    plot_left: int
    plot_right: int
    plot_top: int
    plot_bottom: int
    paths: tuple[Path, ...]
    legend: tuple[Path, ...]  # every series, drawn or not, so the legend never changes shape
    y_ticks: tuple[Mark, ...]
    x_ticks: tuple[Mark, ...]


@dataclass(frozen=True)
class ChartView(PlotView):
    window_x: float
    window_width: float
    has_data: bool
    missing: tuple[str, ...]  # series with nothing to draw


def chart(series: Sequence[Series], unit: Unit, start: float, end: float, window_start: float) -> ChartView:
    finite = [v for s in series for _, v in s.points if math.isfinite(v)]
    # Headroom above the highest value, so a line at the top stays visible; a scale below any
    # value worth drawing (a subnormal limit, say) would divide by zero. Zero stays on the axis;
    # below it only what goes negative (a difference, say) takes room.
    top = _nice_ceiling(max(finite) * 1.1) if finite and max(finite) > SMALLEST_SCALE else 1.0
    bottom = -_nice_ceiling(-min(finite) * 1.1) if finite and min(finite) < -SMALLEST_SCALE else 0.0
    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    upper, lower = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM

    def x(t: float) -> float:
        return left + (t - start) / (end - start) * (right - left)

    def y(v: float) -> float:
        return lower - (min(v, top) - bottom) / (top - bottom) * (lower - upper)

    paths = tuple(Path(s.name, s.label, _path(s.points, x, y)) for s in series)
    window_x = x(max(window_start, start))
    return ChartView(
        width=WIDTH,
        height=HEIGHT,
        plot_left=left,
        plot_right=right,
        plot_top=upper,
        plot_bottom=lower,
        paths=tuple(p for p in paths if p.d),
        legend=paths,
        y_ticks=tuple(
            Mark(y(value), format_value(value, unit))
            for value in (bottom + (top - bottom) * i / Y_TICKS for i in range(Y_TICKS + 1))
        ),
        x_ticks=tuple(
            Mark(x(t), datetime.fromtimestamp(t, UTC).strftime("%H:%M"))
            for t in (start + (end - start) * i / X_TICKS for i in range(X_TICKS + 1))
        ),
        window_x=window_x,
        window_width=x(end) - window_x,
        has_data=bool(finite),
        missing=tuple(p.name for p in paths if not p.d),
    )


def _path(points: Points, x: Callable[[float], float], y: Callable[[float], float]) -> str:
    """SVG path data; a NaN or infinite sample breaks the line instead of drawing a spike."""
    parts, pen_down = [], False
    for t, v in points:
        if not math.isfinite(v):
            pen_down = False
            continue
        parts.append(f"{'L' if pen_down else 'M'}{x(t):.1f},{y(v):.1f}")
        pen_down = True
    return " ".join(parts)


def _nice_ceiling(value: float) -> float:
    """The next of 1, 2, 2.5, 5 times a power of ten at or above value (tidy axis labels)."""
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude * 1.0000001:
            return step * magnitude
    return 10 * magnitude


# --- a latency distribution: the share of requests at or under each bucket bound ----------------


@dataclass(frozen=True)
class DistributionView(PlotView):
    slo: Mark | None  # a vertical line at the SLO
    quantile: Mark | None  # a horizontal line at the share the SLO is about (95 %)
    has_data: bool


def distribution(series: Sequence[Series], slo: float | None = None, quantile: float | None = None) -> DistributionView:
    """Cumulative shares (0..1) at bucket bounds (seconds), on a log axis of the finite bounds."""
    bounds = sorted({b for s in series for b, _ in s.points if math.isfinite(b) and b > 0})
    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    upper, lower = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM
    low, high = (math.log(bounds[0]), math.log(bounds[-1])) if len(bounds) > 1 else (0.0, 1.0)

    def x(bound: float) -> float:
        return left + (math.log(bound) - low) / (high - low) * (right - left)

    def y(share: float) -> float:
        return lower - share * (lower - upper)

    paths = tuple(Path(s.name, s.label, _path([(b, v) for b, v in s.points if b in bounds], x, y)) for s in series)
    return DistributionView(
        width=WIDTH,
        height=HEIGHT,
        plot_left=left,
        plot_right=right,
        plot_top=upper,
        plot_bottom=lower,
        paths=tuple(p for p in paths if p.d),
        legend=paths,
        y_ticks=tuple(Mark(y(i / Y_TICKS), f"{100 * i / Y_TICKS:.0f}%") for i in range(Y_TICKS + 1)),
        x_ticks=tuple(Mark(x(b), format_value(b, Unit.SECONDS)) for b in bounds),
        slo=Mark(x(slo), f"SLO {format_value(slo, Unit.SECONDS)}") if slo and bounds and _inside(slo, bounds) else None,
        quantile=Mark(y(quantile), f"{quantile:.0%}") if quantile is not None else None,
        has_data=any(p.d for p in paths),
    )


def _inside(value: float, bounds: Sequence[float]) -> bool:
    return bounds[0] <= value <= bounds[-1]


# --- an estimate, its interval and the limit it is held to -------------------------------------

INTERVAL_WIDTH, INTERVAL_HEIGHT, INTERVAL_MARGIN = 320, 34, 12


@dataclass(frozen=True)
class IntervalView:
    width: int
    height: int
    low: float
    high: float
    estimate: float | None
    limit: Mark
    ends: tuple[str, str]  # what the axis' two ends read


def interval(low: float, high: float, estimate: float | None, limit: float, unit: Unit) -> IntervalView:
    """An interval bar on a scale that shows it and the limit with some room on both sides."""
    values = [v for v in (low, high, estimate, limit) if v is not None and math.isfinite(v)]
    start, end = min(values), max(values)
    room = (end - start) * 0.15 or abs(end) * 0.1 or 1.0
    start, end = start - room, end + room

    def x(value: float) -> float:
        return INTERVAL_MARGIN + (value - start) / (end - start) * (INTERVAL_WIDTH - 2 * INTERVAL_MARGIN)

    return IntervalView(
        width=INTERVAL_WIDTH,
        height=INTERVAL_HEIGHT,
        low=x(low),
        high=x(high),
        estimate=x(estimate) if estimate is not None else None,
        limit=Mark(x(limit), f"limit {format_value(limit, unit)}"),
        ends=(format_value(start, unit), format_value(end, unit)),
    )


# --- the verdict the analyzer would have given at each step of the lookback ---------------------


@dataclass(frozen=True)
class Cell:
    x: float
    width: float
    verdict: str  # pass, fail, inconclusive, or "none" (nothing to judge)
    label: str


def strip(verdicts: Sequence[tuple[float, str]], start: float, end: float, step: float) -> tuple[Cell, ...]:
    """One cell per judged moment (a range query's steps), a step wide and centred on it."""
    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT

    def x(t: float) -> float:
        return left + (min(max(t, start), end) - start) / (end - start) * (right - left)

    return tuple(
        Cell(
            x(t - step / 2),
            x(t + step / 2) - x(t - step / 2),
            verdict,
            f"{datetime.fromtimestamp(t, UTC).strftime('%H:%M')} {verdict}",
        )
        for t, verdict in verdicts
    )
