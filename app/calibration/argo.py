"""Argo Rollouts' run semantics, as an AnalysisTemplate makes Argo measure: the template read as Argo reads
it (its defaults where it leaves a field out), what each verdict counts as, and the phase a metric ends in
after each measurement. For replaying runs: the benchmarks' synthetic rollouts, and `calibrate`'s history.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = {
    "step": ROOT / "analysis_templates" / "analysis-template.yaml",
    "background": ROOT / "analysis_templates" / "background-analysis-template.yaml",
}
TEMPLATE = TEMPLATES["step"]

DEFAULT_CONSECUTIVE_ERROR_LIMIT = 4  # Argo's, when a template leaves it out
ERROR_RETRY_SECONDS = 10.0  # Argo measures again this soon after an Error, whatever `interval` says

SUCCESSFUL, FAILED, INCONCLUSIVE, ERROR = "Successful", "Failed", "Inconclusive", "Error"
ABORTED, PAUSED, PROMOTED = "aborted", "paused", "promoted"
OUTCOME_OF_PHASE = {FAILED: ABORTED, ERROR: ABORTED, INCONCLUSIVE: PAUSED, SUCCESSFUL: PROMOTED}
OUTCOMES = (ABORTED, PAUSED, PROMOTED)


@dataclasses.dataclass(frozen=True)
class Schedule:
    """When Argo measures, as a template says: the first measurement `initial_delay` after the
    run starts (Argo takes it at once without one), then one every `interval`, `measurements`
    in all: the template's `count`, or for a background run (no `count`) as many as the rollout
    lasts. Errors are not planned for: Argo's retries after one come on top of these polls."""

    initial_delay: float
    interval: float
    measurements: int

    def polls(self, first_poll: float) -> tuple[float, ...]:
        return tuple(first_poll + self.interval * k for k in range(self.measurements))


@dataclasses.dataclass(frozen=True)
class Policy:
    """How an AnalysisTemplate makes Argo measure: the schedule, the limits, what each verdict
    counts as, and the request body the template sends (its `jsonBody`, arguments unfilled)."""

    initial_delay: float
    interval: float
    count: int | None  # None: no end (a background run), measured until the rollout stops it
    failure_limit: int  # -1: not applicable (Argo allows it with a consecutiveSuccessLimit)
    inconclusive_limit: int
    consecutive_error_limit: int
    consecutive_success_limit: int | None  # Argo >= 1.8; None or 0: not applicable
    phase_of_verdict: dict[str, str]  # pass / fail / inconclusive -> the measurement's phase
    timeout: float
    window: str
    json_body: dict[str, object] = dataclasses.field(default_factory=dict)
    arg_defaults: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def background(self) -> bool:
        return self.count is None

    def schedule(self, measurements_until_stop: int | None = None) -> Schedule:
        """The polls a case needs: `count` of them, or for a background run as many as the
        longest rollout lets it take."""
        if self.count is not None and measurements_until_stop is not None:
            raise ValueError("a run with a count ends at its count, not when the rollout stops it")
        if self.count is None and measurements_until_stop is None:
            raise ValueError("a background run (no count) needs the measurements taken until the rollout stops it")
        measurements = self.count if self.count is not None else measurements_until_stop
        assert measurements is not None
        return Schedule(self.initial_delay, self.interval, measurements)

    def describe(self) -> str:
        limits = [
            f"initialDelay {self.initial_delay:g}s",
            f"interval {self.interval:g}s",
            f"count {self.count}" if self.count is not None else "no count",
            f"failureLimit {self.failure_limit}",
            f"inconclusiveLimit {self.inconclusive_limit}",
            f"consecutiveErrorLimit {self.consecutive_error_limit}",
        ]
        if self.consecutive_success_limit:
            limits.append(f"consecutiveSuccessLimit {self.consecutive_success_limit}")
        verdicts = ", ".join(f"{verdict} {self.phase_of_verdict[verdict]}" for verdict in VERDICTS)
        return f"{', '.join(limits)}; {verdicts}"


@dataclasses.dataclass(frozen=True)
class Measurement:
    at: float
    phase: str
    verdict: str | None  # pass / fail / inconclusive; None for an Error
    detail: str = ""
    failed_checks: tuple[str, ...] = ()


# --- the template ----------------------------------------------------------------------------------


def load_policy(template: Path = TEMPLATE) -> Policy:
    """The first metric of an AnalysisTemplate, read the way Argo reads it (its defaults where
    the template leaves a field out)."""
    return policy_from_template(yaml.safe_load(template.read_text()))


def policy_from_template(document: dict) -> Policy:
    spec = document["spec"]
    metric = spec["metrics"][0]
    arg_defaults = {arg["name"]: str(arg["value"]) for arg in spec.get("args", []) if "value" in arg}
    web = metric["provider"]["web"]
    return Policy(
        initial_delay=_duration_seconds(metric.get("initialDelay", "0s")),
        interval=_duration_seconds(metric.get("interval", "0s")),
        count=_effective_count(metric),
        failure_limit=int(metric.get("failureLimit", 0)),
        inconclusive_limit=int(metric.get("inconclusiveLimit", 0)),
        consecutive_error_limit=int(metric.get("consecutiveErrorLimit", DEFAULT_CONSECUTIVE_ERROR_LIMIT)),
        consecutive_success_limit=_optional_int(metric.get("consecutiveSuccessLimit")),
        phase_of_verdict=phase_of_verdict(metric.get("successCondition"), metric.get("failureCondition")),
        timeout=float(web.get("timeoutSeconds", 10)),
        window=arg_defaults.get("window", "5m"),
        json_body=dict(web.get("jsonBody") or {}),
        arg_defaults=arg_defaults,
    )


def _effective_count(metric: dict) -> int | None:
    """Argo's EffectiveCount: unset (or 0) with an interval means no end; without one, 1."""
    count = _optional_int(metric.get("count"))
    if count:
        return count
    return None if metric.get("interval") else 1


def _optional_int(value: object) -> int | None:
    return None if value is None else int(str(value))


DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _duration_seconds(text: str) -> float:
    """A Go duration as Argo's fields take them: `90s`, `2m`, `1m30s`."""
    parts = DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(number) * DURATION_UNITS[unit] for number, unit in parts)


# --- what a verdict counts as ---------------------------------------------------------------------

VERDICTS = ("pass", "fail", "inconclusive")
# Any other verdict: Argo evaluates the same conditions on it, so it gets a phase of its own.
OTHER_VERDICT = "(other)"
# The conditions on the analyzer's answer this bench can evaluate: `result.verdict` compared with
# one of its verdicts, == or !=. Anything else is refused rather than guessed at.
CONDITION = re.compile(r'result\.verdict\s*(==|!=)\s*"(pass|fail|inconclusive)"')


def verdicts_meeting(condition: str) -> frozenset[str]:
    """The verdicts (OTHER_VERDICT standing for any other) for which a supported condition holds."""
    match = CONDITION.fullmatch(condition.strip())
    if match is None:
        raise ValueError(f"unsupported condition {condition!r}: only result.verdict == or != a verdict in quotes")
    operator, value = match.groups()
    return frozenset(v for v in (*VERDICTS, OTHER_VERDICT) if (v == value) == (operator == "=="))


def phase_of_verdict(success_condition: str | None, failure_condition: str | None) -> dict[str, str]:
    """Each verdict's measurement phase, by Argo's rule (utils/evaluate.EvaluateResult): with
    neither condition every answer is Successful; a missing condition is the other's negation;
    Failed wins over Successful; a verdict that meets neither condition is Inconclusive."""
    every = frozenset((*VERDICTS, OTHER_VERDICT))
    if not success_condition and not failure_condition:
        return dict.fromkeys(every, SUCCESSFUL)
    if success_condition and failure_condition:
        successful, failed = verdicts_meeting(success_condition), verdicts_meeting(failure_condition)
    elif success_condition:
        successful = verdicts_meeting(success_condition)
        failed = every - successful
    else:
        assert failure_condition is not None
        failed = verdicts_meeting(failure_condition)
        successful = every - failed

    def phase(verdict: str) -> str:
        if verdict in failed:
            return FAILED
        return SUCCESSFUL if verdict in successful else INCONCLUSIVE

    return {verdict: phase(verdict) for verdict in (*VERDICTS, OTHER_VERDICT)}


# --- Argo's rules ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PhaseReached:
    """Where a metric ended: its phase, how many measurements Argo took to get there (Errors
    included), and when the last of them was taken (for a stopped run: the last before the stop)."""

    phase: str
    measurements: int
    at: float

    def minutes_after(self, run_start: float) -> float:
        return (self.at - run_start) / 60.0


def argo_phase(
    measurements: Sequence[Measurement], policy: Policy, measurements_until_stop: int | None = None
) -> PhaseReached:
    """The metric's phase as Argo (v1.9, analysis/analysis.go) assesses it after each measurement.

    The first limit that trips ends the metric: failed > failureLimit (unless it is -1),
    inconclusive > inconclusiveLimit, consecutive errors > consecutiveErrorLimit. Then
    consecutiveSuccessLimit Successful measurements in a row (any other outcome, an Error
    too, resets the streak) end it Successful. A run with a count ends at `count` counted
    measurements (Errors do not count): Successful, or, with a consecutiveSuccessLimit not
    reached, Inconclusive (Failed when failureLimit is -1). A run without a count is stopped
    when the rollout ends, here after `measurements_until_stop` counted measurements, and a
    stopped run is Successful unless a limit tripped first.
    """
    reached = phase_so_far(measurements, policy, measurements_until_stop)
    if reached is None:
        raise ValueError("the measurements end before Argo would have stopped")
    return reached


def phase_so_far(
    measurements: Sequence[Measurement], policy: Policy, measurements_until_stop: int | None = None
) -> PhaseReached | None:
    """argo_phase(), or None while Argo would still be measuring after these measurements."""
    if (policy.count is None) == (measurements_until_stop is None):
        raise ValueError("measurements_until_stop is for a run without a count, and such a run needs it")
    tally = _Tally()
    for taken, measurement in enumerate(measurements, start=1):
        tally.add(measurement.phase)
        phase = _limit_tripped(tally, policy) or _ended(tally, policy, measurements_until_stop)
        if phase is not None:
            return PhaseReached(phase, taken, measurement.at)
    return None


@dataclasses.dataclass
class _Tally:
    """Argo's MetricResult counters."""

    counted: int = 0  # Argo's `count`: every measurement but Errors
    failed: int = 0
    inconclusive: int = 0
    consecutive_errors: int = 0
    consecutive_successes: int = 0

    def add(self, phase: str) -> None:
        if phase == ERROR:
            self.consecutive_errors += 1
            self.consecutive_successes = 0
            return
        self.counted += 1
        self.consecutive_errors = 0
        self.failed += phase == FAILED
        self.inconclusive += phase == INCONCLUSIVE
        self.consecutive_successes = self.consecutive_successes + 1 if phase == SUCCESSFUL else 0


def _limit_tripped(tally: _Tally, policy: Policy) -> str | None:
    # In Argo's order: a later limit's phase overrides an earlier one's.
    phase = None
    if policy.failure_limit >= 0 and tally.failed > policy.failure_limit:
        phase = FAILED
    if tally.inconclusive > policy.inconclusive_limit:
        phase = INCONCLUSIVE
    if tally.consecutive_errors > policy.consecutive_error_limit:
        phase = ERROR
    return phase


def _ended(tally: _Tally, policy: Policy, measurements_until_stop: int | None) -> str | None:
    streak = policy.consecutive_success_limit
    if streak and tally.consecutive_successes >= streak:
        return SUCCESSFUL
    if policy.count is not None and tally.counted >= policy.count:
        if streak:
            return INCONCLUSIVE if policy.failure_limit >= 0 else FAILED
        return SUCCESSFUL
    if measurements_until_stop is not None and tally.counted >= measurements_until_stop:
        return SUCCESSFUL  # stopped with the rollout, no limit tripped
    return None


def keep_measuring(measurements: Sequence[Measurement], policy: Policy, measurements_until_stop: int | None) -> bool:
    """Whether the bench takes another measurement of a case. A run with a count is measured to
    its count as if no limit tripped, so that per-poll rates cover every case (argo_phase() takes
    only what Argo would have); a background run only while Argo would measure it, up to the
    longest rollout: after an abort, the rest of an hour's polls would cost most of the run and
    tell nothing."""
    if policy.count is None:
        return phase_so_far(measurements, policy, measurements_until_stop) is None
    tally = _Tally()
    for measurement in measurements:
        tally.add(measurement.phase)
    return tally.counted < policy.count and tally.consecutive_errors <= policy.consecutive_error_limit


def next_poll(measurement: Measurement, policy: Policy) -> float:
    """When Argo measures next: `interval` later, or ERROR_RETRY_SECONDS after an Error."""
    return measurement.at + (ERROR_RETRY_SECONDS if measurement.phase == ERROR else policy.interval)


def measurement_of(at: float, verdict: str, policy: Policy, failed_checks: tuple[str, ...] = ()) -> Measurement:
    """A verdict as Argo records it: the phase the template's conditions give it."""
    if verdict in VERDICTS:
        return Measurement(at, policy.phase_of_verdict[verdict], verdict, failed_checks=failed_checks)
    phase = policy.phase_of_verdict[OTHER_VERDICT]
    return Measurement(at, phase, verdict, f"unknown verdict {verdict!r}", failed_checks)
