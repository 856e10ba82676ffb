"""The judgment: the checks and what was measured for each version in, a verdict out.

Pure code: no I/O, no framework. The engine knows gates, baselines and how outcomes combine
into a verdict; what each check measures and how it decides is the check's own data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum

from app.judge import recent, statistical_rules, threshold_rules
from app.judge.checks import Check, Method, Mode, Observed, Statistic
from app.judge.findings import Evidence, Finding, Outcome
from app.judge.units import format_value
from app.promql import duration_text


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


class Guarantee(StrEnum):
    """Over what the chance of aborting a canary within its limits is held to alpha."""

    # Every answer Argo may ever ask for, on the canary's data since it started (which only grows).
    ANYTIME = "anytime"
    # A run of `polls` answers, each on a sliding window, that aborts beyond `failure_limit` fails.
    FIXED_POLLS = "fixed_polls"


@dataclass(frozen=True)
class Confidence:
    """How sure mode=statistical must be, for a whole AnalysisRun rather than one answer.

    `anytime`: the fail side of each check is an anytime-valid test (app/judge/sequential.py)
    on data that only grows, so however many answers a run takes, a healthy canary is failed by
    any of them with probability at most alpha; split evenly over the checks that can fail, and
    each check's share in halves: one for the canary's whole life, one spread over its recent spans
    (app/judge/recent.py).

    `fixed_polls`: Argo asks `polls` times and aborts when more than `failure_limit` answers
    fail. With each answer failing a healthy canary with probability at most a, the number of
    false fails N has E[N] <= polls * a whatever the dependence between overlapping windows, so
    by Markov's inequality P(N > failure_limit) <= polls * a / (failure_limit + 1). Setting that
    to `alpha` and splitting it over the checks gives each check its level per answer.
    """

    alpha: float = 0.01
    polls: int = 5
    failure_limit: int = 1
    pass_confidence: float = 0.6
    guarantee: Guarantee = Guarantee.ANYTIME

    def levels(self, checks: Sequence[Check]) -> statistical_rules.Levels:
        """What each check may spend on the data judged: the whole life (anytime), or one answer."""
        if self.guarantee is Guarantee.ANYTIME:
            return statistical_rules.Levels(self.per_check(checks) * WHOLE_LIFE, self.pass_confidence, anytime=True)
        per_answer = self.alpha * (self.failure_limit + 1) / self.polls
        return statistical_rules.Levels(per_answer / _can_fail(checks), self.pass_confidence)

    def per_check(self, checks: Sequence[Check]) -> float:
        return self.alpha / _can_fail(checks)

    def recent_alpha(self, checks: Sequence[Check]) -> float | None:
        """What each check may spend over all its recent spans together; None without them (fixed polls)."""
        if self.guarantee is not Guarantee.ANYTIME:
            return None
        return self.per_check(checks) * (1 - WHOLE_LIFE)


# Under `anytime`, the share of each check's alpha spent on the canary's whole life; the rest goes to its
# recent spans.
WHOLE_LIFE = 0.5


def _can_fail(checks: Sequence[Check]) -> int:
    # Point comparisons (a gate, a user's plain number) have no sampling error to budget for.
    return sum(1 for check in checks if check.method is not Method.POINT) or 1


@dataclass(frozen=True)
class CheckResult:
    check: Check
    outcome: Outcome
    canary: float | None
    stable: float | None
    limit: float | None  # the effective limit the canary was held to; None when not judged
    rule: str
    reason: str
    evidence: Evidence | None = None
    span: recent.Span | None = None  # the recent span that decided; None: the data judged as a whole
    whole: Evidence | None = None  # when a recent span decided: the evidence of the data judged as a whole


@dataclass(frozen=True)
class Judgment:
    verdict: Verdict
    reasons: tuple[str, ...]
    checks: tuple[CheckResult, ...]


def judge(
    checks: Sequence[Check],
    limits: Mapping[str, float],
    canary: Observed,
    stable: Observed,
    window: str,
    mode: Mode = Mode.STATISTICAL,
    confidence: Confidence = Confidence(),
    timeline: recent.Timeline | None = None,
) -> Judgment:
    """`limits` holds each check's limit by check name. `timeline`: the canary's and the stable's recent
    minutes, whose spans are judged beside the whole (statistical mode, `anytime`)."""
    levels = confidence.levels(checks)
    recent_alpha = confidence.recent_alpha(checks) if mode is Mode.STATISTICAL else None

    def held(check: Check, limit: float, version: Observed, baseline: Observed) -> Finding:
        if mode is Mode.THRESHOLD:
            return threshold_rules.classify(check, limit, version, baseline, window)
        return statistical_rules.classify(check, limit, version, baseline, window, levels)

    at_alpha = span_rule(levels.pass_confidence)

    def classify(check: Check, limit: float) -> tuple[Finding, recent.RecentFinding | None]:
        finding = held(check, limit, canary, stable)
        if finding.outcome in (Outcome.FAIL, Outcome.SKIPPED) or timeline is None or recent_alpha is None:
            return finding, None
        return finding, recent.judged(check, limit, timeline, recent_alpha, at_alpha)

    no_baseline = _no_baseline(checks, limits, stable, window)
    lately_failed: dict[str, recent.RecentFinding] = {}

    def stable_held(check: Check) -> Finding:
        """The stable held to a check on the data the canary failed it on."""
        lately = lately_failed.get(check.name)
        if lately is None:
            return held(check, limits[check.name], stable, {})
        span = lately.span
        return at_alpha(check, limits[check.name], lately.stable, {}, duration_text(span.seconds), span.alpha)

    results: list[CheckResult] = []
    blocked_by: str | None = None
    for check in sorted(checks, key=lambda c: not c.gate):
        limit = limits[check.name]
        lately = None
        if blocked_by is not None:
            finding = Finding(Outcome.INCONCLUSIVE, None, f"not judged: {blocked_by}")
        elif check.bound.relative and no_baseline:
            finding = Finding(Outcome.SKIPPED, None, no_baseline)
        else:
            finding, lately = classify(check, limit)
        if check.gate and finding.outcome is not Outcome.PASS:
            blocked_by = finding.reason
        result = CheckResult(
            check,
            finding.outcome,
            check.value(canary),
            check.value(stable),
            finding.limit,
            check.rule(limit),
            finding.reason,
            finding.evidence,
        )
        if lately is not None:
            lately_failed[check.name] = lately
            result = _failed_lately(result, lately, timeline)
        results.append(result)
    if mode is Mode.STATISTICAL:
        results = [_not_the_canarys_breach(result, results, stable_held) for result in results]
    return Judgment(_verdict(results), _reasons(results), tuple(results))


def span_rule(pass_confidence: float) -> recent.Rule:
    """A check's statistical rule on a recent span, at the span's own alpha: at any look within it."""

    def at_alpha(check: Check, limit: float, version: Observed, baseline: Observed, span: str, alpha: float) -> Finding:
        spent = statistical_rules.Levels(alpha, pass_confidence, anytime=True)
        return statistical_rules.classify(check, limit, version, baseline, span, spent)

    return at_alpha


def _failed_lately(whole: CheckResult, lately: recent.RecentFinding, timeline: recent.Timeline | None) -> CheckResult:
    """A check that failed on a recent span: the span's numbers and evidence, and a reason that says
    since when, and how the canary's life looked as a whole."""
    check, span, finding = whole.check, lately.span, lately.finding
    assert timeline is not None
    life = timeline.end - timeline.canary_start
    before = (
        f"over its whole life ({_minutes(life)}) the canary's {check.title} is "
        f"{format_value(whole.canary, check.unit)}, which alone {_WHOLE[whole.outcome]}"
    )
    reason = f"in the last {_minutes(span.seconds)} (since {_clock(span.since)}): {finding.reason}; {before}"
    return replace(
        whole,
        outcome=Outcome.FAIL,
        canary=check.value(lately.canary),
        stable=check.value(lately.stable),
        limit=finding.limit,
        reason=reason,
        evidence=finding.evidence,
        span=span,
        whole=whole.evidence,
    )


_WHOLE = {
    Outcome.PASS: "passes",
    Outcome.INCONCLUSIVE: "does not decide",
    Outcome.SKIPPED: "is not judged",
    Outcome.FAIL: "fails",
}


def _minutes(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def _clock(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%H:%M UTC")


def _not_the_canarys_breach(
    result: CheckResult, results: Sequence[CheckResult], stable_held: Callable[[Check], Finding]
) -> CheckResult:
    """A canary that breaks an SLO the stable breaks too, and is no worse than the stable, did not
    cause the breach: aborting it would not end it (and would block the fix). Inconclusive, not
    fail, and never a silent pass: a person decides."""
    check = result.check
    if result.outcome is not Outcome.FAIL or check.compared_in is None:
        return result
    comparison = next((r for r in results if r.check.name == check.compared_in), None)
    if comparison is None or comparison.outcome not in (Outcome.PASS, Outcome.INCONCLUSIVE):
        return result
    stable_finding = stable_held(check)
    if stable_finding.outcome is not Outcome.FAIL:
        return result
    reason = (
        f"the service is out of its SLO already: {_breach(check, stable_finding, result.stable)}; "
        f"the canary's {format_value(result.canary, check.unit)} is no worse than the stable's "
        f"({comparison.reason}), so it is not the cause and is not aborted for it"
    )
    return replace(result, outcome=Outcome.INCONCLUSIVE, reason=reason)


def _breach(check: Check, stable_held: Finding, stable_value: float | None) -> str:
    """How far the stable is out of the SLO, in the check's terms."""
    shown = format_value(stable_value, check.unit)
    evidence = stable_held.evidence
    limit = format_value(stable_held.limit, check.unit)
    if evidence is None or evidence.estimate is None:
        return f"the stable's {check.title} {shown} breaks the SLO of {limit} too"
    if check.statistic is Statistic.QUANTILE:
        return (
            f"the stable's {check.title} {shown} breaks the SLO of {limit} too (about "
            f"{evidence.estimate:.1%} of its requests took longer, {evidence.limit:.0%} allowed)"
        )
    return f"the stable's {check.title} {shown} breaks the SLO of {limit} too"


def _no_baseline(checks: Sequence[Check], limits: Mapping[str, float], stable: Observed, window: str) -> str | None:
    """Why the stable cannot be compared with (a gate it does not pass), or None when it can."""
    for gate in (c for c in checks if c.gate):
        if threshold_rules.classify(gate, limits[gate.name], stable, {}, window).outcome is Outcome.PASS:
            continue
        value = gate.value(stable)
        what = "requests" if gate.statistic is Statistic.REQUESTS else f"{gate.title} data"
        if value is None:
            return f"skipped: no stable baseline (no stable {what} found in the last {window})"
        return (
            f"skipped: no stable baseline (the stable served {format_value(value, gate.unit)} "
            f"{what} in the last {window}, fewer than {limits[gate.name]:g})"
        )
    return None


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
