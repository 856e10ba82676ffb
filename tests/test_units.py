"""How values read."""

from __future__ import annotations

import math

import pytest

from app.judge.units import Unit, format_value


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (0.1234, Unit.SECONDS, "123 ms"),
        (0.0004, Unit.SECONDS, "0.4 ms"),
        (2.5, Unit.SECONDS, "2.5 s"),
        (0.0125, Unit.RATIO, "1.25%"),
        (12345.6, Unit.COUNT, "12,346"),
        (math.inf, Unit.SECONDS, "+Inf"),
        (None, Unit.RATIO, "n/a"),
        (math.nan, Unit.COUNT, "n/a"),
    ],
)
def test_format_value(value: float | None, unit: Unit, text: str) -> None:
    assert format_value(value, unit) == text
