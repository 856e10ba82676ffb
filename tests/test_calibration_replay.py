"""Replaying analyses (app/calibration/replay.py): what the judge is handed at a moment, from counts known
already, and a run of answers on Argo's schedule, on plain numbers."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from app.calibration.argo import ABORTED, PAUSED, PROMOTED, TEMPLATES, load_policy
from app.calibration.replay import Answer, replay_run, since_start, timeline_starts
from app.judge.checks import Observed, Source
from app.judge.recent import SPAN_MINUTES, Counts
from app.measurement import Role

START = 1_800_000_000.0  # a minute boundary
STEP, BACKGROUND = load_policy(TEMPLATES["step"]), load_policy(TEMPLATES["background"])
BOUNDS = (0.1, 0.5, math.inf)


class Steady:
    """Each version serves `rps` ok requests a second, all under 100 ms, from `since` on."""

    def __init__(self, rps: dict[Role, float], since: dict[Role, float]) -> None:
        self.rps, self.since = rps, since

    def _served(self, role: Role, begin: float, end: float) -> float:
        return self.rps[role] * max(0.0, end - max(begin, self.since[role]))

    def observed(self, role: Role, begin: float, end: float) -> Observed:
        return Counts(np.array([self._served(role, begin, end)]), np.zeros(1), (), np.zeros((1, 0))).observed(0)

    def minutes(self, role: Role, starts: Sequence[float], end: float) -> Counts:
        ends = [*starts[1:], end]
        ok = np.array([self._served(role, a, b) for a, b in zip(starts, ends, strict=True)])
        buckets = np.stack([ok, np.zeros_like(ok), np.zeros_like(ok)], axis=1)
        return Counts(ok, np.zeros_like(ok), BOUNDS, buckets)


def test_the_timeline_is_the_last_hour_of_settled_minutes_and_the_tail() -> None:
    starts = timeline_starts(START + 125.0)
    assert len(starts) == SPAN_MINUTES + 1
    assert starts[-1] == START + 60.0  # settled a minute after it ended
    assert np.all(np.diff(starts) == 60.0)


def test_since_start_judges_the_canarys_whole_life_never_less_than_the_window() -> None:
    served = Steady({Role.CANARY: 2.0, Role.STABLE: 10.0}, {Role.CANARY: START, Role.STABLE: START - 86400})
    early = since_start(served, START + 120.0, START, 300.0)
    assert early.span_seconds == 300.0
    assert early.canary[Source.REQUESTS].total == 240.0  # its two minutes: nothing before it started
    assert early.stable[Source.REQUESTS].total == 3000.0  # the window
    later = since_start(served, START + 1800.0, START, 300.0)
    assert later.span_seconds == 1800.0 and later.stable[Source.REQUESTS].total == 18000.0
    assert later.timeline is not None and later.timeline.canary_start == START
    current = later.canary[Source.CURRENT]
    assert (current.requests, current.seconds) == (600.0, 300.0)
    unknown = since_start(served, START + 1800.0, None, 300.0, look_back_seconds=3600.0)
    assert unknown.span_seconds == 3600.0 and unknown.timeline.canary_start is None


class Scripted:
    """An answer per letter, p(ass) f(ail) i(nconclusive), in the order they are asked for; the moments asked."""

    def __init__(self, letters: str) -> None:
        self.verdicts = iter({"p": "pass", "f": "fail", "i": "inconclusive"}[letter] for letter in letters)
        self.asked: list[float] = []

    def __call__(self, at: float) -> Answer:
        self.asked.append(at)
        verdict = next(self.verdicts)
        return Answer(verdict, failed=("error_rate",) if verdict == "fail" else ())


@pytest.mark.parametrize(
    ("letters", "outcome", "taken"),
    [
        ("ppppp", PROMOTED, 5),
        ("ipipp", PROMOTED, 5),  # two inconclusive answers are waited out
        ("ppf", ABORTED, 3),  # one fail is enough: failureLimit 0
        ("iiii", PAUSED, 4),  # the fourth inconclusive answer: over inconclusiveLimit 3
        ("iipii", PAUSED, 5),
    ],
)
def test_a_step_run_as_the_shipped_template_runs_it(letters: str, outcome: str, taken: int) -> None:
    answer_at = Scripted(letters)
    run = replay_run(STEP, START, answer_at)
    assert (run.outcome, len(run.measurements), len(run.answers)) == (outcome, taken, taken)
    # Two minutes after the run starts, then a minute apart.
    assert answer_at.asked == [START + 120.0 + 60.0 * k for k in range(taken)]
    if outcome == ABORTED:
        assert run.measurements[-1].failed_checks == ("error_rate",)


def test_a_background_run_only_aborts_and_is_stopped_with_its_rollout() -> None:
    quiet = replay_run(BACKGROUND, START, Scripted("i" * 60), measurements_until_stop=60)
    assert (quiet.outcome, len(quiet.measurements)) == (PROMOTED, 60)
    assert quiet.measurements[0].at == START and quiet.reached.minutes_after(START) == 59.0
    aborted = replay_run(BACKGROUND, START, Scripted("p" * 9 + "f"), measurements_until_stop=60)
    assert (aborted.outcome, len(aborted.measurements)) == (ABORTED, 10)
