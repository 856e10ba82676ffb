"""calibrate's figures (app/calibration/figures.py) and how a terminal shows them (app/calibration/terminal.py), on
histories read in process."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from app.calibration.aa import calibrated, templates
from app.calibration.figures import CalibrationOut, _share, figures
from app.calibration.power import power
from app.calibration.terminal import print_figures
from app.models import CalibrationRequest
from tests.support.calibration import NAMED_REGRESSIONS, minute_history

STEP, BACKGROUND = templates()


@pytest.fixture(scope="module")
def alike() -> CalibrationOut:
    return figures(
        calibrated(minute_history(), CalibrationRequest(service="web", period="4h"), "default", (STEP, BACKGROUND))
    )


@pytest.fixture(scope="module")
def slow() -> CalibrationOut:
    request = CalibrationRequest(service="web", period="4h", p95_ratio_max=1.05, p95_max_seconds=1.0)
    return figures(calibrated(minute_history(slow="web-3"), request, "default", (STEP,)))


def test_a_share_of_runs_is_within_the_promise_up_to_it() -> None:
    assert _share(1, 100, 0.01).within and not _share(2, 100, 0.01).within
    share = _share(0, 30, 0.01)
    assert (share.share, share.low) == (0.0, 0.0) and 0.1 < share.high < 0.12  # 0 of 30: up to 11.6 %
    assert _share(0, 0, 0.05).within and _share(0, 0, 0.05).share is None


def test_halves_alike_are_within_the_promise(alike: CalibrationOut) -> None:
    assert alike.within_promise
    assert alike.reasons[0].startswith("within the analyzer's promise: step: ")
    assert "the halves do not differ beyond noise" in alike.reasons
    step, background = alike.templates
    assert (step.template, step.aborted.count, step.paused.count, step.promoted) == ("step", 0, 0, step.runs)
    assert (background.measurements, background.every, background.runs) == (60, "1h", 3)
    assert sum(step.by_canary["A"].values()) + sum(step.by_canary["B"].values()) == step.runs
    assert [half.half for half in alike.halves] == ["A", "B"] and sum(h.share for h in alike.halves) == pytest.approx(1)
    assert not any(value.differs for value in alike.values) and len(alike.values) == 6
    # Every figure in the JSON, as --json prints it.
    again = CalibrationOut.model_validate(json.loads(alike.model_dump_json()))
    assert again == alike
    assert alike.cost.runs == step.runs + background.runs and alike.cost.answers >= 5 * step.runs


def test_a_slow_pod_is_named_with_what_the_relative_checks_do_with_it(slow: CalibrationOut) -> None:
    assert not slow.within_promise and slow.reasons[0].startswith("beyond the analyzer's promise")
    [pod] = [value for value in slow.values if value.differs]
    assert pod.value == "web-3" and pod.beyond
    latency = next(c for c in pod.against_the_rest if c.check == "p95_latency_vs_stable")
    assert latency.unit == "factor" and latency.estimate > 2 and latency.beyond
    assert latency.shown.startswith("web-3's latency is ") and "beyond the tolerated 1.05x" in latency.shown
    assert (
        pod.consequences[0]
        == "p95_latency_vs_stable fails a canary whose pods serve like web-3 (beyond the tolerated 1.05x)"
    )
    [step] = slow.templates
    aborted = step.by_canary[pod.half]["aborted"]
    assert aborted > 0 and step.by_canary["B" if pod.half == "A" else "A"]["aborted"] == 0
    assert f"aborted in {aborted} of the " in pod.consequences[1]
    assert any(reason.startswith("web-3's latency is ") for reason in slow.reasons)
    assert {run.outcome for run in step.not_promoted} == {"aborted"} and step.failed_checks


def test_the_terminal_shows_the_runs_the_halves_the_pods_and_the_cost(slow: CalibrationOut) -> None:
    console = Console(record=True, width=200)
    print_figures(slow, console)
    text = console.export_text()
    assert text.startswith("BEYOND THE ANALYZER'S PROMISE:")
    assert "A/A on web's 'stable' pods, split by pod" in text
    assert "The halves, each against the other over the period" in text
    assert "Each pod that differs from the rest, in the minutes it served" in text and "web-3" in text
    assert text.rstrip().splitlines()[-1].startswith("Prometheus: 0 queries")


def with_power(rps: float) -> tuple[CalibrationOut, CalibrationOut]:
    """The figures with power, and without."""
    request = CalibrationRequest(service="web", period="3h")
    found = calibrated(minute_history(hours=3.0, rps=rps), request, "default", (STEP,))
    return figures(found, power(found)), figures(found)


def test_power_says_what_a_step_analysis_catches_and_the_terminal_shows_it() -> None:
    out, without = with_power(rps=4.0)
    assert out.power is not None and without.power is None and out.within_promise
    assert [(found.regression, found.template) for found in out.power.injected] == [
        (name, "step") for name in NAMED_REGRESSIONS
    ]
    for found in out.power.injected:
        aborted = found.aborted
        assert aborted.runs == out.templates[0].runs and aborted.share == aborted.count / aborted.runs
        assert aborted.low <= aborted.share <= aborted.high and aborted.caught == (aborted.share >= 0.95)
        assert (found.median_minutes is None) == (aborted.count == 0)
    smallest = {search.kind: search for search in out.power.smallest}
    assert smallest["latency"].tolerance == 1.1 and smallest["errors"].tolerance == 0.005
    caught = smallest["latency"].caught
    assert caught is not None and f"power: a step analysis catches {caught} and more" in " ".join(out.reasons)
    assert out.reasons[0].startswith("within the analyzer's promise")
    assert CalibrationOut.model_validate(json.loads(out.model_dump_json())) == out
    console = Console(record=True, width=200)
    print_figures(out, console)
    text = console.export_text()
    assert "Power: regressions injected into the canary half" in text and "smallest latency caught" in text
    assert text.rstrip().splitlines()[-1].startswith("Prometheus: 0 queries")


def test_power_on_thin_traffic_says_nothing_is_caught_and_leaves_the_promise_as_it_was() -> None:
    out, without = with_power(rps=0.005)
    assert out.power is not None and out.within_promise == without.within_promise
    assert out.reasons[: len(without.reasons)] == without.reasons
    assert {search.kind: search.caught for search in out.power.smallest} == {"errors": None, "latency": None}
    assert "power: no latency regression up to x3 latency is caught in 95% of step runs" in " ".join(out.reasons)
