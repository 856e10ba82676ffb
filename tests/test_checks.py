"""Checks as data: limits with their defaults, the number each check reads, the built-in set."""

from __future__ import annotations

import math

import pytest

from app.judge.builtin_checks import CHECKS
from app.judge.checks import Bound, Check, Limit, Method, Mode, Source, Statistic
from app.judge.units import Unit
from tests.support.observations import observed

BY_NAME = {check.name: check for check in CHECKS}


def test_builtin_checks_keep_their_names_and_fields() -> None:
    """Users' successConditions, scripts and AnalysisTemplates read these names."""
    assert [c.name for c in CHECKS] == [
        "canary_traffic",
        "canary_current",
        "p95_latency",
        "error_rate",
        "p95_latency_vs_stable",
        "error_rate_vs_stable",
    ]
    assert [c.limit.field for c in CHECKS] == [
        "min_requests",
        "current_share_min",
        "p95_max_seconds",
        "error_rate_max",
        "p95_ratio_max",
        "error_rate_delta_max",
    ]
    assert len({c.limit.field for c in CHECKS}) == len(CHECKS)
    assert [c.name for c in CHECKS if c.gate] == ["canary_traffic"]


def test_each_check_reads_its_number() -> None:
    data = observed(requests=1000, error_rate=0.02, p95=0.2)
    assert BY_NAME["canary_traffic"].value(data) == 1000
    assert BY_NAME["error_rate"].value(data) == pytest.approx(0.02)
    assert BY_NAME["p95_latency"].value(data) == pytest.approx(0.2)
    assert BY_NAME["p95_latency"].value(observed(p95=None)) is None
    assert BY_NAME["error_rate"].value(observed(requests=0)) is None  # NaN is no data


def test_what_a_check_measures_follows_from_its_statistic() -> None:
    p95 = BY_NAME["p95_latency_vs_stable"]
    assert (p95.source, p95.unit, p95.measure_key) == (Source.LATENCY, Unit.SECONDS, "p95_seconds")
    errors = BY_NAME["error_rate"]
    assert (errors.source, errors.unit, errors.measure_key) == (Source.REQUESTS, Unit.RATIO, "error_rate")
    assert BY_NAME["canary_traffic"].unit is Unit.COUNT


def test_a_limit_may_default_differently_per_mode() -> None:
    plain = Limit("x", "x", default=1.2, minimum=1, maximum=2)
    assert plain.default_for(Mode.THRESHOLD) == plain.default_for(Mode.STATISTICAL) == 1.2
    tolerant = Limit("x", "x", default=1.2, statistical_default=1.1, minimum=1, maximum=2)
    assert (tolerant.default_for(Mode.THRESHOLD), tolerant.default_for(Mode.STATISTICAL)) == (1.2, 1.1)


@pytest.mark.parametrize(
    ("bound", "text"),
    [
        (Bound.AT_MOST, "canary <= 300 ms"),
        (Bound.AT_LEAST, "canary >= 300 ms"),
        (Bound.RATIO_OF_STABLE, "canary <= stable x 0.3"),
        (Bound.STABLE_PLUS, "canary <= stable + 300 ms"),
    ],
)
def test_rules_read_plainly(bound: Bound, text: str) -> None:
    assert bound.describe(0.3, Unit.SECONDS) == text


def test_a_p99_check_keys_its_own_number() -> None:
    p99 = Check(
        "p99", "P99 latency", Statistic.QUANTILE, Bound.AT_MOST, Method.BINOMIAL, BY_NAME["p95_latency"].limit, 0.99
    )
    assert p99.measure_key == "p99_seconds"
    assert math.isclose(p99.value(observed(p95=0.2)), observed(p95=0.2)[Source.LATENCY].quantile(0.99))


def test_each_rule_reads_as_the_check_holds_it() -> None:
    assert BY_NAME["error_rate_vs_stable"].rule(0.005) == "canary <= stable + 0.50%"
    # The current traffic's limit is a share of a share, not a count.
    current = BY_NAME["canary_current"]
    assert current.rule(0.1) == "canary's share in the window >= 0.1 x its share since it started"
    assert BY_NAME["canary_current"].limit_moves and not BY_NAME["p95_latency"].limit_moves
