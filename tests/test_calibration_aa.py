"""A/A on a history (app/calibration/aa.py): the templates as replayed, the halves' minutes as each run's versions
see them, runs spread over the period, and the pods that differ from the rest, on plain numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from app.calibration.aa import (
    AsCanary,
    HalfMinutes,
    Template,
    calibrated,
    canary_half,
    run_starts,
    templates,
)
from app.calibration.argo import ABORTED, PROMOTED, TEMPLATES
from app.calibration.history import Unusable
from app.judge.checks import Source
from app.judge.recent import Counts
from app.measurement import Role
from app.models import CalibrationRequest
from tests.support.calibration import MINUTE_BOUNDS as BOUNDS
from tests.support.calibration import SHARES, START, minute_history

STEP, BACKGROUND = templates()


def test_the_shipped_templates_as_replayed() -> None:
    assert (STEP.policy.initial_delay, STEP.policy.interval, STEP.measurements) == (120.0, 60.0, 5)
    assert (STEP.policy.failure_limit, STEP.policy.inconclusive_limit, STEP.measurements_until_stop) == (0, 3, None)
    assert (STEP.last_answer, STEP.spacing) == (360.0, 420.0)
    assert (BACKGROUND.policy.count, BACKGROUND.measurements_until_stop, BACKGROUND.spacing) == (None, 60, 3600.0)


def test_a_template_whose_answers_fall_between_minutes_is_refused(tmp_path: Path) -> None:
    document = yaml.safe_load(TEMPLATES["step"].read_text())
    document["spec"]["metrics"][0]["interval"] = "90s"
    path = tmp_path / "step.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(Unusable, match="interval 90s is not whole minutes"):
        templates(step=path)
    with pytest.raises(Unusable, match="no background template at"):
        templates(background=tmp_path / "nowhere.yaml")


def minutes(ok: list[float]) -> Counts:
    values = np.array(ok, dtype=float)
    return Counts(values, np.zeros_like(values), BOUNDS, values[:, None] * SHARES)


def test_each_runs_canary_half_begins_with_the_run_its_stable_half_does_not() -> None:
    ends = START + 60.0 * np.arange(1, 11)  # ten minutes
    halves = HalfMinutes(ends, {"A": minutes([1.0] * 10), "B": minutes([10.0] * 10)})
    assert halves.total("A", START, START + 600).ok.tolist() == [10.0]
    assert halves.total("B", START + 120, START + 300).ok.tolist() == [30.0]
    assert halves.total("B", START - 3600, START + 60).ok.tolist() == [10.0]  # nothing before the data
    run = AsCanary(halves, "A", START + 300)
    assert run.stable == "B"
    assert run.observed(Role.CANARY, START, START + 420)[Source.REQUESTS].total == 2.0
    assert run.observed(Role.STABLE, START, START + 420)[Source.REQUESTS].total == 70.0
    starts = [START + 60.0 * m for m in range(-2, 7)]
    assert run.minutes(Role.CANARY, starts, START + 420).ok.tolist() == [0, 0, 0, 0, 0, 0, 0, 1, 1]
    assert run.minutes(Role.STABLE, starts, START + 420).ok.tolist() == [0, 0, *[10] * 7]
    with pytest.raises(ValueError, match="minute boundary"):
        run.minutes(Role.CANARY, starts, START + 430)


def test_runs_start_a_spacing_apart_at_the_same_instants_however_the_period_is_cut() -> None:
    starts = run_starts(START + 30, START + 3 * 3600, STEP)
    assert starts[0] % 420 == 0 and START + 30 <= starts[0] < START + 450 and set(np.diff(starts)) == {420.0}
    assert starts[-1] + STEP.last_answer <= START + 3 * 3600 < starts[-1] + STEP.spacing + STEP.last_answer
    assert set(run_starts(starts[1] - 60, START + 3 * 3600, STEP)) == set(starts[1:])
    assert {canary_half(start, STEP) for start in starts[:2]} == {"A", "B"}
    assert run_starts(START, START + 3000, BACKGROUND) == []  # an hour's run does not fit


def test_halves_alike_are_neither_aborted_nor_paused_and_no_pod_is_named() -> None:
    found = calibrated(minute_history(), CalibrationRequest(service="web"), "default", (STEP, BACKGROUND))
    step, background = found.replayed
    assert len(step.runs) == len(run_starts(START + 300, START + 4 * 3600, STEP)) > 30 and len(background.runs) == 3
    assert {run.outcome for replayed in found.replayed for run in replayed.runs} == {PROMOTED}
    assert set(step.canaries) == {"A", "B"}
    assert not any(value.differs for value in found.values)
    assert not any(c.differs or c.beyond for compared in found.compared.values() for c in compared)


def test_a_slow_pod_is_named_and_its_half_aborted_when_the_tolerance_is_tight() -> None:
    found = calibrated(
        minute_history(slow="web-3"),
        CalibrationRequest(service="web", p95_ratio_max=1.05, p95_max_seconds=1.0),
        "default",
        (STEP,),
    )
    [slow] = [value for value in found.values if value.differs]
    assert slow.value == "web-3" and slow.beyond
    latency = next(c for c in slow.comparisons if c.check.name == "p95_latency_vs_stable")
    assert latency.estimate > 2.0 and latency.low > 1.05
    half = found.halves.of("web-3")
    [replayed] = found.replayed
    aborted = {canary for run, canary in zip(replayed.runs, replayed.canaries, strict=True) if run.outcome == ABORTED}
    assert aborted == {half}  # only ever with the slow pod's half as the canary
    assert found.compared[half][0].beyond and not found.compared["B" if half == "A" else "A"][0].differs


def test_a_background_template_stopped_earlier_replays_shorter_runs() -> None:
    short = Template("background", BACKGROUND.policy, measurements_until_stop=30)
    found = calibrated(minute_history(hours=2.0), CalibrationRequest(service="web"), "default", (short,))
    assert all(len(run.answers) == 30 for run in found.replayed[0].runs)
