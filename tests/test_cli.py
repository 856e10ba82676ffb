"""`canary-analyzer analyze` exit codes against the real test Prometheus."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Literal

import click
import httpx
import pytest
from pydantic import Field

from app import promql
from app.cli import request_options
from app.demo.local_prometheus import LocalPrometheus, free_port
from app.judge.builtin_checks import CHECKS
from app.models import AnalysisRequest
from tests.support.recorder import RecordingPrometheus
from tests.support.scenarios import CANARY_AGE_SECONDS

CLI = str(Path(sys.executable).parent / "canary-analyzer")


def run(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_")} | settings
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60, env=env)


def column(table: str, header: str) -> str:
    """A rich table's column as one text, its cells' wrapped lines joined."""
    lines = [line for line in table.splitlines() if line.startswith(("┃", "│"))]
    cells = [[cell.strip() for cell in line.strip("┃│").split("┃" if line.startswith("┃") else "│")] for line in lines]
    at = cells[0].index(header)
    return " ".join(row[at] for row in cells[1:] if row[at])


@pytest.mark.parametrize(
    ("service", "code", "verdict"),
    [("healthy", 0, "PASS"), ("latency-regression", 1, "FAIL"), ("low-traffic", 2, "INCONCLUSIVE")],
)
def test_exit_code_follows_the_verdict(prometheus: LocalPrometheus, service: str, code: int, verdict: str) -> None:
    result = run("analyze", "--service", service, "--prometheus-url", prometheus.url)
    assert result.returncode == code, result.stderr
    assert result.stdout.startswith(verdict)
    assert "p95_latency" in result.stdout  # the table of checks
    if code != 2:  # a judged canary: each check's estimate and its bounds, and the levels behind them
        assert "estimate and its bounds" in result.stdout
        assert "alpha 0.01 over every answer of the run, however many: 0.0025 per check" in result.stdout
        assert "a fail needs the lower bound above the limit" in column(result.stdout, "estimate and its bounds")
    else:  # the thin canary's numbers are no P95 yet
        assert "requests: not yet meaningful" in result.stdout


def test_the_table_names_the_data_it_judged_and_the_guarantee_in_its_own_terms(
    prometheus: LocalPrometheus, backfilled_at: float
) -> None:
    args = ("analyze", "--service", "latency-regression", "--prometheus-url", prometheus.url)
    anytime = run(*args).stdout
    # The canary's data since it started (minutes of it), not the 5m window.
    span = re.search(r"latency-regression: canary vs stable since the canary started, (\S+) *\n", anytime)
    assert span, anytime
    age = time.time() - (backfilled_at - CANARY_AGE_SECONDS)
    assert abs(promql.duration_seconds(span[1]) - age) < 90, (span[1], age)
    assert "over 5m" not in anytime and "polls" not in anytime and "failureLimit" not in anytime

    fixed = run(*args, "--guarantee", "fixed_polls").stdout
    assert re.search(r"latency-regression: canary vs stable over the 5m window *\n", fixed), fixed
    assert "alpha 0.01 per AnalysisRun of 5 polls (failureLimit 1), 0.001 per check and answer" in fixed
    assert "however many" not in fixed

    threshold = run(*args, "--mode", "threshold", "--window", "10m").stdout
    assert re.search(r"latency-regression: canary vs stable over the 10m window *\n", threshold), threshold
    assert "statistical:" not in threshold


def test_json_output_is_the_api_answer(prometheus: LocalPrometheus) -> None:
    result = run("analyze", "--service", "latency-regression", "--prometheus-url", prometheus.url, "--json")
    assert result.returncode == 1
    body = json.loads(result.stdout)
    assert body["verdict"] == "fail"
    assert {check["name"] for check in body["checks"]} >= {"p95_latency", "error_rate_vs_stable"}


def test_every_field_of_the_request_is_an_option_that_does_what_the_field_does(prometheus: LocalPrometheus) -> None:
    args = ("analyze", "--service", "healthy", "--prometheus-url", prometheus.url, "--json")
    levels = ("--guarantee", "fixed_polls", "--polls", "10", "--failure-limit", "2")
    result = run(*args, *levels, "--alpha", "0.02", "--pass-confidence", "0.7")
    assert result.returncode == 0, result.stderr
    confidence = json.loads(result.stdout)["confidence"]
    assert confidence["guarantee"] == "fixed_polls" and confidence["data"] == "window"
    assert (confidence["alpha"], confidence["polls"], confidence["failure_limit"]) == (0.02, 10, 2)
    assert confidence["pass_confidence"] == 0.7


def test_thresholds_can_be_overridden(prometheus: LocalPrometheus) -> None:
    args = ("analyze", "--service", "latency-regression", "--prometheus-url", prometheus.url)
    assert run(*args, "--p95-max-seconds", "1", "--p95-ratio-max", "10").returncode == 0


def test_at_judges_the_past(prometheus: LocalPrometheus) -> None:
    from datetime import UTC, datetime, timedelta

    then = (datetime.now(UTC) - timedelta(minutes=30)).isoformat()
    args = ("analyze", "--service", "stopped", "--prometheus-url", prometheus.url)
    assert run(*args).returncode == 2
    assert run(*args, "--at", then).returncode == 0


def test_a_namespace_is_read_from_its_backend_tenant(tmp_path: Path) -> None:
    tenants = tmp_path / "tenants.yaml"
    tenants.write_text("team-a: tenant-a\nteam-b: tenant-b\n")
    with RecordingPrometheus() as mimir:
        args = ("analyze", "--service", "shop", "--namespace", "team-b", "--prometheus-url", mimir.url)
        result = run(*args, TENANTS_FILE=str(tenants))
    assert result.returncode == 2, result.stderr  # no data in the stand-in: inconclusive
    assert mimir.queries and all('namespace="team-b"' in query for query in mimir.queries)
    assert set(mimir.tenants) == {"tenant-b"}


def test_prometheus_down_is_exit_3(dead_prometheus_url: str) -> None:
    result = run("analyze", "--service", "healthy", "--prometheus-url", dead_prometheus_url)
    assert result.returncode == 3
    assert "could not measure" in result.stderr
    as_json = run("analyze", "--service", "healthy", "--prometheus-url", dead_prometheus_url, "--json")
    assert as_json.returncode == 3
    body = json.loads(as_json.stdout)  # the API's error body, its four keys
    assert body == {
        "error": "prometheus_unavailable",
        "cause": "connection",
        "detail": body["detail"],
        "trace_id": None,
    }


@pytest.mark.parametrize(
    "args",
    [
        ("analyze",),
        ("analyze", "--service", 'x"} or vector(1)'),
        ("analyze", "--service", "x", "--window", "forever"),
        ("analyze", "--service", "x", "--min-requests", "lots"),
        ("analyze", "--service", "x", "--prometheus-url", "not-a-url"),
        ("analyze", "--service", "x", "--guarantee", "sometimes"),
        ("serve", "--port", "99999"),
        ("nonsense",),
    ],
)
def test_bad_usage_is_exit_4_not_inconclusive(args: tuple[str, ...]) -> None:
    result = run(*args)
    assert result.returncode == 4, result.stdout + result.stderr
    assert "Error" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--window", "1w"), "Error: --window: window must be between 30s and 1d, got 1w"),
        (("--polls", "0"), "Error: --polls: Input should be greater than or equal to 1"),
        (("--polls", "2", "--failure-limit", "2"), "Error: input: failure_limit must be below polls"),
        (("--stable", ""), "Error: --stable: an empty stable is only for presets whose stable carries no version"),
    ],
)
def test_bad_input_names_the_option_at_fault(args: tuple[str, ...], message: str) -> None:
    result = run("analyze", "--service", "x", *args)
    assert result.returncode == 4 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


SERVE = ("serve", "--host", "127.0.0.1")
ANALYZE = ("analyze", "--service", "x")


@pytest.mark.parametrize(
    ("command", "settings", "message"),
    [
        (
            command,
            {"PRESET_OVERRIDES": '{"default": {"service_lable": "x"}}'},
            "Error: PRESET_OVERRIDES: preset 'default': service_lable: Extra inputs are not permitted\n",
        )
        for command in (SERVE, ANALYZE)
    ]
    + [  # the same reading of the settings for both commands: each other problem once (tests/test_settings.py)
        (SERVE, {"PRESET_OVERRIDES": "{'default': {}}"}, "Error: PRESET_OVERRIDES: not valid JSON"),
        (ANALYZE, {"SERVICE_LABEL": "app name"}, "Error: SERVICE_LABEL: 'app name' is not a valid Prometheus label"),
        (ANALYZE, {"CHECKS_FILE": "/nonexistent/checks.yaml"}, "Error: CHECKS_FILE: /nonexistent/checks.yaml: cannot"),
        (SERVE, {"ACCESS_FILE": "/nonexistent/access.yaml"}, "Error: ACCESS_FILE: /nonexistent/access.yaml: cannot"),
        (ANALYZE, {"TENANTS_FILE": "/nonexistent/tenants.yaml"}, "Error: TENANTS_FILE: /nonexistent/tenants.yaml"),
        (SERVE, {"PORT": "80000"}, "Error: PORT: Input should be less than or equal to 65535\n"),
    ],
    ids=[
        "override-typo-serve",
        "override-typo-analyze",
        "override-not-json",
        "legacy-variable",
        "checks-file",
        "access-file",
        "tenants-file",
        "port",
    ],
)
def test_a_bad_setting_stops_serve_and_analyze_naming_it(
    command: tuple[str, ...], settings: dict[str, str], message: str
) -> None:
    result = run(*command, **settings)
    assert result.returncode == 4, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_help_is_complete() -> None:
    top = run("--help")
    assert top.returncode == 0 and "analyze" in top.stdout and "serve" in top.stdout
    analyze = run("analyze", "--help").stdout
    for option in ("--service", "--canary", "--stable", "--window", "--prometheus-url", "--json"):
        assert option in analyze
    for check in CHECKS:  # every limit is an option, described by its check
        assert f"--{check.limit.field.replace('_', '-')}" in analyze
    for name in AnalysisRequest.model_fields:  # whatever the API takes, the command takes
        assert f"--{name.replace('_', '-')} " in analyze, name
    words = " ".join(analyze.split())
    assert "Canary P95 SLO in seconds (default 0.3)" in words
    assert "--guarantee [anytime|fixed_polls]" in words and "[default: anytime]" in words
    assert "3  could not measure" in analyze


def test_a_field_added_to_the_request_is_an_option_on_the_next_run() -> None:
    class Wider(AnalysisRequest):  # type: ignore[misc, valid-type]
        budget: Literal["low", "high"] | None = Field(default=None, description="How much to spend.")
        retries: int = Field(default=3, description="How often to ask again.")

    options = {option.name: option for option in request_options(Wider)}
    assert list(options) == list(Wider.model_fields)
    budget, retries = options["budget"], options["retries"]
    assert budget.opts == ["--budget"] and budget.type.choices == ("low", "high") and not budget.required
    assert retries.type is click.INT and retries.help == "How often to ask again.  [default: 3]"
    assert options["service"].required and options["at"].type is click.STRING


def test_serve_honours_port_from_the_environment(dead_prometheus_url: str) -> None:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "PROMETHEUS_URL": dead_prometheus_url}
    server = subprocess.Popen([CLI, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1)
                break
            except httpx.ConnectError:
                time.sleep(0.1)
        assert response.json() == {"status": "ok"}
    finally:
        server.terminate()
        server.wait(timeout=10)
