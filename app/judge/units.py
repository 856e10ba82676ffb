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
