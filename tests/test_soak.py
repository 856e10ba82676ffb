"""bench/soak.py: its judge of answers, and a short soak of the real service against a real Prometheus
that is stopped, paused and restarted under 20 callers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from bench import soak

ROOT = Path(__file__).resolve().parent.parent


def answer(status: int | None, started: float, finished: float, problem: str | None = None) -> object:
    return soak.Answer("checkout", started, finished, status, "pass" if status == 200 else None, None, problem)


def disruptor(*intervals: tuple[str, float, float]) -> object:
    timeline = soak.Disruptor(prometheus=None, healthy_seconds=1, down_seconds=1)
    timeline.intervals = [soak.Interval(*i) for i in intervals]
    timeline.healthy_ends = [end for state, _, end in intervals if state == "healthy"]
    return timeline


TIMELINE = (("healthy", 0, 10), ("paused", 11, 20), ("healthy", 21, 30))
FLAT = [(t, 120.0, 30) for t in range(31)]


def test_a_well_formed_answer_in_its_phase_is_no_violation() -> None:
    answers = [answer(200, 1, 2), answer(503, 12, 17), answer(200, 9, 12), answer(503, 9, 12), answer(200, 22, 23)]
    summary = soak.summarise(answers, disruptor(*TIMELINE), FLAT)
    assert summary["violations"] == 0, summary
    assert summary["statuses"]["straddling"] == {"200": 1, "503": 1}
    assert summary["slowest_answer_while_down_seconds"] == 5


def test_a_503_while_healthy_and_a_verdict_while_paused_are_violations() -> None:
    summary = soak.summarise([answer(503, 1, 2), answer(200, 12, 13)], disruptor(*TIMELINE), FLAT)
    assert summary["violations"] == 2, summary
    assert any("while Prometheus was paused" in v for v in summary["first_violations"])


def test_growing_memory_or_open_files_are_violations() -> None:
    growing = [(t, 120.0 + 2 * t, 30 + 2 * t) for t in range(31)]
    summary = soak.summarise([answer(200, 1, 2)], disruptor(*TIMELINE), growing)
    assert [v.split()[0] for v in summary["first_violations"]] == ["RSS", "open"]


def test_answers_are_judged_by_status_body_and_verdict() -> None:
    def judged(status: int, body: str, service: str = "checkout") -> tuple:
        return soak.check_answer(service, httpx.Response(status, text=body))

    assert judged(200, '{"verdict": "pass"}') == ("pass", None, None)
    assert judged(200, '{"verdict": "pass"}', "payments")[2] == "wrong verdict 'pass' for payments (expected 'fail')"
    assert judged(503, '{"error": "x", "cause": "timeout"}') == (None, "timeout", None)
    assert judged(503, "<html>Service Unavailable</html>")[2].startswith("503 not JSON")
    assert judged(500, '{"error": "boom"}')[2].startswith("unexpected status 500")


def test_a_short_soak_through_a_stop_and_a_pause_keeps_every_promise() -> None:
    command = [sys.executable, str(ROOT / "bench" / "soak.py"), "--seconds", "40"]
    result = subprocess.run(
        [*command, "--healthy-seconds", "4", "--down-seconds", "12"], capture_output=True, text=True, timeout=180
    )
    summary = json.loads(result.stdout)
    assert result.returncode == 0, summary["first_violations"] or result.stderr
    statuses = summary["statuses"]
    # The phases the promises are about each had answers, of the kind promised.
    assert statuses["healthy"].get("200", 0) > 100
    assert statuses["stopped"].get("503", 0) > 10
    assert statuses["paused"].get("503", 0) > 0
    assert summary["slowest_answer_while_down_seconds"] <= soak.ANSWER_WITHIN_SECONDS
