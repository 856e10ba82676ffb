"""bench/calibrate_week.py: the figures it compares calibrate's with, and how it compares them."""

from __future__ import annotations

import re

import pytest
from scipy import stats

from bench.calibrate_week import CONFIDENCE, REFERENCE, interval, overlap
from tests.support.servers import ROOT

HEALTHY_ROW = re.compile(r"^\| healthy \| >=3 rps \| (fresh|warm) \| (\d+) \| ([\d.]+) \| ([\d.]+) \|", re.MULTILINE)


@pytest.mark.parametrize(("count", "runs"), [(0, 119), (1, 119), (11, 1439), (49, 49)])
def test_the_interval_is_clopper_pearsons(count: int, runs: int) -> None:
    tail = (1 - CONFIDENCE) / 2
    low = stats.beta.ppf(tail, count, runs - count + 1) if count else 0.0
    high = stats.beta.ppf(1 - tail, count + 1, runs - count) if count < runs else 1.0
    assert interval(count, runs) == pytest.approx((low, high), abs=1e-9)


def test_intervals_overlap_only_where_they_share_a_share() -> None:
    assert overlap((0.0, 0.02), (0.01, 0.05)) and overlap((0.01, 0.05), (0.0, 0.02))
    assert not overlap((0.0, 0.02), (0.021, 0.05)) and not overlap((0.3, 0.4), (0.0, 0.1))


def test_the_step_reference_is_the_verdict_quality_table_of_healthy_canaries_at_3_rps_or_more() -> None:
    """The healthy rows at >= 3 rps of the step template's table in bench/README.md ("Verdict quality"), fresh and
    warm together: what the week's A/A is held to."""
    rows = HEALTHY_ROW.findall((ROOT / "bench" / "README.md").read_text())
    fresh, warm = (next(row for row in rows if row[0] == age) for age in ("fresh", "warm"))
    runs = int(fresh[1]) + int(warm[1])
    paused = round(float(fresh[3]) * int(fresh[1]) / 100) + round(float(warm[3]) * int(warm[1]) / 100)
    aborted = round(float(fresh[2]) * int(fresh[1]) / 100) + round(float(warm[2]) * int(warm[1]) / 100)
    assert REFERENCE["step"] == {"aborted": (aborted, runs), "paused": (paused, runs)}
