"""How values read."""

from __future__ import annotations

import math

import pytest

from app.judge.units import Unit, format_confidence, format_count, format_difference, format_value


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


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (0.0575, Unit.RATIO, "+5.75 pp"),  # a difference of shares, in points: not "+5.75%" of the stable's
        (-0.0011, Unit.RATIO, "-0.11 pp"),
        (0.0, Unit.RATIO, "+0.00 pp"),
        (-0.25, Unit.SECONDS, "-250 ms"),
        (0.4, Unit.FACTOR, "+0.4x"),
        (None, Unit.RATIO, "n/a"),
    ],
)
def test_format_difference(value: float | None, unit: Unit, text: str) -> None:
    assert format_difference(value, unit) == text


def test_confidences_and_counts_read_as_the_reasons_write_them() -> None:
    assert [format_confidence(c) for c in (0.9975, 0.6, 0.999)] == ["99.75%", "60%", "99.9%"]
    assert [format_count(n, "request") for n in (1, 6.0466, 1240)] == ["1 request", "6 requests", "1,240 requests"]
