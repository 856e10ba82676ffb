"""The built-in checks. Data only: the engine reads these and names none of them."""

from __future__ import annotations

from app.judge.checks import Bound, Check, Limit, Method, Statistic

CHECKS: tuple[Check, ...] = (
    Check(
        name="canary_traffic",
        title="request count",
        statistic=Statistic.REQUESTS,
        bound=Bound.AT_LEAST,
        method=Method.POINT,
        limit=Limit(
            field="min_requests",
            description="Requests a version needs in the window to be judged.",
            default=50,
            minimum=1,
            maximum=1_000_000_000,
            integer=True,
        ),
        gate=True,
    ),
    Check(
        name="canary_current",
        title="current traffic",
        statistic=Statistic.CURRENT_REQUESTS,
        bound=Bound.AT_LEAST,
        method=Method.POINT,
        limit=Limit(
            field="current_share_min",
            description="The least part of its share of the traffic the canary must still get in the last window "
            "to be passed on its data (0.1: a tenth); a canary that served nothing in it is never passed.",
            default=0.1,
            minimum=0,
            maximum=1,
        ),
        rule_text="canary's share in the window >= {limit:g} x its share since it started",
    ),
    Check(
        name="p95_latency",
        title="P95 latency",
        statistic=Statistic.QUANTILE,
        quantile=0.95,
        bound=Bound.AT_MOST,
        method=Method.BINOMIAL,
        limit=Limit(
            field="p95_max_seconds",
            description="Canary P95 SLO in seconds.",
            default=0.3,
            minimum=0,
            exclusive_minimum=True,
            maximum=3600,
        ),
        compared_in="p95_latency_vs_stable",
    ),
    Check(
        name="error_rate",
        title="error rate",
        statistic=Statistic.ERROR_RATE,
        bound=Bound.AT_MOST,
        method=Method.BINOMIAL,
        limit=Limit(
            field="error_rate_max",
            description="Canary error-rate SLO, 0..1.",
            default=0.02,
            minimum=0,
            maximum=1,
        ),
        compared_in="error_rate_vs_stable",
    ),
    Check(
        name="p95_latency_vs_stable",
        title="P95 latency",
        statistic=Statistic.QUANTILE,
        quantile=0.95,
        bound=Bound.RATIO_OF_STABLE,
        method=Method.RANK_SHIFT,
        limit=Limit(
            field="p95_ratio_max",
            description="Canary latency may be at most this times the stable's.",
            default=1.2,
            statistical_default=1.1,
            minimum=1,
            maximum=100,
        ),
    ),
    Check(
        name="error_rate_vs_stable",
        title="error rate",
        statistic=Statistic.ERROR_RATE,
        bound=Bound.STABLE_PLUS,
        method=Method.TWO_PROPORTIONS,
        limit=Limit(
            field="error_rate_delta_max",
            description="Canary error rate may top the stable's by this, 0..1.",
            default=0.01,
            statistical_default=0.005,
            minimum=0,
            maximum=1,
        ),
    ),
)
