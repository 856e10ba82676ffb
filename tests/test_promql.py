"""Query building: structure fixed, values escaped, durations parsed the way Prometheus does."""

from __future__ import annotations

import pytest

from app import promql
from app.judgment import SIGNALS
from app.promql import Conventions


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("1d", 86400), ("1500ms", 1.5), ("2w", 14 * 86400)],
)
def test_duration_seconds(text: str, seconds: float) -> None:
    assert promql.duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "m", "5 m", "-5m", "5m1h", "5M", "1.5m", "5m]", "5m) or vector(1"])
def test_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError):
        promql.duration_seconds(text)


def test_queries_for_default_conventions() -> None:
    c = Conventions()
    assert promql.requests_query(c, "checkout", "canary", "5m") == (
        'sum(increase(http_requests_total{service="checkout",version="canary"}[5m]))'
    )
    assert promql.error_rate_query(c, "checkout", "canary", "5m") == (
        '(sum(rate(http_requests_total{service="checkout",version="canary",status=~"5.."}[5m])) or vector(0))'
        ' / sum(rate(http_requests_total{service="checkout",version="canary"}[5m]))'
    )
    assert promql.p95_query(c, "checkout", "canary", "5m") == (
        "histogram_quantile(0.95, sum by (le) "
        '(rate(http_request_duration_seconds_bucket{service="checkout",version="canary"}[5m])))'
    )


@pytest.mark.parametrize(
    "value",
    ['x"} or vector(1) #', "a\\", "a\nb", "a,b", "", "é", "a" * 254, "a}", "a b"],
)
def test_label_values_outside_the_charset_never_reach_a_query(value: str) -> None:
    for signal in SIGNALS:
        with pytest.raises(ValueError):
            promql.signal_query(Conventions(), signal, value, "canary", "5m")
        with pytest.raises(ValueError):
            promql.signal_query(Conventions(), signal, "checkout", value, "5m")


def test_windows_are_checked_where_queries_are_built() -> None:
    with pytest.raises(ValueError):
        promql.requests_query(Conventions(), "checkout", "canary", "5m]) or vector(1")


def test_escaping_is_defence_in_depth() -> None:
    assert promql.escape_label_value('a"b\\c\nd') == 'a\\"b\\\\c\\nd'


def test_longest_allowed_value_is_accepted() -> None:
    value = "a." + "b" * 251
    assert f'service="{value}"' in promql.requests_query(Conventions(), value, "canary", "5m")
