"""The model of Argo the verdict-quality bench and `calibrate` replay runs with: templates read as Argo reads
them, and the phase a metric ends in, on hand-made sequences of measurements (app/calibration/argo.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from app.calibration.argo import (
    ERROR,
    ERROR_RETRY_SECONDS,
    FAILED,
    INCONCLUSIVE,
    OTHER_VERDICT,
    SUCCESSFUL,
    TEMPLATE,
    TEMPLATES,
    Measurement,
    Policy,
    argo_phase,
    keep_measuring,
    load_policy,
    measurement_of,
    phase_of_verdict,
    phase_so_far,
    policy_from_template,
)
from bench.judgment_quality import Study, request_body
from bench.populations import CANARY, STABLE, population

PHASE_OF_LETTER = {"S": SUCCESSFUL, "F": FAILED, "I": INCONCLUSIVE, "E": ERROR}
RUN_START = 1_800_000_000.0

# A background template: measured until the rollout ends, one fail aborts, inconclusive is no harm seen.
BACKGROUND_METRIC = {
    "name": "canary-analysis",
    "interval": "1m",
    "failureLimit": 0,
    "consecutiveErrorLimit": 10,
    "successCondition": 'result.verdict != "fail"',
    "failureCondition": 'result.verdict == "fail"',
    "provider": {
        "web": {
            "method": "POST",
            "url": "{{args.analyzer-url}}/analyze",
            "jsonBody": {
                "service": "{{args.service}}",
                "canary": "{{args.canary}}",
                "stable": "{{args.stable}}",
                "window": "{{args.window}}",
            },
        }
    },
}


def template(metric: dict, window: str = "5m") -> dict:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "t"},
        "spec": {
            "args": [{"name": "service"}, {"name": "canary"}, {"name": "stable"}, {"name": "window", "value": window}],
            "metrics": [metric],
        },
    }


def written(tmp_path: Path, metric: dict, window: str = "5m") -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(template(metric, window)))
    return path


def step_policy(**changes: object) -> Policy:
    """A step template like the shipped one, with `changes` to its Policy."""
    metric = {**BACKGROUND_METRIC, "count": 5, "failureLimit": 1, "inconclusiveLimit": 2}
    metric |= {"successCondition": 'result.verdict == "pass"', "consecutiveErrorLimit": 4}
    return dataclasses.replace(policy_from_template(template(metric)), **changes)


def background_policy(**changes: object) -> Policy:
    return dataclasses.replace(policy_from_template(template(BACKGROUND_METRIC)), **changes)


def run(letters: str, interval: float = 60.0) -> list[Measurement]:
    """Measurements as Argo takes them, from the run's start: S F I E by phase; the next one
    comes `interval` later, or 10 s after an Error."""
    measurements, at = [], RUN_START
    for letter in letters:
        measurements.append(Measurement(at, PHASE_OF_LETTER[letter], None))
        at += ERROR_RETRY_SECONDS if letter == "E" else interval
    return measurements


# --- reading templates ---------------------------------------------------------------------------


def test_a_background_template_is_read_from_a_file(tmp_path: Path) -> None:
    policy = load_policy(written(tmp_path, BACKGROUND_METRIC))
    assert policy.background and policy.count is None
    assert (policy.initial_delay, policy.interval, policy.window) == (0.0, 60.0, "5m")
    assert (policy.failure_limit, policy.inconclusive_limit, policy.consecutive_error_limit) == (0, 0, 10)
    assert policy.consecutive_success_limit is None
    assert policy.phase_of_verdict == {
        "pass": SUCCESSFUL,
        "inconclusive": SUCCESSFUL,
        "fail": FAILED,
        OTHER_VERDICT: SUCCESSFUL,
    }
    # The shipped one measures the same way (its jsonBody pins the guarantee besides).
    shipped = load_policy(TEMPLATES["background"])
    assert dataclasses.replace(shipped, json_body={}, arg_defaults={}, timeout=policy.timeout) == dataclasses.replace(
        policy, json_body={}, arg_defaults={}
    )
    assert shipped.json_body["guarantee"] == "anytime"


def test_the_shipped_step_template_is_read_as_it_stands() -> None:
    policy = load_policy(TEMPLATE)
    metric = yaml.safe_load(TEMPLATE.read_text())["spec"]["metrics"][0]
    assert policy.count == int(metric["count"]) and not policy.background
    assert policy.failure_limit == int(metric.get("failureLimit", 0))
    assert policy.inconclusive_limit == int(metric.get("inconclusiveLimit", 0))
    assert policy.phase_of_verdict["pass"] == SUCCESSFUL and policy.phase_of_verdict["fail"] == FAILED


def test_a_template_with_a_consecutive_success_limit_and_a_longer_schedule(tmp_path: Path) -> None:
    metric = {
        **BACKGROUND_METRIC,
        "initialDelay": "1m30s",
        "interval": "2m",
        "count": 10,
        "failureLimit": 2,
        "inconclusiveLimit": 3,
        "consecutiveSuccessLimit": 4,
        "successCondition": 'result.verdict == "pass"',
    }
    del metric["consecutiveErrorLimit"]
    policy = load_policy(written(tmp_path, metric, window="10m"))
    assert (policy.initial_delay, policy.interval, policy.count) == (90.0, 120.0, 10)
    assert (policy.failure_limit, policy.inconclusive_limit, policy.consecutive_success_limit) == (2, 3, 4)
    assert policy.consecutive_error_limit == 4  # Argo's default
    assert policy.window == "10m"
    schedule = policy.schedule()
    assert (schedule.initial_delay, schedule.interval, schedule.measurements) == (90.0, 120.0, 10)


@pytest.mark.parametrize(
    ("fields", "count"),
    [({"interval": "1m"}, None), ({"interval": "1m", "count": 0}, None), ({}, 1), ({"interval": "1m", "count": 3}, 3)],
)
def test_argo_effective_count(fields: dict, count: int | None) -> None:
    metric = {key: value for key, value in BACKGROUND_METRIC.items() if key != "interval"} | fields
    assert policy_from_template(template(metric)).count == count


def test_the_population_follows_the_template_schedule(tmp_path: Path) -> None:
    metric = {**BACKGROUND_METRIC, "initialDelay": "30s", "interval": "2m", "count": 7}
    policy = load_policy(written(tmp_path, metric))
    cases = population(2, seed=3, start=RUN_START, schedule=policy.schedule())
    for case in cases:
        assert len(case.polls) == 7
        assert case.polls[0] - case.run_start == pytest.approx(30.0)
        assert [b - a for a, b in zip(case.polls, case.polls[1:], strict=False)] == pytest.approx([120.0] * 6)


def test_the_request_body_is_the_templates_json_body_filled_in() -> None:
    policy = background_policy()
    case = population(1, seed=1, start=RUN_START)[0]
    body = request_body(case, policy, "statistical")
    assert body["service"] == case.service and (body["canary"], body["stable"]) == (CANARY, STABLE)
    assert body["window"] == "5m" and body["mode"] == "statistical"
    assert {"p95_max_seconds", "error_rate_max"} <= set(body)


# --- what a verdict counts as --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("success", "failure", "expected"),
    [
        ('result.verdict == "pass"', 'result.verdict == "fail"', (SUCCESSFUL, FAILED, INCONCLUSIVE)),
        ('result.verdict != "fail"', 'result.verdict == "fail"', (SUCCESSFUL, FAILED, SUCCESSFUL)),
        ('result.verdict == "pass"', None, (SUCCESSFUL, FAILED, FAILED)),  # no failure condition: not success
        (None, 'result.verdict == "fail"', (SUCCESSFUL, FAILED, SUCCESSFUL)),  # no success condition: not failure
        (None, None, (SUCCESSFUL, SUCCESSFUL, SUCCESSFUL)),
        ('result.verdict != "fail"', 'result.verdict != "pass"', (SUCCESSFUL, FAILED, FAILED)),  # failure wins
    ],
)
def test_verdicts_map_to_phases_as_argo_evaluates_the_conditions(
    success: str | None, failure: str | None, expected: tuple[str, str, str]
) -> None:
    phases = phase_of_verdict(success, failure)
    assert (phases["pass"], phases["fail"], phases["inconclusive"]) == expected


@pytest.mark.parametrize(
    "condition", ['result.verdict in ["pass"]', "result[0] >= 0.95", 'result.verdict == "PASS"', "true"]
)
def test_a_condition_the_bench_cannot_evaluate_is_refused(condition: str) -> None:
    with pytest.raises(ValueError, match="unsupported condition"):
        phase_of_verdict(condition, None)


def test_an_unknown_verdict_is_evaluated_by_the_conditions_and_reported() -> None:
    step = measurement_of(RUN_START, "maybe", step_policy())
    background = measurement_of(RUN_START, "maybe", background_policy())
    assert (step.phase, background.phase) == (INCONCLUSIVE, SUCCESSFUL)
    assert "unknown verdict" in step.detail
    assert measurement_of(RUN_START, "inconclusive", background_policy()).phase == SUCCESSFUL


# --- runs with a count ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("letters", "phase", "taken"),
    [
        ("SSSSS", SUCCESSFUL, 5),
        ("SFSSS", SUCCESSFUL, 5),  # one failure is within failureLimit 1
        ("SFSF", FAILED, 4),
        ("IISI", INCONCLUSIVE, 4),  # the third inconclusive is over inconclusiveLimit 2
        ("EEEEE", ERROR, 5),  # the fifth error in a row is over consecutiveErrorLimit 4
        ("EEEESEEEESSSS", SUCCESSFUL, 13),  # errors do not count toward count, a success resets them
        ("FSIIS", SUCCESSFUL, 5),
    ],
)
def test_a_run_with_a_count(letters: str, phase: str, taken: int) -> None:
    reached = argo_phase(run(letters), step_policy())
    assert (reached.phase, reached.measurements) == (phase, taken)


def test_a_consecutive_success_limit_ends_a_run_early() -> None:
    policy = step_policy(consecutive_success_limit=2, inconclusive_limit=5)
    assert argo_phase(run("SISS"), policy).measurements == 4
    assert argo_phase(run("SISS"), policy).phase == SUCCESSFUL
    assert phase_so_far(run("SES"), policy) is None  # an Error resets the streak too


def test_a_count_reached_without_the_streak_is_inconclusive_or_failed() -> None:
    policy = step_policy(consecutive_success_limit=3, inconclusive_limit=5)
    assert argo_phase(run("SISIS"), policy).phase == INCONCLUSIVE
    assert argo_phase(run("SISIS"), dataclasses.replace(policy, failure_limit=-1)).phase == FAILED


def test_a_failure_limit_of_minus_one_never_trips() -> None:
    policy = step_policy(consecutive_success_limit=2, failure_limit=-1)
    assert argo_phase(run("FFFSS"), policy).phase == SUCCESSFUL


def test_too_few_measurements_and_wrong_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="before Argo would have stopped"):
        argo_phase(run("SSS"), step_policy())
    with pytest.raises(ValueError, match="measurements_until_stop"):
        argo_phase(run("SSSSS"), step_policy(), measurements_until_stop=5)
    with pytest.raises(ValueError, match="measurements_until_stop"):
        argo_phase(run("S" * 30), background_policy())


# --- background runs -----------------------------------------------------------------------------


def test_a_stopped_background_run_is_successful_even_if_nothing_passed() -> None:
    policy = background_policy()
    answers = [measurement_of(m.at, "inconclusive", policy) for m in run("I" * 30)]
    reached = argo_phase(answers, policy, measurements_until_stop=30)
    assert (reached.phase, reached.measurements, reached.minutes_after(RUN_START)) == (SUCCESSFUL, 30, 29.0)
    # Under a template that makes inconclusive Inconclusive, inconclusiveLimit 0 pauses at once.
    assert argo_phase(run("I" * 30), policy, measurements_until_stop=30).phase == INCONCLUSIVE


def test_a_background_run_aborts_at_its_first_failure() -> None:
    reached = argo_phase(run("SSSF" + "S" * 40), background_policy(), measurements_until_stop=30)
    assert (reached.phase, reached.measurements, reached.minutes_after(RUN_START)) == (FAILED, 4, 3.0)
    assert argo_phase(run("S" * 30 + "F"), background_policy(), measurements_until_stop=30).phase == SUCCESSFUL
    assert argo_phase(run("S" * 30 + "F"), background_policy(), measurements_until_stop=31).phase == FAILED


def test_a_background_run_with_a_failure_limit() -> None:
    policy = background_policy(failure_limit=2)
    assert argo_phase(run("FSFSSF"), policy, measurements_until_stop=30).measurements == 6
    assert argo_phase(run("FSFSSS"), policy, measurements_until_stop=6).phase == SUCCESSFUL


def test_errors_in_a_background_run() -> None:
    policy = background_policy()
    reached = argo_phase(run("S" + "E" * 11), policy, measurements_until_stop=30)
    assert (reached.phase, reached.measurements) == (ERROR, 12)  # the 11th error in a row: over 10
    assert reached.minutes_after(RUN_START) == pytest.approx(1.0 + 10 * ERROR_RETRY_SECONDS / 60)
    # Errors do not use up the rollout's measurements: three counted ones stop a run of three.
    reached = argo_phase(run("SEEESS"), policy, measurements_until_stop=3)
    assert (reached.phase, reached.measurements) == (SUCCESSFUL, 6)


def test_a_consecutive_success_limit_in_a_background_run() -> None:
    policy = background_policy(consecutive_success_limit=3)
    assert argo_phase(run("SSESSS"), policy, measurements_until_stop=30).measurements == 6


def test_the_bench_measures_a_background_run_only_while_argo_would() -> None:
    background, step = background_policy(), step_policy()
    assert keep_measuring(run("SSS"), background, 30)
    assert not keep_measuring(run("SSF"), background, 30)
    assert not keep_measuring(run("S" * 30), background, 30)
    assert keep_measuring(run("FF"), step, None)  # a run with a count goes on to its count
    assert not keep_measuring(run("FFSSS"), step, None)
    assert not keep_measuring(run("EEEEE"), step, None)


def test_a_study_of_background_runs_needs_their_lengths() -> None:
    with pytest.raises(ValueError, match="background"):
        Study(background_policy())
    with pytest.raises(ValueError, match="count"):
        Study(step_policy(), measurements_until_stop=(30,))
    study = Study(background_policy(), measurements_until_stop=(30, 60))
    assert study.schedule().measurements == 60 and study.run_lengths == (30, 60)
