"""The engine on plain distributions: gates, baselines, how outcomes combine, the reasons."""

from __future__ import annotations

import pytest

from app.judge.builtin_checks import CHECKS
from app.judge.checks import Bound, Check, Limit, Method, Mode, Source, Statistic
from app.judge.findings import Outcome
from app.judge.judgment import Confidence, Guarantee, Verdict, judge
from tests.support.observations import lognormal, observed

LIMITS = {check.name: check.limit.default for check in CHECKS}


def outcomes(judgment) -> dict[str, Outcome]:
    return {result.check.name: result.outcome for result in judgment.checks}


def run(canary, stable, checks=CHECKS, **limits: float):
    """The engine's own logic (gates, baselines, combining) is the same in both modes: these tests
    use the threshold rules, whose outcomes are easy to foresee; the statistical rules have theirs."""
    return judge(checks, {**LIMITS, **limits}, canary, stable, "5m", Mode.THRESHOLD)


def test_healthy_canary_passes() -> None:
    judgment = run(observed(), observed())
    assert judgment.verdict is Verdict.PASS
    assert set(outcomes(judgment).values()) == {Outcome.PASS}
    assert judgment.reasons == ("all 6 checks passed",)


def test_each_result_carries_both_numbers_and_the_rule() -> None:
    judgment = run(observed(p95=0.2), observed(p95=0.1))
    [result] = [r for r in judgment.checks if r.check.name == "p95_latency_vs_stable"]
    assert result.canary == pytest.approx(0.2) and result.stable == pytest.approx(0.1)
    assert result.limit == pytest.approx(0.12)
    assert result.rule == "canary <= stable x 1.2"


def test_a_failure_outranks_inconclusive() -> None:
    judgment = run(observed(error_rate=0.05, p95=None), observed())
    assert outcomes(judgment)["p95_latency"] is Outcome.INCONCLUSIVE
    assert judgment.verdict is Verdict.FAIL
    assert judgment.reasons[0].startswith("canary error rate 5.00% exceeds")
    assert "no canary P95 latency data in the last 5m" in judgment.reasons


@pytest.mark.parametrize(
    ("requests", "phrase"),
    [
        (None, "no canary requests found in the last 5m"),
        (0, "served only 0 requests"),
        (49, "served only 49 requests"),
    ],
)
def test_too_little_canary_traffic_is_inconclusive_even_when_numbers_look_bad(
    requests: float | None, phrase: str
) -> None:
    canary = observed(requests=requests, error_rate=None if requests is None else 1.0, p95=9.0)
    judgment = run(canary, observed())
    assert judgment.verdict is Verdict.INCONCLUSIVE
    assert phrase in judgment.reasons[0]
    assert Outcome.FAIL not in outcomes(judgment).values()
    assert len(judgment.reasons) == 1  # the gate's reason, not four copies of it


def test_no_baseline_skips_the_relative_checks_and_says_why() -> None:
    judgment = run(observed(), observed(requests=10, p95=0.01))
    result = outcomes(judgment)
    assert judgment.verdict is Verdict.PASS
    assert result["p95_latency_vs_stable"] is Outcome.SKIPPED
    assert result["error_rate_vs_stable"] is Outcome.SKIPPED
    assert judgment.reasons == (
        "all 4 judged checks passed",
        "skipped: no stable baseline (the stable served 10 requests in the last 5m, fewer than 50)",
    )


def test_no_stable_at_all_still_fails_on_the_slo() -> None:
    judgment = run(observed(p95=0.5), observed(requests=None, error_rate=None, p95=None))
    assert judgment.verdict is Verdict.FAIL
    assert judgment.reasons[-1] == "skipped: no stable baseline (no stable requests found in the last 5m)"


def test_gates_are_judged_first_whatever_their_position() -> None:
    judgment = run(observed(requests=3, p95=5), observed(), checks=tuple(reversed(CHECKS)))
    assert judgment.verdict is Verdict.INCONCLUSIVE
    assert judgment.checks[0].check.gate


def test_limits_come_from_the_mapping_by_check_name() -> None:
    assert run(observed(p95=0.9), observed(), p95_latency=1, p95_latency_vs_stable=10).verdict is Verdict.PASS
    assert run(observed(), observed(), canary_traffic=5000).verdict is Verdict.INCONCLUSIVE


def test_a_new_check_is_data() -> None:
    p99 = Check(
        name="p99_latency",
        title="P99 latency",
        statistic=Statistic.QUANTILE,
        quantile=0.99,
        bound=Bound.AT_MOST,
        method=Method.BINOMIAL,
        limit=Limit("p99_max_seconds", "Canary P99 SLO.", default=0.05, minimum=0, maximum=60),
    )
    judgment = judge((*CHECKS, p99), {**LIMITS, "p99_latency": 0.05}, observed(), observed(), "5m", Mode.THRESHOLD)
    assert outcomes(judgment)["p99_latency"] is Outcome.FAIL
    assert "canary P99 latency" in judgment.reasons[0]
    assert len(judgment.checks) == len(CHECKS) + 1


# --- a service already out of its SLO -----------------------------------------------------------


def statistical(canary, stable, **limits: float):
    return judge(CHECKS, {**STATISTICAL_LIMITS, **limits}, canary, stable, "30m", Mode.STATISTICAL, Confidence())


STATISTICAL_LIMITS = {check.name: check.limit.default_for(Mode.STATISTICAL) for check in CHECKS}


def test_a_breach_the_stable_shares_is_not_the_canarys() -> None:
    """Both versions err 5 % against an SLO of 2 %: the canary is no worse than the stable, so it is
    not aborted for the breach (that would also block the fix), nor promoted: a person decides."""
    judgment = statistical(observed(20_000, 0.05), observed(200_000, 0.05))
    results = outcomes(judgment)
    assert results["error_rate_vs_stable"] is Outcome.PASS
    assert results["error_rate"] is Outcome.INCONCLUSIVE
    assert judgment.verdict is Verdict.INCONCLUSIVE
    [reason] = [r.reason for r in judgment.checks if r.check.name == "error_rate"]
    assert reason.startswith("the service is out of its SLO already: the stable's error rate 5.00% breaks the SLO")
    assert "the canary's 5.00% is no worse than the stable's" in reason
    assert "worse with 60% confidence, within the tolerated" in reason  # the comparison's own reason
    assert judgment.reasons[0] == reason


def test_the_same_for_latency_with_how_far_out_the_stable_is() -> None:
    canary = observed(20_000, 0.001) | {Source.LATENCY: lognormal(0.45, 20_000)}
    stable = observed(200_000, 0.001) | {Source.LATENCY: lognormal(0.45, 200_000)}
    judgment = statistical(canary, stable)
    [result] = [r for r in judgment.checks if r.check.name == "p95_latency"]
    assert result.outcome is Outcome.INCONCLUSIVE
    # True P95 450 ms: 20 % of a lognormal(sigma 0.5) takes longer than 300 ms; histogram_quantile reads 484 ms.
    assert "the stable's P95 latency 484 ms breaks the SLO of 300 ms too" in result.reason
    assert "(about 20.2% of its requests took longer, 5% allowed)" in result.reason


def test_a_canary_worse_than_a_failing_stable_still_fails() -> None:
    judgment = statistical(observed(20_000, 0.09), observed(200_000, 0.05))
    assert outcomes(judgment)["error_rate_vs_stable"] is Outcome.FAIL
    assert outcomes(judgment)["error_rate"] is Outcome.FAIL
    assert judgment.verdict is Verdict.FAIL


def test_a_stable_within_the_slo_leaves_the_canarys_breach_its_own() -> None:
    judgment = statistical(observed(20_000, 0.05), observed(200_000, 0.001))
    assert outcomes(judgment)["error_rate"] is Outcome.FAIL


def test_a_first_release_breaking_its_slo_fails() -> None:
    judgment = statistical(observed(20_000, 0.05), observed(requests=None))
    assert outcomes(judgment)["error_rate_vs_stable"] is Outcome.SKIPPED
    assert judgment.verdict is Verdict.FAIL


# --- how alpha is spent -------------------------------------------------------------------------


def test_anytime_spends_alpha_once_over_the_checks_half_on_the_whole_life() -> None:
    confidence = Confidence(alpha=0.01)
    levels = confidence.levels(CHECKS)
    # 4 checks can fail (not the gates): 0.0025 each, half on the canary's whole life, half on its recent spans.
    assert levels.anytime and levels.alpha == pytest.approx(0.00125)
    assert confidence.recent_alpha(CHECKS) == pytest.approx(0.00125)
    # polls and failure_limit do not enter: the bound holds for every answer, however many.
    assert Confidence(alpha=0.01, polls=500, failure_limit=0).levels(CHECKS).alpha == pytest.approx(0.00125)
    assert Confidence(alpha=0.01, guarantee=Guarantee.FIXED_POLLS).recent_alpha(CHECKS) is None


def test_fixed_polls_split_alpha_over_polls_and_checks() -> None:
    # P(more than failure_limit false fails) <= polls * a / (failure_limit + 1), shared by 4 checks.
    fixed = Guarantee.FIXED_POLLS
    assert Confidence(alpha=0.01, polls=5, failure_limit=1, guarantee=fixed).levels(CHECKS).alpha == pytest.approx(
        0.001
    )
    levels = Confidence(alpha=0.01, polls=10, failure_limit=0, guarantee=fixed).levels(CHECKS)
    assert levels.alpha == pytest.approx(0.00025) and not levels.anytime
