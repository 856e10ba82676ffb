"""mode=statistical: each check decided on the distributions, three ways.

`fail` only when the evidence says the canary is worse than the limit allows, at confidence
1 - alpha; `pass` only when it says the canary is within the limit, at `pass_confidence`;
otherwise `inconclusive`, with what would decide it. The tests are in `statistics.py` (one
look) and `sequential.py` (any number of looks at data that only grows).

Only the fail side spends alpha, so only it has two forms: `anytime` (the canary's data since
it started, a bound that holds at every look) and fixed polls (a window, alpha split over the
polls). A pass is a judgment at `pass_confidence` on the data in hand, the same in both.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

from scipy import special

from app.judge import sequential, shapes, statistics, threshold_rules
from app.judge.checks import Check, Method, Observed, Statistic
from app.judge.distributions import Histogram, NativeHistogram, Outcomes, on_shared_buckets
from app.judge.findings import Evidence, Finding, Outcome
from app.judge.units import Unit, format_value
from app.promql import duration_seconds


@dataclass(frozen=True)
class Levels:
    # Per check: the chance of failing a canary within its limit, at any look when `anytime`,
    # else per answer (the run's alpha split over its polls).
    alpha: float
    pass_confidence: float
    anytime: bool = False

    @property
    def fail_confidence(self) -> str:
        """How the fail side's confidence reads in a reason."""
        return f"{_conf(1 - self.alpha)} confidence{' at any look' if self.anytime else ''}"

    def share_low(self, k: float, n: float) -> float:
        """The share's lower bound a fail must clear."""
        if self.anytime:
            return sequential.share_lower_bound(k, n, self.alpha)
        return statistics.share_lower_bound(k, n, 1 - self.alpha)

    def share_high(self, k: float, n: float) -> float:
        """The share's upper bound a fail must clear, when lower is worse."""
        if self.anytime:
            return sequential.share_upper_bound(k, n, self.alpha)
        return statistics.share_upper_bound(k, n, 1 - self.alpha)

    def share_p_value(self, k: float, n: float, limit: float) -> float:
        """Of "the share is above `limit`"."""
        if self.anytime:
            return sequential.share_p_value(k, n, limit)
        return statistics.binomial_p_value(k, n, limit)


@dataclass(frozen=True)
class Context:
    check: Check
    limit: float
    window: str
    levels: Levels


def classify(check: Check, limit: float, canary: Observed, stable: Observed, window: str, levels: Levels) -> Finding:
    if check.method is Method.POINT:  # exact counts, or a number the user holds to a limit as it is
        return threshold_rules.classify(check, limit, canary, stable, window)
    context = Context(check, limit, window, levels)
    canary_data, stable_data = canary.get(check.source), stable.get(check.source)
    if check.bound.relative and not _has_data(stable_data):
        return Finding(Outcome.SKIPPED, None, f"skipped: the stable has no {check.title} data to compare with")
    if not _has_data(canary_data):
        return Finding(Outcome.INCONCLUSIVE, None, f"no canary {check.title} data in the last {window}")
    finding = RULES[check.method, check.statistic](context, canary_data, stable_data)
    if check.bound.relative and finding.limit is not None:
        # The answer's `threshold` stays in the canary's unit: the stable's number with the limit applied.
        effective = threshold_rules.effective_limit(check.bound, limit, check.value(stable))
        return dataclasses.replace(finding, limit=effective)
    return finding


def _has_data(data: Histogram | Outcomes | None) -> bool:
    return data is not None and data.total > 0


# --- against an SLO ------------------------------------------------------------------------


def latency_slo(context: Context, measured: Histogram | NativeHistogram, _: object) -> Finding:
    """ "P95 <= 300 ms" is "at most 5 % of requests slower than 300 ms", judged on that share.

    Exact when a bucket bound is the SLO; between two bounds the share is bounded by a model of
    the shape inside the SLO's bucket (app/judge/shapes.py): a fail must clear the limit with the
    fewest slower requests the model allows, a pass with the most."""
    check, slo, levels = context.check, context.limit, context.levels
    [canary] = on_shared_buckets(measured)
    assert check.quantile is not None
    allowed = 1 - check.quantile
    slower = shapes.slower_than(canary, slo)
    n = canary.total
    low = levels.share_low(slower.low, n)
    high = statistics.share_upper_bound(slower.high, n, levels.pass_confidence)
    estimate = slower.estimate / n
    evidence = Evidence(
        method=f"{'e-process' if levels.anytime else 'clopper-pearson'}, {slower.model}",
        estimate=estimate,
        low=low,
        high=high,
        limit=allowed,
        unit=Unit.RATIO,
        effect=estimate - allowed,
        effect_name=f"share over the SLO minus the {allowed:.0%} allowed",
        p_value=levels.share_p_value(slower.low, n, allowed),
        alpha=levels.alpha,
        pass_confidence=levels.pass_confidence,
        anytime=levels.anytime,
    )
    p_shown = format_value(check.value({check.source: measured}), check.unit)
    head = f"canary {check.title} {p_shown}"
    slo_text = format_value(slo, Unit.SECONDS)
    shares = _slower_text(slower, slo_text)
    if low > allowed:
        reason = (
            f"{head} exceeds the SLO of {slo_text}: {shares}; "
            f"at least {_pct(low)} with {levels.fail_confidence}, more than the {allowed:.0%} allowed"
        )
        return Finding(Outcome.FAIL, slo, reason, evidence)
    if high <= allowed:
        reason = (
            f"{head} is within the SLO of {slo_text}: {shares}; "
            f"at most {_pct(high)} with {_conf(levels.pass_confidence)} confidence, under the {allowed:.0%} allowed"
        )
        return Finding(Outcome.PASS, slo, reason, evidence)
    if slower.low / n <= allowed < slower.high / n and slower.model is not shapes.Model.EXACT:
        reason = (
            f"{head}: {shares}, so the buckets cannot tell whether more than {allowed:.0%} took longer than "
            f"{slo_text}; {_exact_hint(slower, slo_text)}"
        )
        return Finding(Outcome.INCONCLUSIVE, slo, reason, evidence)
    # Toward fail if even the fewest slower requests the model allows are too many, else toward pass.
    if slower.low / n > allowed:
        needed = _needed_for_share(slower.low / n, low, allowed, n)
    else:
        needed = _needed_for_share(slower.high / n, high, allowed, n)
    more = _more(needed, n, context.window)
    reason = f"{head}: {shares} ({_pct(low)} to {_pct(high)}), too close to the {allowed:.0%} allowed to tell; {more}"
    return Finding(Outcome.INCONCLUSIVE, slo, reason, evidence)


def _slower_text(slower: shapes.SlowerThan, slo_text: str) -> str:
    """How many canary requests took longer than the SLO, and how that was known."""
    n = slower.total
    if slower.model is shapes.Model.EXACT:
        return f"{_pct(slower.estimate / n)} of canary requests took longer than {slo_text} (a bucket bound)"
    between = f"{slo_text} lies between bucket bounds {_bound_text(slower.below)} and {_bound_text(slower.above)}"
    if slower.model is shapes.Model.BRACKET:
        return (
            f"{between}: {_pct(slower.low / n)} of canary requests took longer than "
            f"{_bound_text(slower.above)} and {_pct(slower.high / n)} longer than {_bound_text(slower.below)}"
        )
    return (
        f"{between}; modelling the shape inside that bucket, about {_pct(slower.estimate / n)} of canary "
        f"requests took longer than {slo_text} ({_pct(slower.low / n)} to {_pct(slower.high / n)} for any shape "
        f"that does not turn inside it)"
    )


def _exact_hint(slower: shapes.SlowerThan, slo_text: str) -> str:
    if slower.model is shapes.Model.BRACKET:
        return f"set the SLO to a bucket bound or add a bucket at {slo_text}"
    return f"a bucket bound at {slo_text} would count it exactly"


def share_slo(context: Context, canary: Outcomes, _: object) -> Finding:
    """A share of the canary's requests (errors; a user check's events over trials) against a fixed
    limit, with exact bounds (Clopper-Pearson; the beta-binomial e-process at any look): at most
    the limit, or at least it when lower is worse."""
    check, limit, levels = context.check, context.limit, context.levels
    n, events, lower_is_worse = canary.total, canary.errors, check.bound.lower_is_worse
    rate = events / n
    # The worse side's bound must clear the limit at 1 - alpha to fail; the other, at pass_confidence, to pass.
    if lower_is_worse:
        low = statistics.share_lower_bound(events, n, levels.pass_confidence)
        high = levels.share_high(events, n)
        p_value = levels.share_p_value(n - events, n, 1 - limit)
        failed, passed = high < limit, low >= limit
    else:
        low = levels.share_low(events, n)
        high = statistics.share_upper_bound(events, n, levels.pass_confidence)
        p_value = levels.share_p_value(events, n, limit)
        failed, passed = low > limit, high <= limit
    evidence = Evidence(
        method="e-process" if levels.anytime else "clopper-pearson",
        estimate=rate,
        low=low,
        high=high,
        limit=limit,
        unit=Unit.RATIO,
        effect=rate - limit,
        effect_name=f"{check.title} minus the SLO",
        p_value=p_value,
        alpha=levels.alpha,
        pass_confidence=levels.pass_confidence,
        anytime=levels.anytime,
    )
    head = f"canary {check.title} {format_value(rate, Unit.RATIO)}"
    slo_text = f"the SLO of {format_value(limit, Unit.RATIO)}"
    counts = _counts(check, events, n)
    fail_bound, pass_bound = (high, low) if lower_is_worse else (low, high)
    if failed:
        side = "at most" if lower_is_worse else "at least"
        verb = "falls short of" if lower_is_worse else "exceeds"
        reason = f"{head} {verb} {slo_text}: {side} {_pct(fail_bound)} with {levels.fail_confidence} ({counts})"
        return Finding(Outcome.FAIL, limit, reason, evidence)
    if passed:
        side = "at least" if lower_is_worse else "at most"
        verb = "meets" if lower_is_worse else "is within"
        reason = (
            f"{head} {verb} {slo_text}: {side} {_pct(pass_bound)} with {_conf(levels.pass_confidence)} "
            f"confidence ({counts})"
        )
        return Finding(Outcome.PASS, limit, reason, evidence)
    toward_fail = rate < limit if lower_is_worse else rate > limit
    more = _more(_needed_for_share(rate, fail_bound if toward_fail else pass_bound, limit, n), n, context.window)
    reason = f"{head} is too close to {slo_text} to tell ({_pct(low)} to {_pct(high)}, {counts}); {more}"
    return Finding(Outcome.INCONCLUSIVE, limit, reason, evidence)


def _counts(check: Check, events: float, n: float) -> str:
    if check.statistic is Statistic.ERROR_RATE:
        return f"{format_value(events, Unit.COUNT)} errors in {format_value(n, Unit.COUNT)} requests"
    return f"{format_value(events, Unit.COUNT)} of {format_value(n, Unit.COUNT)}"


# --- against the stable ----------------------------------------------------------------------


def latency_vs_stable(
    context: Context, canary_measured: Histogram | NativeHistogram, stable_measured: Histogram | NativeHistogram
) -> Finding:
    """Is the canary's latency distribution more than `limit` times the stable's?"""
    factor, levels = context.limit, context.levels
    canary, stable = on_shared_buckets(canary_measured, stable_measured)
    bounds = tuple(b for b in canary.bounds if b in set(stable.bounds))
    if len(bounds) < 2:
        reason = "skipped: the canary's and the stable's histograms share no bucket bounds to compare on"
        return Finding(Outcome.SKIPPED, None, reason)
    canary_counts = canary.coarsened(bounds).per_bucket()
    stable_counts = stable.coarsened(bounds).per_bucket()
    at_limit = statistics.brunner_munzel(statistics.scaled(bounds, stable_counts, factor), canary_counts)
    plain = statistics.brunner_munzel(stable_counts, canary_counts)
    p_value, fail_confidence = at_limit.p_value(), 1 - levels.alpha
    if levels.anytime:
        # The rank statistic is asymptotically normal in the canary's requests (the stable's add to
        # its information as a harmonic mean does): its critical value becomes the mixture boundary's.
        looked = canary.total * stable.total / (canary.total + stable.total)
        fail_confidence = float(special.ndtr(sequential.normal_boundary(looked, levels.alpha)))
        p_value = sequential.normal_p_value(-float(special.ndtri(p_value)), looked)
    shift = statistics.latency_factor(bounds, canary_counts, stable_counts, fail_confidence, levels.pass_confidence)
    evidence = Evidence(
        method="brunner-munzel, anytime" if levels.anytime else "brunner-munzel",
        estimate=shift.estimate,
        low=shift.lower,
        high=shift.upper,
        limit=factor,
        unit=Unit.FACTOR,
        effect=plain.effect,
        effect_name="probability a canary request is slower than a stable one (0.5: no difference)",
        p_value=p_value,
        alpha=levels.alpha,
        pass_confidence=levels.pass_confidence,
        anytime=levels.anytime,
    )
    head = f"canary latency is {_factor(shift.estimate)} the stable's"
    tolerated = f"the tolerated {_factor(factor)}"
    if shift.lower > factor:
        reason = (
            f"{head} (at least {_factor(shift.lower)} with {levels.fail_confidence}), beyond {tolerated}; "
            f"a canary request is slower than a stable one {plain.effect:.0%} of the time"
        )
        return Finding(Outcome.FAIL, factor, reason, evidence)
    if shift.upper <= factor:
        reason = (
            f"{head} (at most {_factor(shift.upper)} with {_conf(levels.pass_confidence)} confidence), "
            f"within {tolerated}"
        )
        return Finding(Outcome.PASS, factor, reason, evidence)
    more = _more(_needed_for_factor(shift, factor, canary.total), canary.total, context.window)
    reason = (
        f"{head} ({_factor(shift.lower)} to {_factor(shift.upper)}), not shown within {tolerated} nor beyond it; {more}"
    )
    return Finding(Outcome.INCONCLUSIVE, factor, reason, evidence)


def share_vs_stable(context: Context, canary: Outcomes, stable: Outcomes) -> Finding:
    """Is the canary's share (errors; a user check's events over trials) more than `limit` worse
    than the stable's? Miettinen-Nurminen's score test on the difference, the worse way round; at
    any look, its anytime boundary and the canary's exact e-process together."""
    check, margin, levels = context.check, context.limit, context.levels
    worse, better = (stable, canary) if check.bound.lower_is_worse else (canary, stable)
    counts = (worse.errors, worse.total, better.errors, better.total)
    # Everything below is "how much worse the canary is", positive when it is worse.
    high = statistics.difference_bound(*counts, levels.pass_confidence, upper=True)
    observed = worse.error_rate - better.error_rate
    if levels.anytime:
        low, p_value = _worse_than_stable_anytime(check, canary, stable, margin, levels.alpha)
    else:
        low = statistics.difference_bound(*counts, 1 - levels.alpha, upper=False)
        p_value = statistics.difference_p_value(*counts, margin)
    evidence = Evidence(
        method="miettinen-nurminen and e-process, anytime" if levels.anytime else "miettinen-nurminen",
        estimate=observed,
        low=low,
        high=high,
        limit=margin,
        unit=Unit.RATIO,
        effect=canary.error_rate / stable.error_rate if stable.error_rate > 0 else None,
        effect_name=f"canary {check.title} divided by the stable's",
        p_value=p_value,
        alpha=levels.alpha,
        pass_confidence=levels.pass_confidence,
        anytime=levels.anytime,
    )
    head = (
        f"canary {check.title} {format_value(canary.error_rate, Unit.RATIO)} vs the stable's "
        f"{format_value(stable.error_rate, Unit.RATIO)}"
    )
    tolerated = f"the tolerated {_points(margin)}"
    if low > margin:
        reason = (
            f"{head}: {_points(observed)} worse (at least {_points(low)} with {levels.fail_confidence}), "
            f"beyond {tolerated}"
        )
        return Finding(Outcome.FAIL, margin, reason, evidence)
    if high <= margin:
        reason = (
            f"{head}: at most {_points(high)} worse with {_conf(levels.pass_confidence)} confidence, within {tolerated}"
        )
        return Finding(Outcome.PASS, margin, reason, evidence)
    needed = _needed_for_difference(observed, low if observed > margin else high, margin, canary.total)
    more = _more(needed, canary.total, context.window)
    reason = (
        f"{head}: between {_points(low)} and {_points(high)} worse, not shown within {tolerated} nor beyond it; {more}"
    )
    return Finding(Outcome.INCONCLUSIVE, margin, reason, evidence)


def _worse_than_stable_anytime(
    check: Check, canary: Outcomes, stable: Outcomes, margin: float, alpha: float
) -> tuple[float, float]:
    """How much worse the canary's share is at least, at any look, and the p-value at the margin.

    Two bounds, the lower taken. Miettinen-Nurminen's score, inverted at the normal-mixture boundary
    (an asymptotic confidence sequence), carries the stable's own sampling error; at small counts its
    normal tail is too kind to a canary's first few errors, where the canary's exact e-process
    against the stable's share plus the margin is not. A fail needs both: calibrated at rare errors
    too, and at scale as powerful as the score test alone (tests/test_statistical_rules.py)."""
    worse, better = (stable, canary) if check.bound.lower_is_worse else (canary, stable)
    counts = (worse.errors, worse.total, better.errors, better.total)
    looked = canary.total * stable.total / (canary.total + stable.total)
    boundary = sequential.normal_boundary(looked, alpha)
    score_low = statistics.difference_bound(*counts, float(special.ndtr(boundary)), upper=False)
    score_p = sequential.normal_p_value(statistics.difference_score(*counts, margin), looked)

    def bad(version: Outcomes) -> float:  # the requests that count against a version
        return version.ok if check.bound.lower_is_worse else version.errors

    stable_share = bad(stable) / stable.total
    exact_low = sequential.share_lower_bound(bad(canary), canary.total, alpha) - stable_share
    exact_p = sequential.share_p_value(bad(canary), canary.total, min(stable_share + margin, 1.0))
    return min(score_low, exact_low), max(score_p, exact_p)


Rule = Callable[[Context, Histogram | Outcomes, Histogram | Outcomes | None], Finding]
RULES: dict[tuple[Method, Statistic], Rule] = {
    (Method.BINOMIAL, Statistic.QUANTILE): latency_slo,  # type: ignore[dict-item]
    (Method.BINOMIAL, Statistic.ERROR_RATE): share_slo,  # type: ignore[dict-item]
    (Method.BINOMIAL, Statistic.RATIO): share_slo,  # type: ignore[dict-item]
    (Method.RANK_SHIFT, Statistic.QUANTILE): latency_vs_stable,  # type: ignore[dict-item]
    (Method.TWO_PROPORTIONS, Statistic.ERROR_RATE): share_vs_stable,  # type: ignore[dict-item]
    (Method.TWO_PROPORTIONS, Statistic.RATIO): share_vs_stable,  # type: ignore[dict-item]
}


# --- how much more data would decide it ----------------------------------------------------


def _needed_for_share(share: float, bound: float, limit: float, n: float) -> float | None:
    """Requests at which the bound on the side of the estimate would clear the limit: its distance
    from the estimate shrinks as 1/sqrt(n), or as 1/n when not one request is on the wrong side."""
    gap, width = abs(limit - share), abs(bound - share)
    if gap == 0:
        return None
    if share == 0:
        return n * width / gap
    return n * (width / gap) ** 2


def _needed_for_difference(observed: float, bound: float, margin: float, n: float) -> float | None:
    """Canary requests at which the bound on the side of the estimate would clear the margin; the
    stable's own uncertainty is ignored (it serves many times the canary's traffic)."""
    gap, width = abs(margin - observed), abs(bound - observed)
    return None if gap == 0 else n * (width / gap) ** 2


def _needed_for_factor(shift: statistics.ShiftEstimate, factor: float, n: float) -> float | None:
    estimate = math.log(shift.estimate)
    gap = abs(estimate - math.log(factor))
    if gap == 0:
        return None
    above = estimate > math.log(factor)
    # The interval's half-width on the deciding side, in standard errors, scales as 1/sqrt(n).
    half_width = (estimate - math.log(shift.lower)) if above else (math.log(shift.upper) - estimate)
    return n * (half_width / gap) ** 2


def _more(needed: float | None, n: float, window: str) -> str:
    if needed is None:
        return "more canary traffic alone would not decide it"
    more = max(needed - n, 1)
    rate = n / duration_seconds(window)
    text = f"about {_round(more)} more canary requests would decide it"
    if rate <= 0:
        return text
    text += f" ({_minutes(more / rate / 60)} at the current {rate:.2g} rps"
    if needed > rate * duration_seconds(window):
        text += f"; more than a {window} window holds: a window of {_minutes(needed / rate / 60)} would"
    return text + ")"


# --- words -------------------------------------------------------------------------------


def _pct(share: float | None) -> str:
    if share is None:
        return "n/a"
    return f"{share * 100:.2g}%" if share * 100 < 10 else f"{share * 100:.3g}%"


def _points(difference: float) -> str:
    return f"{difference * 100:+.2g} pp" if abs(difference) * 100 < 10 else f"{difference * 100:+.3g} pp"


def _factor(value: float) -> str:
    if value >= statistics.MAX_FACTOR:
        return f"{statistics.MAX_FACTOR:g}x or more"
    if value <= statistics.MIN_FACTOR:
        return f"{statistics.MIN_FACTOR:g}x or less"
    return f"{value:.2f}x"


def _conf(confidence: float) -> str:
    return f"{confidence * 100:.6g}%"


def _bound_text(bound: float | None) -> str:
    return "0" if bound is None else format_value(bound, Unit.SECONDS)


def _bracket(bounds: tuple[float, ...], value: float) -> tuple[float | None, float | None]:
    """The highest finite bound at or below value and the lowest at or above it (None: none)."""
    finite = [b for b in bounds if math.isfinite(b)]
    exact = [b for b in finite if math.isclose(b, value, rel_tol=1e-9)]
    if exact:
        return exact[0], exact[0]
    below = max((b for b in finite if b < value), default=None)
    above = min((b for b in finite if b > value), default=None)
    return below, above


def _round(count: float) -> str:
    magnitude = 10 ** max(0, math.floor(math.log10(max(count, 1))) - 1)
    return f"{round(count / magnitude) * magnitude:,.0f}"


def _minutes(minutes: float) -> str:
    if minutes < 1:
        return "less than a minute"
    if minutes < 90:
        return f"about {minutes:.0f} minute{'s' if round(minutes) > 1 else ''}"
    return f"about {minutes / 60:.1f} hours"
