"""The judgment: measured numbers and thresholds in, checks and a verdict out.

Pure code: no I/O, no framework. A check is data (which signal, which bound, which
threshold); adding one means adding a `CheckSpec`, not a branch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from enum import StrEnum


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


class Outcome(StrEnum):
    """What one check concluded; `skipped` checks do not count towards the verdict."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    SKIPPED = "skipped"


class Unit(StrEnum):
    SECONDS = "seconds"
    RATIO = "ratio"
    COUNT = "count"


@dataclass(frozen=True)
class Signal:
    """One number measured for each version; `key` names the query that measures it."""

    key: str
    title: str
    unit: Unit


REQUESTS = Signal("requests", "request count", Unit.COUNT)
ERROR_RATE = Signal("error_rate", "error rate", Unit.RATIO)
P95_LATENCY = Signal("p95_seconds", "P95 latency", Unit.SECONDS)
SIGNALS = (REQUESTS, ERROR_RATE, P95_LATENCY)


class Bound(StrEnum):
    """How the canary's value is held against the threshold (and the stable's value)."""

    AT_LEAST = "at_least"  # canary >= threshold
    AT_MOST = "at_most"  # canary <= threshold
    RATIO_OF_STABLE = "ratio_of_stable"  # canary <= stable * threshold
    STABLE_PLUS = "stable_plus"  # canary <= stable + threshold

    @property
    def relative(self) -> bool:
        return self in (Bound.RATIO_OF_STABLE, Bound.STABLE_PLUS)

    def limit(self, threshold: float, stable: float | None) -> float:
        if self is Bound.RATIO_OF_STABLE:
            assert stable is not None
            return stable * threshold
        if self is Bound.STABLE_PLUS:
            assert stable is not None
            return stable + threshold
        return threshold

    def holds(self, canary: float, limit: float) -> bool:
        # A value computed from rates can land a rounding error past a threshold it equals.
        if math.isclose(canary, limit, rel_tol=1e-9, abs_tol=1e-12):
            return True
        return canary >= limit if self is Bound.AT_LEAST else canary <= limit

    def describe(self, threshold: float, unit: Unit) -> str:
        if self is Bound.RATIO_OF_STABLE:
            return f"canary <= stable x {threshold:g}"
        if self is Bound.STABLE_PLUS:
            return f"canary <= stable + {format_value(threshold, unit)}"
        sign = ">=" if self is Bound.AT_LEAST else "<="
        return f"canary {sign} {format_value(threshold, unit)}"


@dataclass(frozen=True)
class Thresholds:
    p95_max_seconds: float = 0.3
    error_rate_max: float = 0.02
    p95_ratio_max: float = 1.2
    error_rate_delta_max: float = 0.01
    min_requests: int = 50

    def get(self, name: str) -> float:
        return float(getattr(self, name))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


@dataclass(frozen=True)
class CheckSpec:
    name: str
    signal: Signal
    bound: Bound
    threshold: str  # a field of Thresholds
    # A gate that does not pass stops every other check from being judged.
    gate: bool = False
    on_violation: Outcome = Outcome.FAIL


CHECKS: tuple[CheckSpec, ...] = (
    CheckSpec(
        "canary_traffic",
        REQUESTS,
        Bound.AT_LEAST,
        "min_requests",
        gate=True,
        on_violation=Outcome.INCONCLUSIVE,
    ),
    CheckSpec("p95_latency", P95_LATENCY, Bound.AT_MOST, "p95_max_seconds"),
    CheckSpec("error_rate", ERROR_RATE, Bound.AT_MOST, "error_rate_max"),
    CheckSpec("p95_latency_vs_stable", P95_LATENCY, Bound.RATIO_OF_STABLE, "p95_ratio_max"),
    CheckSpec("error_rate_vs_stable", ERROR_RATE, Bound.STABLE_PLUS, "error_rate_delta_max"),
)

Measurements = Mapping[Signal, float | None]


@dataclass(frozen=True)
class CheckResult:
    spec: CheckSpec
    outcome: Outcome
    canary: float | None
    stable: float | None
    threshold: float | None  # the effective limit the canary was held to
    rule: str
    reason: str


@dataclass(frozen=True)
class Judgment:
    verdict: Verdict
    reasons: tuple[str, ...]
    checks: tuple[CheckResult, ...]


def judge(
    thresholds: Thresholds,
    canary: Measurements,
    stable: Measurements,
    window: str,
    checks: Sequence[CheckSpec] = CHECKS,
) -> Judgment:
    canary = _known(canary)
    stable = _known(stable)
    stable_requests = stable.get(REQUESTS)
    baseline = stable_requests is not None and stable_requests >= thresholds.min_requests
    no_baseline = _no_baseline_reason(stable_requests, thresholds.min_requests, window)

    results: list[CheckResult] = []
    blocked_by: str | None = None
    for spec in sorted(checks, key=lambda s: not s.gate):
        if blocked_by is not None:
            result = _unjudged(spec, Outcome.INCONCLUSIVE, canary, stable, thresholds, f"not judged: {blocked_by}")
        elif spec.bound.relative and not baseline:
            result = _unjudged(spec, Outcome.SKIPPED, canary, stable, thresholds, no_baseline)
        else:
            result = _evaluate(spec, canary, stable, thresholds, window)
        if spec.gate and result.outcome is not Outcome.PASS:
            blocked_by = result.reason
        results.append(result)
    return Judgment(_verdict(results), _reasons(results), tuple(results))


def _known(values: Measurements) -> dict[Signal, float | None]:
    """NaN means "no data" (e.g. 0/0); infinity is real (latency past the top bucket)."""
    return {s: (None if v is None or math.isnan(v) else v) for s, v in values.items()}


def _evaluate(
    spec: CheckSpec,
    canary: Measurements,
    stable: Measurements,
    thresholds: Thresholds,
    window: str,
) -> CheckResult:
    signal, unit = spec.signal, spec.signal.unit
    threshold = thresholds.get(spec.threshold)
    canary_value, stable_value = canary.get(signal), stable.get(signal)
    rule = spec.bound.describe(threshold, unit)

    def result(outcome: Outcome, limit: float | None, reason: str) -> CheckResult:
        return CheckResult(spec, outcome, canary_value, stable_value, limit, rule, reason)

    if spec.bound.relative and stable_value is None:
        return result(Outcome.SKIPPED, None, f"skipped: the stable has no {signal.title} data to compare with")
    limit = spec.bound.limit(threshold, stable_value)
    if canary_value is None:
        if signal is REQUESTS:
            reason = f"no canary requests found in the last {window} (no matching series)"
        else:
            reason = f"no canary {signal.title} data in the last {window}"
        return result(Outcome.INCONCLUSIVE, limit, reason)

    shown = format_value(canary_value, unit)
    if spec.bound.holds(canary_value, limit):
        verb = "meets" if spec.bound is Bound.AT_LEAST else "is within"
        limit_text = _limit_text(spec, limit, threshold, stable_value)
        return result(Outcome.PASS, limit, f"canary {signal.title} {shown} {verb} {limit_text}")
    if signal is REQUESTS:
        reason = (
            f"canary served only {shown} requests in the last {window}; "
            f"at least {format_value(limit, unit)} are needed to judge it"
        )
    else:
        reason = f"canary {signal.title} {shown} exceeds {_limit_text(spec, limit, threshold, stable_value)}"
    return result(spec.on_violation, limit, reason)


def _limit_text(spec: CheckSpec, limit: float, threshold: float, stable: float | None) -> str:
    unit = spec.signal.unit
    if spec.bound is Bound.RATIO_OF_STABLE:
        return f"{threshold:g} x stable ({format_value(stable, unit)}) = {format_value(limit, unit)}"
    if spec.bound is Bound.STABLE_PLUS:
        return f"stable ({format_value(stable, unit)}) + {format_value(threshold, unit)} = {format_value(limit, unit)}"
    if spec.bound is Bound.AT_LEAST:
        return f"the minimum of {format_value(limit, unit)}"
    return f"the SLO of {format_value(limit, unit)}"


def _unjudged(
    spec: CheckSpec,
    outcome: Outcome,
    canary: Measurements,
    stable: Measurements,
    thresholds: Thresholds,
    reason: str,
) -> CheckResult:
    threshold = thresholds.get(spec.threshold)
    return CheckResult(
        spec,
        outcome,
        canary.get(spec.signal),
        stable.get(spec.signal),
        None,
        spec.bound.describe(threshold, spec.signal.unit),
        reason,
    )


def _no_baseline_reason(stable_requests: float | None, min_requests: int, window: str) -> str:
    if stable_requests is None:
        return f"skipped: no stable baseline (no stable requests found in the last {window})"
    return (
        f"skipped: no stable baseline (the stable served {format_value(stable_requests, Unit.COUNT)} "
        f"requests in the last {window}, fewer than {min_requests})"
    )


def _verdict(results: Sequence[CheckResult]) -> Verdict:
    outcomes = {r.outcome for r in results}
    if Outcome.FAIL in outcomes:
        return Verdict.FAIL
    if Outcome.INCONCLUSIVE in outcomes:
        return Verdict.INCONCLUSIVE
    return Verdict.PASS


def _reasons(results: Sequence[CheckResult]) -> tuple[str, ...]:
    """The first reason says why the verdict is what it is; the rest add context."""
    by_outcome = {o: [r for r in results if r.outcome is o] for o in Outcome}
    failed, unsure, skipped = (
        by_outcome[Outcome.FAIL],
        by_outcome[Outcome.INCONCLUSIVE],
        by_outcome[Outcome.SKIPPED],
    )
    reasons = [r.reason for r in failed]
    # "not judged" lines repeat the gate's reason; the gate itself already says it.
    reasons += [r.reason for r in unsure if not r.reason.startswith("not judged")]
    if not failed and not unsure:
        judged = len(results) - len(skipped)
        reasons.append(f"all {judged} judged checks passed" if skipped else f"all {judged} checks passed")
    reasons += list(dict.fromkeys(r.reason for r in skipped))
    return tuple(reasons)


def format_value(value: float | None, unit: Unit) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if unit is Unit.SECONDS:
        return f"{value * 1000:.3g} ms" if value < 1 else f"{value:.3g} s"
    if unit is Unit.RATIO:
        return f"{value * 100:.2f}%"
    return f"{value:,.0f}"
