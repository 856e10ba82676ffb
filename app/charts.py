"""Time-series charts as SVG geometry: pure data in, path strings and ticks out.

Server-side SVG keeps the report free of scripts and of any network fetch at view time. Every view is
drawn at its own size, one unit a CSS pixel, and is never scaled up (report.css), only down where the
page is narrower: so FONT_SIZE is the size a label is read at, and the sizes below fit the report's
layout at its usual widths (two charts abreast in its 1200 px, the interval in its table column).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from app.judge.units import Unit, format_value

WIDTH, HEIGHT = 540, 200
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 24, 12, 28
Y_TICKS = 4
X_TICKS = 6
FONT_SIZE = 12
# A label's width, as a share of the font size per character: a wide sans' (DejaVu Sans' digits are 0.64,
# most letters less), so that labels laid out by it do not run into each other or off the picture.
CHAR_WIDTH = 0.62
LABEL_GAP = 6

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
    font_size: ClassVar[int] = FONT_SIZE


@dataclass(frozen=True)
class ChartView(PlotView):
    window_x: float
    window_width: float
    has_data: bool
    missing: tuple[str, ...]  # series with nothing to draw


def chart(
    series: Sequence[Series],
    unit: Unit,
    start: float,
    end: float,
    window_start: float,
    tick_text: Callable[[float], str] | None = None,
    time_format: str = "%H:%M",
) -> ChartView:
    """Series over time; `tick_text` writes the values' axis (default: each value in `unit`), `time_format`
    the times' (a period of days needs the day)."""
    shown = tick_text or (lambda value: format_value(value, unit))
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
        **_frame(paths),
        y_ticks=tuple(
            Mark(y(value), shown(value))
            for value in (bottom + (top - bottom) * i / Y_TICKS for i in range(Y_TICKS + 1))
        ),
        x_ticks=tuple(
            Mark(x(t), datetime.fromtimestamp(t, UTC).strftime(time_format))
            for t in (start + (end - start) * i / X_TICKS for i in range(X_TICKS + 1))
        ),
        window_x=window_x,
        window_width=x(end) - window_x,
        has_data=bool(finite),
        missing=tuple(p.name for p in paths if not p.d),
    )


def _frame(paths: tuple[Path, ...]) -> dict[str, Any]:
    """What every plot at the usual size has: its size, its plotting area inside the margins, the paths drawn
    and, for the legend, every series."""
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "plot_left": MARGIN_LEFT,
        "plot_right": WIDTH - MARGIN_RIGHT,
        "plot_top": MARGIN_TOP,
        "plot_bottom": HEIGHT - MARGIN_BOTTOM,
        "paths": tuple(p for p in paths if p.d),
        "legend": paths,
    }


def _share_ticks(y: Callable[[float], float]) -> tuple[Mark, ...]:
    """A share's axis, 0 to 100 %."""
    return tuple(Mark(y(i / Y_TICKS), f"{100 * i / Y_TICKS:.0f}%") for i in range(Y_TICKS + 1))


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


def text_width(text: str, font_size: float = FONT_SIZE) -> float:
    """About how wide a label is drawn (generously: see CHAR_WIDTH)."""
    return len(text) * CHAR_WIDTH * font_size


def spaced(marks: Sequence[Mark], font_size: float = FONT_SIZE) -> tuple[Mark, ...]:
    """The marks along an axis whose labels, centred on them, keep clear of the one kept before: a log
    axis of bucket bounds crowds its labels where the bounds are close."""
    kept: list[Mark] = []
    for mark in sorted(marks, key=lambda m: m.position):
        if kept:
            previous = kept[-1]
            room = (text_width(previous.label, font_size) + text_width(mark.label, font_size)) / 2 + LABEL_GAP
            if mark.position - previous.position < room:
                continue
        kept.append(mark)
    return tuple(kept)


@dataclass(frozen=True)
class Label:
    """A text placed on a picture: at x with SVG's text-anchor (start, middle or end), on the baseline y."""

    name: str  # what it labels
    x: float
    y: float
    anchor: str
    text: str


def label_at(name: str, x: float, y: float, text: str, left: float, right: float) -> Label:
    """A label for a mark at x, inside left..right: centred on the mark where it has the room, else running
    from the mark away from the nearer edge, else against that edge. Anchored at an edge, a label ends there
    however wide the font draws it."""
    width = text_width(text)
    if left + width / 2 <= x <= right - width / 2:
        return Label(name, x, y, "middle", text)
    if x < (left + right) / 2:
        return Label(name, min(max(x, left), max(left, right - width)), y, "start", text)
    return Label(name, max(min(x, right), min(right, left + width)), y, "end", text)


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
        **_frame(paths),
        y_ticks=_share_ticks(y),
        x_ticks=spaced([Mark(x(b), format_value(b, Unit.SECONDS)) for b in bounds]),
        slo=Mark(x(slo), f"SLO {format_value(slo, Unit.SECONDS)}") if slo and bounds and _inside(slo, bounds) else None,
        quantile=Mark(y(quantile), f"{quantile:.0%}") if quantile is not None else None,
        has_data=any(p.d for p in paths),
    )


def _inside(value: float, bounds: Sequence[float]) -> bool:
    return bounds[0] <= value <= bounds[-1]


# --- shares against a size: how often a regression of each size is caught ------------------------


CURVE_INSET = 0.06


@dataclass(frozen=True)
class CurveView(PlotView):
    target: Mark | None  # a horizontal line at the share that counts
    has_data: bool


def curve(series: Sequence[Series], size_text: Callable[[float], str], target: float | None = None) -> CurveView:
    """Shares (0..1) against sizes on a linear axis, each size a tick (those that crowd the one before left out)."""
    sizes = sorted({x for s in series for x, _ in s.points})
    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    upper, lower = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM
    low, high = (sizes[0], sizes[-1]) if len(sizes) > 1 else (0.0, 1.0)
    # Room beyond the first and last sizes, for their labels centred on them to stay inside the picture.
    low, high = low - (high - low) * CURVE_INSET, high + (high - low) * CURVE_INSET

    def x(size: float) -> float:
        return left + (size - low) / (high - low) * (right - left)

    def y(share: float) -> float:
        return lower - share * (lower - upper)

    paths = tuple(Path(s.name, s.label, _path(s.points, x, y)) for s in series)
    ticks = [Mark(x(size), size_text(size)) for size in sizes]
    return CurveView(
        **_frame(paths),
        y_ticks=_share_ticks(y),
        x_ticks=spaced(ticks),
        target=Mark(y(target), f"{target:.0%}") if target is not None else None,
        has_data=any(p.d for p in paths),
    )


# --- an estimate, its interval and the limit it is held to -------------------------------------

INTERVAL_WIDTH, INTERVAL_MARGIN = 320, 12
# Top to bottom: the limit's label, the bar (the limit drawn across it), then a row for each value labelled.
INTERVAL_ROW = 16
INTERVAL_BAR_Y = FONT_SIZE + 14


@dataclass(frozen=True)
class Labelled:
    """A value to mark on a scale, and what its label says."""

    name: str
    value: float | None
    text: str


@dataclass(frozen=True)
class IntervalView:
    width: int
    height: int
    bar_y: int
    low: float
    high: float
    estimate: float | None
    limit: Mark
    labels: tuple[Label, ...]  # the limit's, and each labelled value's on a row of its own
    font_size: ClassVar[int] = FONT_SIZE


def interval(
    low: float,
    high: float,
    estimate: float | None,
    limit: float,
    unit: Unit,
    limit_text: str | None = None,
    labelled: Sequence[Labelled] = (),
) -> IntervalView:
    """An interval bar on a scale that shows it and the limit with some room on both sides. Each of
    `labelled` (the interval's ends, say) is labelled on a row of its own under the bar, so no two
    labels meet however close their values are."""
    values = [v for v in (low, high, estimate, limit) if v is not None and math.isfinite(v)]
    start, end = min(values), max(values)
    room = (end - start) * 0.15 or abs(end) * 0.1 or 1.0
    start, end = start - room, end + room

    def x(value: float) -> float:
        return INTERVAL_MARGIN + (value - start) / (end - start) * (INTERVAL_WIDTH - 2 * INTERVAL_MARGIN)

    left, right = 2, INTERVAL_WIDTH - 2
    limit_mark = Mark(x(limit), limit_text or f"limit {format_value(limit, unit)}")
    rows = [label_at("limit", limit_mark.position, FONT_SIZE, limit_mark.label, left, right)]
    first_row = INTERVAL_BAR_Y + FONT_SIZE + 8
    for i, mark in enumerate(m for m in labelled if m.value is not None and math.isfinite(m.value)):
        rows.append(label_at(mark.name, x(mark.value), first_row + i * INTERVAL_ROW, mark.text, left, right))
    return IntervalView(
        width=INTERVAL_WIDTH,
        height=int(rows[-1].y) + 6 if len(rows) > 1 else INTERVAL_BAR_Y + 10,
        bar_y=INTERVAL_BAR_Y,
        low=x(low),
        high=x(high),
        estimate=x(estimate) if estimate is not None else None,
        limit=limit_mark,
        labels=tuple(rows),
    )


# --- the verdict the analyzer would have given at each step of the lookback ---------------------


@dataclass(frozen=True)
class Cell:
    x: float
    width: float
    verdict: str  # pass, fail, inconclusive, or "none" (nothing to judge)
    label: str


STRIP_WIDTH, STRIP_HEIGHT = 1080, 44  # the report's full width at its usual sizes


@dataclass(frozen=True)
class StripView:
    width: int
    height: int
    left: int
    right: int
    cells: tuple[Cell, ...]
    font_size: ClassVar[int] = FONT_SIZE


def strip_view(
    verdicts: Sequence[tuple[float, str]], start: float, end: float, step: float, time_format: str = "%H:%M"
) -> StripView:
    """The verdict at each step, across the report's width."""
    cells = strip(verdicts, start, end, step, STRIP_WIDTH, time_format)
    return StripView(STRIP_WIDTH, STRIP_HEIGHT, MARGIN_LEFT, STRIP_WIDTH - MARGIN_RIGHT, cells)


def strip(
    verdicts: Sequence[tuple[float, str]],
    start: float,
    end: float,
    step: float,
    width: int = WIDTH,
    time_format: str = "%H:%M",
) -> tuple[Cell, ...]:
    """One cell per judged moment (a range query's steps), a step wide and centred on it."""
    left, right = MARGIN_LEFT, width - MARGIN_RIGHT

    def x(t: float) -> float:
        return left + (min(max(t, start), end) - start) / (end - start) * (right - left)

    return tuple(
        Cell(
            x(t - step / 2),
            x(t + step / 2) - x(t - step / 2),
            verdict,
            f"{datetime.fromtimestamp(t, UTC).strftime(time_format)} {verdict}",
        )
        for t, verdict in verdicts
    )
