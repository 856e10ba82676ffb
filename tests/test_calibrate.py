"""`canary-analyzer calibrate` against a real Prometheus holding a service's own history (tests/support/calibration.py):
twenty stable pods with a daily cycle, one of them 30 % slower; and a service whose one pod takes the batch jobs."""

from __future__ import annotations

import ast
import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from app.analysis import settled_minute
from app.calibration.history import Asking, History, history_of
from app.calibration.split import split
from app.cli import cli
from app.demo.local_prometheus import LocalPrometheus, backfill, ensure_installed
from app.models import CalibrationRequest
from app.presets import Preset
from app.prometheus import PrometheusClient, build_http_client
from app.settings import load_settings
from tests.support import calibration
from tests.support.calibration import BATCH_POD, BUCKETS, SHOP, SLOW_POD
from tests.support.hostile_prometheus import HostilePrometheus, forwarded_after

CLI = str(Path(sys.executable).parent / "canary-analyzer")
PERIOD = "1d"


def run(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_")} | settings
    return subprocess.run([CLI, "calibrate", *args], capture_output=True, text=True, timeout=120, env=env)


def invoke(*args: str) -> Result:
    """The same command in process, for answers that read little: no interpreter to start."""
    unset = {name: None for name in os.environ if name.startswith("PROMETHEUS_")}
    return CliRunner().invoke(cli, ["calibrate", *args], env=unset)


@pytest.fixture(scope="module")
def history_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrometheus]:
    """A day and more of the services' history, scraped every minute, up to now and an hour past it."""
    ensure_installed()
    data = tmp_path_factory.mktemp("calibrate") / "data"
    backfill(calibration.openmetrics(time.time()), data)
    with LocalPrometheus(data) as prometheus:
        yield prometheus


@pytest.fixture(scope="module")
def shop(history_prometheus: LocalPrometheus) -> tuple[int, dict]:
    """The day replayed, every figure as JSON."""
    result = run("--service", "shop", "--period", PERIOD, "--json", "--prometheus-url", history_prometheus.url)
    return result.returncode, json.loads(result.stdout)


def test_the_aa_figures_of_a_healthy_stable_are_within_the_promise(shop: tuple[int, dict]) -> None:
    code, figures = shop
    assert code == 0 and figures["within_promise"], figures["reasons"]
    assert figures["reasons"][0].startswith("within the analyzer's promise")
    assert (figures["label"], figures["period"], figures["alpha"]) == ("pod", PERIOD, 0.01)
    step, background = figures["templates"]
    assert step["template"] == "step" and step["runs"] > 150 and step["every"] == "7m"
    assert background["template"] == "background" and background["runs"] >= 20 and background["measurements"] == 60
    for template in (step, background):
        assert template["aborted"]["share"] <= 0.01 and template["aborted"]["within"]
        assert template["paused"]["share"] <= 0.05 and template["paused"]["within"]
        assert template["aborted"]["count"] + template["paused"]["count"] + template["promoted"] == template["runs"]
        assert set(template["by_canary"]) == {"A", "B"}
    assert figures["cost"]["queries"] >= 4 and figures["cost"]["answers"] > 5 * step["runs"]


def test_the_slow_pod_is_named_with_what_the_relative_checks_do_with_it(shop: tuple[int, dict]) -> None:
    _, figures = shop
    named = [value for value in figures["values"] if value["differs"]]
    assert [value["value"] for value in named] == [SLOW_POD]
    [slow] = named
    latency = next(c for c in slow["against_the_rest"] if c["check"] == "p95_latency_vs_stable")
    assert 1.2 < latency["estimate"] < 1.4 and latency["low"] > 1.1 and latency["beyond"]
    assert slow["consequences"][0].startswith(f"p95_latency_vs_stable fails a canary whose pods serve like {SLOW_POD}")
    assert any(reason.startswith(f"{SLOW_POD}'s latency is 1.3") for reason in figures["reasons"])
    # Diluted in its half: the halves differ within the tolerance, and the A/A keeps the promise.
    half = next(h for h in figures["halves"] if SLOW_POD in h["values"])
    against = next(c for c in half["against_the_other"] if c["check"] == "p95_latency_vs_stable")
    assert 1.0 < against["estimate"] < 1.1 and not against["beyond"]


def test_the_slo_between_two_bounds_is_named_with_the_bound_to_add(shop: tuple[int, dict]) -> None:
    _, figures = shop
    buckets = figures["buckets"]
    assert (buckets["unit"], buckets["bounds"]) == ("seconds", list(BUCKETS))
    [slo] = buckets["slos"]
    # The default SLO, 300 ms, between the history's bounds 250 ms and 500 ms.
    assert (slo["check"], slo["slo"], slo["where"], slo["lower"], slo["upper"]) == (
        "p95_latency", 0.3, "between bounds", 0.25, 0.5,
    )  # fmt: skip
    assert slo["add"] == 0.3 and buckets["add"] == [0.3]
    call = ast.parse(buckets["lines"]["Python prometheus_client"], mode="eval").body
    assert isinstance(call, ast.Call)
    assert ast.literal_eval(call.keywords[0].value) == tuple(sorted((*BUCKETS, 0.3)))
    assert buckets["lines"]["Go client_golang"] == "Buckets: []float64{0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1.0},"
    # Every answer of the replay judged again, template by template.
    assert [a["template"] for a in slo["answers"]] == ["step", "background"]
    assert sum(a["answers"] for a in slo["answers"]) == figures["cost"]["answers"]
    # The service's P95 (lognormal) is far under the SLO, in the bucket below its own: the check decides.
    p95 = SHOP.median_seconds * math.exp(1.6449 * SHOP.sigma)
    assert 0.1 < p95 < 0.25 and slo["in_slo_bucket"] == 0 and slo["windows"] >= 280
    for answers in slo["answers"]:
        assert answers["share"] > 0.95 and answers["failed"] == 0
        assert answers["with_bound"] >= answers["decided"] and answers["with_bound_failed"] == 0


def test_an_slo_on_a_bound_asks_for_no_bound(history_prometheus: LocalPrometheus) -> None:
    result = invoke(
        "--service", "shop", "--period", "3h", "--p95-max-seconds", "0.25", "--json",
        "--prometheus-url", history_prometheus.url,
    )  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    buckets = json.loads(result.stdout)["buckets"]
    [slo] = buckets["slos"]
    assert (slo["where"], slo["lower"], slo["upper"], slo["add"]) == ("on a bound", 0.25, 0.25, None)
    assert (buckets["add"], buckets["lines"]) == ([], {})
    assert slo["shown"][0].endswith("is a bucket bound: counted exactly, nothing to add")


def test_pods_that_restart_or_come_and_go_leave_their_minutes_out(shop: tuple[int, dict]) -> None:
    by_pod = {value["value"]: value for value in shop[1]["values"]}
    assert by_pod[calibration.RESTARTED_POD]["left_out"] == 1  # the minute its counters fell
    assert by_pod[calibration.GONE_POD]["left_out"] == 1 and by_pod[calibration.NEW_POD]["left_out"] == 1
    assert len(by_pod) == 21


@pytest.mark.anyio
async def test_the_split_is_the_same_however_the_history_is_read(
    shop: tuple[int, dict], history_prometheus: LocalPrometheus
) -> None:
    """Read again in smaller chunks, more at a time: the same minutes, the same halves as the command's."""

    async def read(**limits: int) -> History:
        settings = load_settings(prometheus_url=history_prometheus.url)
        async with build_http_client(settings) as http:
            asking = Asking(PrometheusClient(http), limits.pop("concurrency", 2))
            request = CalibrationRequest(service="shop", period="3h")
            return await history_of(asking, Preset(), request, settled_minute(time.time()), **limits)

    whole = await read(max_samples=100_000, max_series=2000)
    chunked = await read(max_samples=5_000, max_series=2000, concurrency=4)
    assert chunked.spent.queries > whole.spent.queries >= 4
    assert chunked.values == whole.values and (chunked.kept == whole.kept).all()
    assert (chunked.ok == whole.ok).all() and (chunked.buckets == whole.buckets).all()
    halves = {h["half"]: tuple(h["values"]) for h in shop[1]["halves"]}
    again = split("pod", [*chunked.values, calibration.GONE_POD])  # the day's pods: one was gone 3 hours ago
    assert (again.a, again.b) == (halves["A"], halves["B"])


def test_the_terminal_shows_the_tables_and_what_reading_cost_and_the_page_the_same(
    history_prometheus: LocalPrometheus, tmp_path: Path
) -> None:
    written = tmp_path / "shop.html"
    result = run(
        "--service", "shop", "--period", "3h", "--html", str(written), "--prometheus-url", history_prometheus.url
    )
    assert result.returncode in (0, 1), result.stderr
    html = written.read_text()
    assert "<svg" in html and html.count("data-verdict=") > 20
    first_reason = result.stdout.splitlines()[0].split(":", 1)[1].strip()
    assert first_reason.split(";")[0] in html  # the same figures, read from the same view
    head = "WITHIN THE ANALYZER'S PROMISE:" if result.returncode == 0 else "BEYOND THE ANALYZER'S PROMISE:"
    assert result.stdout.startswith(head)
    assert "A/A on shop's 'stable' pods, split by pod" in result.stdout
    assert "The halves, each against the other over the period" in result.stdout
    assert "Each pod that differs from the rest" in result.stdout and SLOW_POD in result.stdout
    assert "SLO and buckets\n  p95_latency: the SLO of 300 ms is between the bounds 250 ms and 500 ms" in result.stdout
    assert "\n      Buckets: []float64{0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1.0},\n" in result.stdout
    assert "Power: regressions injected into the canary half" in result.stdout
    cost = result.stdout.rstrip().splitlines()[-1]
    assert re.fullmatch(
        r"Prometheus: \d+ queries \(0 refused as too large and asked again in halves\), [\d,]+ samples, in "
        r"\d+\.\d s, at most 2 at a time\. Replayed [\d,]+ runs \([\d,]+ answers\) in \d+\.\d s\.",
        cost,
    ), cost
    assert result.stderr == ""  # no progress bar off a terminal


def test_a_pod_that_takes_the_batch_jobs_breaks_the_promise(history_prometheus: LocalPrometheus) -> None:
    result = run("--service", "jobs", "--period", "3h", "--json", "--prometheus-url", history_prometheus.url)
    assert result.returncode == 1, result.stderr
    figures = json.loads(result.stdout)
    assert not figures["within_promise"] and figures["reasons"][0].startswith("beyond the analyzer's promise")
    [batch] = [value for value in figures["values"] if value["beyond"]]
    assert batch["value"] == BATCH_POD
    assert {c["check"] for c in batch["against_the_rest"] if c["beyond"]} == {
        "p95_latency_vs_stable",
        "error_rate_vs_stable",
    }
    step = figures["templates"][0]
    assert step["aborted"]["count"] == step["by_canary"][batch["half"]]["aborted"] > 0


def test_a_read_slower_than_the_polls_first_byte_cut_off_is_waited_for(history_prometheus: LocalPrometheus) -> None:
    """A range of days is evaluated whole before Prometheus sends a byte: calibrate's reads keep their own deadline,
    not the one that ends a slow poll (at 1000x the demo's series a week's survey took longer than its 5 s)."""
    with HostilePrometheus() as slow:
        slow.reply = forwarded_after(history_prometheus.url, 1.5)
        unset = {name: None for name in os.environ if name.startswith("PROMETHEUS_")}
        env = unset | {"PROMETHEUS_FIRST_BYTE_TIMEOUT_SECONDS": "1"}
        args = ["calibrate", "--service", "jobs", "--period", "2h", "--json", "--prometheus-url", slow.url]
        result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code in (0, 1), result.output
    assert json.loads(result.stdout)["cost"]["queries"] > 0


def test_prometheus_that_cannot_be_read_exits_3(dead_prometheus_url: str) -> None:
    result = invoke("--service", "shop", "--period", "3h", "--prometheus-url", dead_prometheus_url)
    assert result.exit_code == 3 and result.stdout == ""
    assert "could not read: Prometheus connection" in result.stderr
    assert isinstance(result.exception, SystemExit)  # said, not raised
    answer = invoke("--service", "shop", "--period", "3h", "--json", "--prometheus-url", dead_prometheus_url)
    assert answer.exit_code == 3 and json.loads(answer.stdout)["error"] == "prometheus_unavailable"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--split-label", "zone"),
            "Error: the label 'zone' does not tell the stable's pods apart: its series carry one value of 'zone' "
            "(eu-west-1a); name a label with a value per pod with --split-label",
        ),
        (("--period", "3d"), "not the 3d asked for: give --period 1d"),
        (("--stable", "v9"), "Error: no series of the 'v9' version of 'shop' in the last 3h"),
        (("--period", "1h"), "Error: --period: period must be between 2h and 31d, got 1h"),
        (("--split-label", "version"), "Error: --split-label: 'version' is a label the queries group or select by"),
        (("--preset", "istio", "--stable", ""), "Error: --stable: an empty stable is only for presets"),
        (("--html", "/no/such/folder/page.html"), "Error: --html: /no/such/folder is not a directory"),
    ],
)
def test_what_cannot_be_calibrated_exits_4_saying_why(
    history_prometheus: LocalPrometheus, args: tuple[str, ...], message: str
) -> None:
    period = () if "--period" in args else ("--period", "3h")
    result = invoke("--service", "shop", *period, *args, "--prometheus-url", history_prometheus.url)
    assert result.exit_code == 4, result.output
    assert isinstance(result.exception, SystemExit)  # said, not raised
    assert message in result.stderr and result.stdout == ""


def test_the_benchmarks_regressions_injected_are_caught_in_95_percent_of_step_runs(shop: tuple[int, dict]) -> None:
    """Power on real traffic: x1.25 latency and +3 points of 5xx injected into the canary half of twenty pods."""
    code, figures = shop
    power = figures["power"]
    assert code == 0  # power is not part of the promise
    by_name = {(found["regression"], found["template"]): found for found in power["injected"]}
    assert len(by_name) == 12
    for name in ("x1.25 latency", "+3 points of 5xx"):
        step = by_name[(name, "step")]
        assert step["aborted"]["runs"] == power["most_runs"] == 100  # a day's 200-odd step runs, capped
        assert step["aborted"]["share"] >= 0.95 and step["aborted"]["caught"], step
        assert 2 <= step["median_minutes"] <= step["p90_minutes"] <= 6  # the first answer is 2 minutes in
        background = by_name[(name, "background")]
        assert background["aborted"]["share"] >= 0.95 and background["median_minutes"] is not None
    assert by_name[("x1.25 latency", "step")]["failed_checks"].keys() == {"p95_latency_vs_stable"}
    assert "error_rate_vs_stable" in by_name[("+3 points of 5xx", "step")]["failed_checks"]
    # At the tolerance itself (1.1x) a step analysis seldom aborts: power is not bought with false alarms.
    assert by_name[("x1.1 latency", "step")]["aborted"]["share"] < 0.5
    smallest = {search["kind"]: search for search in power["smallest"]}
    assert 1.1 < smallest["latency"]["size"] <= 1.25 and 0.005 < smallest["errors"]["size"] <= 0.03
    for search in smallest.values():
        caught = next(tried for tried in search["tried"] if tried["size"] == search["size"])
        assert caught["aborted"]["caught"]
        assert all(not tried["aborted"]["caught"] for tried in search["tried"] if tried["size"] < search["size"])
    assert any(reason.startswith("power: a step analysis catches x1.") for reason in figures["reasons"])
    assert 15 < sum(power["rps"].values()) < 60 and power["runs"] >= 6 * (100 + 20) and power["seconds"] > 0
