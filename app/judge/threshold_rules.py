"""mode=threshold: point estimates held to fixed numbers, as the first version judged.

The canary's number (a P95 computed like `histogram_quantile`, an error rate, a count) passes
when it is within the limit, whatever the amount of data behind it beyond the traffic gate.
"""

from __future__ import annotations

import math

from app.judge.checks import Bound, Check, Observed, Statistic
from app.judge.findings import Finding, Outcome
from app.judge.units import Unit, format_value


def classify(check: Check, limit: float, canary: Observed, stable: Observed, window: str) -> Finding:
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
