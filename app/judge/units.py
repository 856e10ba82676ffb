"""Units of what checks measure, and how a value of each reads to a person."""

from __future__ import annotations

import math
from enum import StrEnum


class Unit(StrEnum):
    SECONDS = "seconds"
    RATIO = "ratio"  # a share, shown as a percentage
    COUNT = "count"
    FACTOR = "factor"  # a multiple, shown as 1.25x


def format_value(value: float | None, unit: Unit) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if unit is Unit.SECONDS:
        return f"{value * 1000:.3g} ms" if value < 1 else f"{value:.3g} s"
    if unit is Unit.RATIO:
        return f"{value * 100:.2f}%"
    if unit is Unit.FACTOR:
        return f"{value:.3g}x"
    return f"{value:,.0f}"


def format_difference(value: float | None, unit: Unit) -> str:
    """A signed difference between two values. Of shares, in percentage points: 0.5 % more errors than
    the stable's 1 % is +0.50 pp; "+0.50%" would read as half a percent more than the stable's."""
    if value is None or math.isnan(value):
        return "n/a"
    if unit is Unit.RATIO and math.isfinite(value):
        return f"{value * 100:+.2f} pp"
    return ("-" if value < 0 else "+") + format_value(abs(value), unit)


def format_confidence(confidence: float) -> str:
    """A confidence level as the reasons give it: 99.75%, 60%."""
    return f"{confidence * 100:.6g}%"


def format_count(count: float, noun: str) -> str:
    """A whole number of things: 1 request, 6 requests, 1,240 requests."""
    shown = format_value(count, Unit.COUNT)
    return f"{shown} {noun}" if shown == "1" else f"{shown} {noun}s"
