"""Chart geometry on plain numbers."""

from __future__ import annotations

import itertools
import math

from app.charts import (
    FONT_SIZE,
    HEIGHT,
    INTERVAL_WIDTH,
    MARGIN_BOTTOM,
    MARGIN_LEFT,
    MARGIN_RIGHT,
    STRIP_WIDTH,
    WIDTH,
    Label,
    Labelled,
    Mark,
    Series,
    chart,
    distribution,
    interval,
    label_at,
    spaced,
    strip,
    strip_view,
    text_width,
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


def extent(label: Label) -> tuple[float, float]:
    """Where a label runs, as wide as the layout takes it to be."""
    width = text_width(label.text)
    start = {"start": label.x, "middle": label.x - width / 2, "end": label.x - width}[label.anchor]
    return start, start + width


def test_a_label_stays_inside_its_picture() -> None:
    text = "≥ 3.72% with 99.75% confidence at any look"
    centred = label_at("fail", 160, 50, text, 2, 318)
    assert (centred.x, centred.anchor) == (160, "middle")
    # Near an edge it runs from its mark away from the edge, or, with no room for that, ends at the edge.
    short = label_at("fail", 20, 50, "≤ 6.17%", 2, 318)
    assert (short.anchor, short.x) == ("start", 20)
    for mark in (30, 310):
        start, end = extent(label_at("fail", mark, 50, text, 2, 318))
        assert start >= 2 and end <= 318, mark
    too_wide = label_at("fail", 300, 50, text * 2, 2, 318)
    assert (too_wide.anchor, too_wide.x) == ("end", 318)  # its end, at least, in the picture


def test_crowded_tick_labels_are_thinned() -> None:
    kept = spaced([Mark(position, f"{position} ms") for position in (0, 20, 35, 60, 200)])
    assert [m.position for m in kept] == [0, 60, 200]
    for before, after in itertools.pairwise(kept):
        assert after.position - before.position >= (text_width(before.label) + text_width(after.label)) / 2


def test_interval_labels_its_bounds_each_on_a_row_of_its_own() -> None:
    """However close two bounds are, their labels do not meet: each has its row, under the bar."""
    bounds = [Labelled("fail", 2.31, "≥ 2.31x with 99.75% confidence at any look"), Labelled("pass", 2.54, "≤ 2.54x")]
    view = interval(2.31, 2.54, 2.53, 1.1, Unit.FACTOR, limit_text="1.1x tolerated", labelled=bounds)
    limit, fail, passing = view.labels
    assert (limit.name, limit.text, limit.x) == ("limit", "1.1x tolerated", view.limit.position)
    assert limit.y < view.bar_y < fail.y - FONT_SIZE and fail.y + FONT_SIZE <= passing.y + 4
    assert view.height >= passing.y + 3 and view.width == INTERVAL_WIDTH
    for label in view.labels:
        start, end = extent(label)
        assert start >= 0 and end <= view.width, label


def test_pictures_are_drawn_at_their_own_size_with_a_readable_font() -> None:
    view = chart([Series("canary", "c", [(0, 1.0), (1, 2.0)])], Unit.SECONDS, 0, 1, 0)
    assert (view.width, view.height, view.font_size) == (WIDTH, HEIGHT, FONT_SIZE) and FONT_SIZE >= 12
    across = strip_view([(60, "pass"), (120, "fail")], start=30, end=150, step=60)
    assert (across.width, across.left, across.right) == (STRIP_WIDTH, MARGIN_LEFT, STRIP_WIDTH - MARGIN_RIGHT)
    assert across.cells[-1].x + across.cells[-1].width == across.right
