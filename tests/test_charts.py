"""Chart geometry on plain numbers."""

from __future__ import annotations

import math

from app.charts import (
    HEIGHT,
    MARGIN_BOTTOM,
    MARGIN_LEFT,
    MARGIN_RIGHT,
    WIDTH,
    Series,
    chart,
    distribution,
    interval,
    strip,
)
from app.judge.units import Unit


def test_lines_are_drawn_inside_the_plot() -> None:
    view = chart(
        [
            Series("canary", "canary", [(0, 0.1), (50, 0.2), (100, 0.3)]),
            Series("threshold", "t", [(0, 0.3), (100, 0.3)]),
        ],
        Unit.SECONDS,
        start=0,
        end=100,
        window_start=80,
    )
    assert view.has_data
    [canary, threshold] = view.paths
    assert canary.d.startswith("M") and canary.d.count("L") == 2
    assert threshold.d.count("L") == 1
    xs = [float(p[1:].split(",")[0]) for p in canary.d.split()]
    assert xs[0] == view.plot_left and xs[-1] == view.plot_right
    assert view.window_x == view.plot_left + 0.8 * (view.plot_right - view.plot_left)
    assert view.y_ticks[0].label == "0 ms" and view.y_ticks[-1].position == view.plot_top


def test_nan_breaks_the_line_and_no_series_means_no_data() -> None:
    broken = chart(
        [Series("canary", "c", [(0, 1.0), (1, math.nan), (2, 1.0), (3, 2.0)])], Unit.RATIO, 0, 3, window_start=2
    )
    assert broken.paths[0].d.count("M") == 2
    empty = chart([Series("canary", "c", []), Series("stable", "s", [(0, math.nan)])], Unit.RATIO, 0, 10, 5)
    assert not empty.has_data
    assert empty.missing == ("canary", "stable")
    assert empty.paths == ()
    assert [p.name for p in empty.legend] == ["canary", "stable"]
    assert all(t.position <= HEIGHT - MARGIN_BOTTOM for t in empty.y_ticks)


def test_a_subnormal_threshold_does_not_break_the_scale() -> None:
    view = chart([Series("threshold", "t", [(0, 5e-324), (10, 5e-324)])], Unit.SECONDS, 0, 10, 5)
    assert view.y_ticks[-1].label == "1 s"  # a unit scale, not a division by zero


def test_distribution_on_a_log_axis_with_the_slo_marked() -> None:
    points = [(0.01, 0.2), (0.1, 0.9), (1.0, 1.0), (math.inf, 1.0)]
    view = distribution([Series("canary", "c", points), Series("stable", "s", [])], slo=0.1, quantile=0.95)
    [canary] = view.paths  # the stable has no data: no line, still in the legend
    assert [p.name for p in view.legend] == ["canary", "stable"]
    xs = [float(p[1:].split(",")[0]) for p in canary.d.split()]
    assert xs == [view.plot_left, (view.plot_left + view.plot_right) / 2, view.plot_right]  # log spacing
    assert view.slo.position == xs[1] and view.slo.label == "SLO 100 ms"
    assert view.quantile.position == view.plot_bottom - 0.95 * (view.plot_bottom - view.plot_top)
    assert [t.label for t in view.x_ticks] == ["10 ms", "100 ms", "1 s"]


def test_interval_keeps_its_order_and_room_for_the_limit() -> None:
    view = interval(low=1.12, high=1.44, estimate=1.27, limit=1.1, unit=Unit.FACTOR)
    assert 0 < view.limit.position < view.low < view.estimate < view.high < view.width
    assert view.limit.label == "limit 1.1x"


def test_strip_has_a_cell_per_step() -> None:
    cells = strip([(60, "pass"), (120, "fail"), (180, "inconclusive")], start=30, end=210, step=60)
    assert [c.verdict for c in cells] == ["pass", "fail", "inconclusive"]
    assert cells[0].x == MARGIN_LEFT and cells[1].x == cells[0].x + cells[0].width
    assert cells[2].x + cells[2].width == WIDTH - MARGIN_RIGHT
