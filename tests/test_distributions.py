"""Distributions: the P95 shown is exactly Prometheus' `histogram_quantile`, computed from the counts."""

from __future__ import annotations

import math

import httpx
import pytest

from app.demo.local_prometheus import LocalPrometheus
from app.judge.builtin_checks import CHECKS
from app.judge.checks import Source
from app.judge.distributions import Histogram, NativeHistogram, Outcomes, on_shared_buckets
from app.measurement import Plan, Role, distributions
from app.prometheus import Vector
from tests.support.histograms import CONVENTIONS, EDGE_CASES

INF = math.inf
QUANTILES = (0.0, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0)


def instant(prometheus: LocalPrometheus, query: str) -> Vector:
    body = httpx.post(f"{prometheus.url}/api/v1/query", data={"query": query}, timeout=10).json()
    assert body["status"] == "success", body
    return Vector(tuple((item["metric"], float(item["value"][1])) for item in body["data"]["result"]))


def same(ours: float, theirs: float) -> bool:
    if math.isnan(theirs) or math.isinf(theirs):
        return math.isnan(ours) if math.isnan(theirs) else ours == theirs
    return ours == pytest.approx(theirs, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("service", EDGE_CASES)
def test_quantiles_agree_with_prometheus_on_real_data(prometheus: LocalPrometheus, service: str) -> None:
    """The same bucket counts, quantiled by Prometheus and by us: empty buckets, the +Inf bucket,
    no observations (NaN), counts that are not monotonic, a bucket bound of 0, fractional counts."""
    latency = [check for check in CHECKS if check.source == Source.LATENCY]
    plan = Plan.build(latency, CONVENTIONS, service, {Role.CANARY: "canary", Role.STABLE: "stable"}, "5m")
    query = plan.queries[Source.LATENCY]
    [(_, count)] = instant(prometheus, f"count({query})").samples
    assert count == len(EDGE_CASES[service])  # every bucket series made it into the TSDB
    histogram = distributions(plan, Source.LATENCY, instant(prometheus, query).samples)[Role.CANARY]
    assert isinstance(histogram, Histogram)
    for q in QUANTILES:
        [(_, theirs)] = instant(prometheus, f"histogram_quantile({q}, {query})").samples
        assert same(histogram.quantile(q), theirs), (service, q, histogram.quantile(q), theirs)


def test_interpolation_inside_the_bucket() -> None:
    histogram = Histogram.from_buckets([(0.1, 50), (0.2, 90), (0.4, 100), (INF, 100)])
    assert histogram.quantile(0.5) == pytest.approx(0.1)
    assert histogram.quantile(0.7) == pytest.approx(0.15)
    assert histogram.quantile(0.95) == pytest.approx(0.3)
    assert histogram.quantile(0.25) == pytest.approx(0.05)  # the first bucket starts at 0


def test_special_cases() -> None:
    in_inf = Histogram.from_buckets([(0.1, 10), (0.5, 10), (INF, 100)])
    assert in_inf.quantile(0.95) == 0.5  # the top finite bound
    assert math.isnan(Histogram.from_buckets([(0.1, 0), (INF, 0)]).quantile(0.95))
    assert math.isnan(Histogram.from_buckets([(INF, 5)]).quantile(0.5))
    assert in_inf.quantile(-0.1) == -INF and in_inf.quantile(1.1) == INF
    assert math.isnan(in_inf.quantile(math.nan))


def test_buckets_are_prepared_as_prometheus_prepares_them() -> None:
    histogram = Histogram.from_buckets([(INF, 12), (0.25, 8), (0.1, 10), (0.5, 11), (0.5, 1)])
    assert histogram.bounds == (0.1, 0.25, 0.5, INF)
    assert histogram.cumulative == (10, 10, 12, 12)  # sorted, 0.5 merged, the dip at 0.25 lifted
    assert histogram.per_bucket() == (10, 0, 2, 0)
    assert histogram.above(0.1) == 2
    with pytest.raises(ValueError, match=r"\+Inf"):
        Histogram.from_buckets([(0.1, 1), (0.5, 2)])


def test_the_bucket_the_quantile_lies_in() -> None:
    histogram = Histogram.from_buckets([(0.1, 50), (0.25, 94), (0.5, 99), (INF, 100)])
    assert histogram.quantile_bucket(0.5) == (0.0, 0.1)
    assert histogram.quantile_bucket(0.95) == (0.25, 0.5)
    assert histogram.quantile_bucket(0.999) == (0.5, INF)
    assert Histogram.from_buckets([(0.1, 0), (INF, 0)]).quantile_bucket(0.95) is None


def test_outcomes() -> None:
    assert Outcomes(ok=97, errors=3).error_rate == pytest.approx(0.03)
    assert Outcomes(ok=97, errors=3).total == 100
    assert math.isnan(Outcomes(ok=0, errors=0).error_rate)


def test_native_histogram_quantile_interpolates_in_the_bucket_reaching_the_rank() -> None:
    # Exponential buckets (schema 0: edges double), empty ones left out as the API leaves them out.
    native = NativeHistogram(((0.5, 1.0, 10.0), (1.0, 2.0, 70.0), (4.0, 8.0, 20.0)), count=100.0)
    assert native.quantile(0.5) == pytest.approx(1.0 + 1.0 * 40 / 70)
    assert native.quantile(0.95) == pytest.approx(4.0 + 4.0 * 15 / 20)  # the gap (2, 4] is skipped
    assert native.quantile_bucket(0.95) == (4.0, 8.0)
    assert math.isnan(NativeHistogram((), 0.0).quantile(0.5))
    assert native.quantile(1.5) == INF


def test_native_zero_bucket_starts_at_zero_when_all_else_is_positive() -> None:
    native = NativeHistogram(((-0.001, 0.001, 50.0), (0.5, 1.0, 50.0)), count=100.0)
    assert native.quantile(0.25) == pytest.approx(0.0005)


def test_native_histograms_on_shared_classic_buckets() -> None:
    canary = NativeHistogram(((0.5, 1.0, 10.0), (1.0, 2.0, 90.0)), count=100.0)
    stable = NativeHistogram(((0.25, 0.5, 5.0), (0.5, 1.0, 95.0)), count=100.0)
    as_canary, as_stable = on_shared_buckets(canary, stable)
    assert as_canary.bounds == as_stable.bounds == (0.25, 0.5, 1.0, 2.0, INF)
    assert as_canary.cumulative == (0.0, 0.0, 10.0, 100.0, 100.0)
    assert as_stable.cumulative == (0.0, 5.0, 100.0, 100.0, 100.0)
    classic = Histogram.from_buckets([(1.0, 3), (INF, 4)])
    assert on_shared_buckets(classic, classic) == (classic, classic)
