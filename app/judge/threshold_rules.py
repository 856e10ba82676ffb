"""mode=threshold: point estimates held to fixed numbers, as the first version judged.

The canary's number (a P95 computed like `histogram_quantile`, an error rate, a count) passes
when it is within the limit, whatever the amount of data behind it beyond the traffic gate.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from app.judge.checks import Bound, Check, Measured, Observed, Source, Statistic
from app.judge.distributions import Outcomes, RecentTraffic
from app.judge.findings import Finding, Outcome
from app.judge.units import Unit, format_value
from app.promql import duration_text


def classify(check: Check, limit: float, canary: Observed, stable: Observed, window: str) -> Finding:
    if check.statistic is Statistic.CURRENT_REQUESTS:
        return current(check, limit, canary, stable, window)
    canary_value, stable_value = check.value(canary), check.value(stable)
    if check.bound.relative and stable_value is None:
        return Finding(Outcome.SKIPPED, None, f"skipped: the stable has no {check.title} data to compare with")
    effective = effective_limit(check.bound, limit, stable_value)
    if canary_value is None:
        if check.statistic is Statistic.REQUESTS:
            reason = f"no canary requests found in the last {window} (no matching series)"
        else:
            reason = f"no canary {check.title} data in the last {window}"
        return Finding(Outcome.INCONCLUSIVE, effective, reason)

    unit = check.unit
    shown = format_value(canary_value, unit)
    limit_text = _limit_text(check, effective, limit, stable_value)
    if _holds(check.bound, canary_value, effective):
        verb = "meets" if check.bound.lower_is_worse else "is within"
        return Finding(Outcome.PASS, effective, f"canary {check.title} {shown} {verb} {limit_text}")
    if check.gate:
        reason = (
            f"canary served only {shown} requests in the last {window}; "
            f"at least {format_value(effective, unit)} are needed to judge it"
        )
        return Finding(Outcome.INCONCLUSIVE, effective, reason)
    verb = "falls short of" if check.bound.lower_is_worse else "exceeds"
    return Finding(Outcome.FAIL, effective, f"canary {check.title} {shown} {verb} {limit_text}")


def current(check: Check, limit: float, canary: Observed, stable: Observed, window: str) -> Finding:
    """Is the canary still served? Judged on everything since it started, a canary whose traffic stopped
    would be passed on what it served before; a window in which it served nothing, or far less than its
    share of the traffic, passes nothing. Never a fail: no traffic is no evidence of harm either."""
    now, life = canary.get(Source.CURRENT), canary.get(Source.REQUESTS)
    if not isinstance(life, Outcomes) or life.total == 0:
        return Finding(Outcome.INCONCLUSIVE, None, f"no canary requests found in the last {window}")
    if not isinstance(now, RecentTraffic):  # the data judged are a window ending now: current already
        return Finding(Outcome.PASS, None, f"the data judged are the last {window}: current")
    stable_now, stable_life = stable.get(Source.CURRENT), stable.get(Source.REQUESTS)
    stable_requests = stable_now.requests if isinstance(stable_now, RecentTraffic) else 0.0
    stable_total = stable_life.total if isinstance(stable_life, Outcomes) else 0.0
    last = _last_window(now.seconds)
    if now.requests == 0:
        return Finding(Outcome.INCONCLUSIVE, None, _silent(now, stable_now, last))
    share = now.requests / (now.requests + stable_requests)
    past = life.total / (life.total + stable_total)
    needed = limit * past * (now.requests + stable_requests)
    counts = f"{_count(now.requests)} of {last}'s {_count(now.requests + stable_requests)} requests"
    if _holds(Bound.AT_LEAST, now.requests, needed):
        shares = f"{format_value(share, Unit.RATIO)}; {format_value(past, Unit.RATIO)} over the data judged"
        return Finding(Outcome.PASS, needed, f"the canary served {counts} ({shares})")
    reason = (
        f"the canary's share of the traffic fell to {format_value(share, Unit.RATIO)} in {last} ({counts}), "
        f"from {format_value(past, Unit.RATIO)} over the data judged; {limit:g} of that share, "
        f"{_count(needed)} requests, would be current evidence: pods out of the mesh, or its weight set to "
        "zero? Not passed on what it served before"
    )
    return Finding(Outcome.INCONCLUSIVE, needed, reason)


def _silent(canary: RecentTraffic, stable: Measured | None, last: str) -> str:
    since = _since(canary.last_served, canary.seconds)
    if not isinstance(stable, RecentTraffic) or stable.requests == 0:
        stable_since = _since(stable.last_served, stable.seconds) if isinstance(stable, RecentTraffic) else ""
        return (
            f"neither version served a request in {last} (the canary {since}"
            f"{f', the stable {stable_since}' if stable_since else ''}): no current evidence to pass it on"
        )
    meanwhile = f"{_count(stable.meanwhile)} requests" if stable.meanwhile is not None else "requests"
    return (
        f"no canary requests in {last}: silent {since}, while the stable served {meanwhile}; "
        "not passed on what it served before"
    )


def _since(last_served: float | None, seconds: float) -> str:
    if last_served is None:
        return "for longer than the recent minutes kept"
    return f"since {datetime.fromtimestamp(last_served, UTC).strftime('%H:%M UTC')}"


def _last_window(seconds: float) -> str:
    return f"the last {duration_text(seconds)}"


def _count(value: float) -> str:
    return format_value(value, Unit.COUNT)


def effective_limit(bound: Bound, limit: float, stable: float | None) -> float:
    """The number the canary is held to: the limit itself, or applied to the stable's number."""
    if not bound.relative:
        return limit
    assert stable is not None
    if bound in (Bound.RATIO_OF_STABLE, Bound.FRACTION_OF_STABLE):
        return stable * limit
    return stable + limit if bound is Bound.STABLE_PLUS else stable - limit


def _holds(bound: Bound, canary: float, limit: float) -> bool:
    # A value computed from rates can land a rounding error past a limit it equals.
    if math.isclose(canary, limit, rel_tol=1e-9, abs_tol=1e-12):
        return True
    return canary >= limit if bound.lower_is_worse else canary <= limit


def _limit_text(check: Check, effective: float, limit: float, stable: float | None) -> str:
    unit: Unit = check.unit
    stable_text, effective_text = format_value(stable, unit), format_value(effective, unit)
    if check.bound in (Bound.RATIO_OF_STABLE, Bound.FRACTION_OF_STABLE):
        return f"{limit:g} x stable ({stable_text}) = {effective_text}"
    if check.bound in (Bound.STABLE_PLUS, Bound.STABLE_MINUS):
        sign = "-" if check.bound is Bound.STABLE_MINUS else "+"
        return f"stable ({stable_text}) {sign} {format_value(limit, unit)} = {effective_text}"
    if check.bound is Bound.AT_LEAST:
        return f"the minimum of {effective_text}"
    return f"the SLO of {effective_text}"
