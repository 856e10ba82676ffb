"""Current evidence through a real Prometheus: a regression that starts after an hour of health is aborted
within minutes, a canary that stopped serving (or nearly) is not passed on its old data, a quiet but steady
one still is; and every replica, restarted or not, judges the same span the same way."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.demo.local_prometheus import LocalPrometheus, backfill, ensure_installed
from app.demo.traffic import Traffic, openmetrics
from app.presets import Preset
from tests.support.argo_probe import BACKGROUND_TEMPLATE, STEP_TEMPLATE, measure
from tests.support.exposition import samples, value
from tests.support.logs import log_lines
from tests.support.servers import AnalyzerServer

MINUTE = 60.0
HEALTHY = {"error_ratio": 0.003, "p95_seconds": 0.12}
# Each canary's life, anchored at the module's `now`; the stables serve 20 rps throughout.
ONSET_MINUTES_AGO = 4  # late-errors: 75 minutes of health, then +6 points of 5xx at 10 rps
SILENT_MINUTES = 12  # silent: its pods still scraped, their counters flat


@pytest.fixture(scope="module")
def now() -> float:
    return float(int(time.time()))


def lives(now: float) -> list[Traffic]:
    future = now + 3600

    def stable(service: str) -> Traffic:
        return Traffic(service, "stable", 20, now - 3 * 3600, future, **HEALTHY)

    onset = now - ONSET_MINUTES_AGO * MINUTE
    return [
        Traffic("late-errors", "canary", 10, now - 75 * MINUTE - onset % MINUTE, future, **HEALTHY,
                turns_at=onset, turned={"error_ratio": 0.06}),
        stable("late-errors"),
        Traffic("silent", "canary", 3, now - 60 * MINUTE, future, **HEALTHY, idle_after=now - SILENT_MINUTES * MINUTE),
        stable("silent"),
        # Its weight set to almost nothing 10 minutes ago: 10 rps, then one request in 20 s.
        Traffic("fallen", "canary", 10, now - 60 * MINUTE, future, **HEALTHY, turns_at=now - 10 * MINUTE,
                turned={"rps": 0.05}),
        stable("fallen"),
        # Quiet but steady for two hours: 15 requests every 5 minutes.
        Traffic("quiet", "canary", 0.05, now - 120 * MINUTE, future, **HEALTHY),
        stable("quiet"),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory, now: float) -> Iterator[LocalPrometheus]:
    ensure_installed()
    data: Path = tmp_path_factory.mktemp("lives") / "data"
    backfill(openmetrics(lives(now), Preset()), data)
    with LocalPrometheus(data) as served:
        yield served


@pytest.fixture(scope="module")
def analyzer(start_analyzer: Callable[..., AnalyzerServer], prometheus: LocalPrometheus) -> AnalyzerServer:
    return start_analyzer(prometheus_url=prometheus.url)


def at(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat()


def answer(server: AnalyzerServer, service: str, moment: float | None = None) -> dict:
    params = {"service": service} if moment is None else {"service": service, "at": at(moment)}
    response = server.analyze(**params)
    assert response.status_code == 200, response.text
    return response.json()


def checks(body: dict) -> dict[str, dict]:
    return {check["name"]: check for check in body["checks"]}


# --- a late regression -----------------------------------------------------------------------------------


def test_a_regression_after_an_hour_of_health_fails_on_its_recent_span(analyzer: AnalyzerServer, now: float) -> None:
    body = answer(analyzer, "late-errors")
    assert body["verdict"] == "fail", body["reasons"]
    failed = [check for check in body["checks"] if check["verdict"] == "fail"]
    onset = now - ONSET_MINUTES_AGO * MINUTE
    for check in failed:
        statistics = check["statistics"]
        assert statistics["scope"] == "recent", check["name"]
        since = datetime.fromisoformat(statistics["since"]).timestamp()
        assert onset - 3 * MINUTE <= since <= onset + MINUTE, (check["name"], statistics["since"])
    reason = body["reasons"][0]
    assert reason.startswith("in the last ") and "(since " in reason and "over its whole life (7" in reason
    assert body["confidence"]["data"] == "since_canary_start"  # the whole life is still what passes are judged on


def test_the_audit_line_and_the_metrics_say_a_recent_span_decided(analyzer: AnalyzerServer) -> None:
    checks_total = "canary_analyzer_checks_total"
    before = value(samples(analyzer), checks_total, check="error_rate_vs_stable", outcome="fail", scope="recent")
    body = answer(analyzer, "late-errors")
    [line] = [
        line for line in log_lines(analyzer.logs()) if line.get("trace_id") == body["trace_id"] and "checks" in line
    ]
    audited = {check["name"]: check for check in line["checks"]}
    failed = checks(body)["error_rate_vs_stable"]
    assert failed["verdict"] == "fail"
    assert audited["error_rate_vs_stable"]["scope"] == "recent"
    assert (audited["error_rate_vs_stable"]["since"], audited["error_rate_vs_stable"]["span"]) == (
        failed["statistics"]["since"],
        failed["statistics"]["span"],
    )
    assert audited["p95_latency"]["scope"] == "whole"
    after = value(samples(analyzer), checks_total, check="error_rate_vs_stable", outcome="fail", scope="recent")
    assert after == before + 1


@pytest.mark.parametrize("template", [BACKGROUND_TEMPLATE], ids=lambda p: p.name)
def test_the_background_template_aborts_it(argo_probe: Path, analyzer: AnalyzerServer, template: Path) -> None:
    measurement = measure(argo_probe, template, analyzer, "late-errors")
    assert measurement["phase"] == "Failed", measurement
    assert json.loads(measurement["value"])["checks"][0]["name"] == "canary_traffic"


def test_asked_every_minute_it_is_aborted_within_minutes_of_its_onset_and_never_before(
    start_analyzer: Callable[..., AnalyzerServer], prometheus: LocalPrometheus, now: float
) -> None:
    """The background template's answers, replayed a minute apart from before the onset (`at`), by an analyzer
    that remembers what it read: the first fail comes within 3 minutes at 10 rps, none before the onset."""
    replica = start_analyzer(prometheus_url=prometheus.url)
    onset = now - ONSET_MINUTES_AGO * MINUTE
    verdicts = {}
    for minute in range(-3, ONSET_MINUTES_AGO + 1):
        moment = onset + minute * MINUTE
        if moment <= now:
            verdicts[minute] = answer(replica, "late-errors", moment)["verdict"]
    assert all(verdict != "fail" for minute, verdict in verdicts.items() if minute <= 0), verdicts
    first_fail = min(minute for minute, verdict in verdicts.items() if verdict == "fail")
    assert 0 < first_fail <= 3, verdicts


# --- no pass without current evidence ----------------------------------------------------------------------


def test_a_canary_silent_for_the_last_minutes_is_inconclusive_saying_since_when(
    analyzer: AnalyzerServer, now: float
) -> None:
    body = answer(analyzer, "silent")
    assert body["verdict"] == "inconclusive"
    current = checks(body)["canary_current"]
    assert current["verdict"] == "inconclusive" and current["canary"] == 0
    went_quiet = datetime.fromtimestamp(now - SILENT_MINUTES * MINUTE, UTC)
    since = [went_quiet.strftime("%H:%M"), (went_quiet + timedelta(minutes=1)).strftime("%H:%M")]
    assert any(f"silent since {hhmm} UTC" in current["reason"] for hhmm in since), current["reason"]
    # The stable served 20 rps meanwhile: about 12 minutes of it.
    served = int(current["reason"].split("while the stable served ")[1].split(" requests")[0].replace(",", ""))
    assert 11 * 60 * 20 <= served <= 13 * 60 * 20
    assert body["reasons"][0] == current["reason"]
    # Everything it served before still passes: only its silence keeps it from a pass.
    assert all(c["verdict"] == "pass" for name, c in checks(body).items() if name != "canary_current")


@pytest.mark.parametrize(("template", "phase"), [(STEP_TEMPLATE, "Inconclusive"), (BACKGROUND_TEMPLATE, "Successful")])
def test_the_templates_do_not_promote_a_silent_canary(
    argo_probe: Path, analyzer: AnalyzerServer, template: Path, phase: str
) -> None:
    """The step template pauses; the background one, which only ever aborts, lets it be."""
    measurement = measure(argo_probe, template, analyzer, "silent")
    assert measurement["phase"] == phase, measurement
    assert "no canary requests in the last" in json.loads(measurement["value"])["reasons"][0]


def test_a_canary_whose_share_fell_far_below_its_own_is_not_passed(analyzer: AnalyzerServer) -> None:
    body = answer(analyzer, "fallen")
    current = checks(body)["canary_current"]
    assert body["verdict"] == "inconclusive" and current["verdict"] == "inconclusive"
    assert "share of the traffic fell to" in current["reason"] and "weight set to zero" in current["reason"]


def test_a_quiet_but_steady_canary_still_passes(analyzer: AnalyzerServer) -> None:
    body = answer(analyzer, "quiet")
    assert body["verdict"] == "pass", body["reasons"]
    assert 0 < checks(body)["canary_current"]["canary"] <= 20


# --- the same span, the same test, on every replica ------------------------------------------------------


def comparable(body: dict) -> dict:
    """The whole answer but the request's own trace and the queries sent, which depend on what each replica
    remembered (a start already found, minutes already read), not on what they measured."""
    return {key: value for key, value in body.items() if key not in ("trace_id", "queries")}


def test_two_analyzers_sharing_a_prometheus_judge_the_same_moment_alike(
    start_analyzer: Callable[..., AnalyzerServer], prometheus: LocalPrometheus, now: float
) -> None:
    """One has read every minute of the last quarter hour, answer by answer; the other nothing yet."""
    warm, cold = start_analyzer(prometheus_url=prometheus.url), start_analyzer(prometheus_url=prometheus.url)
    moment = now - MINUTE
    for minutes_before in range(15, 0, -1):
        answer(warm, "late-errors", moment - minutes_before * MINUTE)
    for service in ("late-errors", "silent", "fallen", "quiet"):
        assert comparable(answer(warm, service, moment)) == comparable(answer(cold, service, moment)), service


def test_a_restarted_analyzer_gives_the_answers_it_would_have_given(
    start_analyzer: Callable[..., AnalyzerServer], prometheus: LocalPrometheus, now: float
) -> None:
    """Ten answers a minute apart across the onset: one analyzer throughout, against one restarted halfway
    (a new process: nothing remembered)."""
    moments = [now - (ONSET_MINUTES_AGO + 5) * MINUTE + i * MINUTE for i in range(10)]
    throughout = start_analyzer(prometheus_url=prometheus.url)
    expected = [comparable(answer(throughout, "late-errors", m)) for m in moments]
    before = start_analyzer(prometheus_url=prometheus.url)
    first = [comparable(answer(before, "late-errors", m)) for m in moments[:5]]
    before.stop()
    after = start_analyzer(prometheus_url=prometheus.url)
    rest = [comparable(answer(after, "late-errors", m)) for m in moments[5:]]
    assert first + rest == expected
    assert {body["verdict"] for body in expected} >= {"pass", "fail"}  # the replay crosses the onset
