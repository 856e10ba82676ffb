"""`canary-analyzer analyze` exit codes against the real test Prometheus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.demo.local_prometheus import LocalPrometheus, free_port
from app.judge.builtin_checks import CHECKS
from tests.support.recorder import RecordingPrometheus

CLI = str(Path(sys.executable).parent / "canary-analyzer")


def run(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_")} | settings
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60, env=env)


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
        assert "estimate and its bounds" in result.stdout and "alpha 0.01 per AnalysisRun of 5 polls" in result.stdout
        assert "a fail needs the lower bound above the limit" in result.stdout
    else:  # the thin canary's numbers are no P95 yet
        assert "requests: not yet meaningful" in result.stdout


def test_json_output_is_the_api_answer(prometheus: LocalPrometheus) -> None:
    result = run("analyze", "--service", "latency-regression", "--prometheus-url", prometheus.url, "--json")
    assert result.returncode == 1
    body = json.loads(result.stdout)
    assert body["verdict"] == "fail"
    assert {check["name"] for check in body["checks"]} >= {"p95_latency", "error_rate_vs_stable"}


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


@pytest.mark.parametrize(
    "args",
    [
        ("analyze",),
        ("analyze", "--service", 'x"} or vector(1)'),
        ("analyze", "--service", "x", "--window", "forever"),
        ("analyze", "--service", "x", "--min-requests", "lots"),
        ("analyze", "--service", "x", "--prometheus-url", "not-a-url"),
        ("nonsense",),
    ],
)
def test_bad_usage_is_exit_4_not_inconclusive(args: tuple[str, ...]) -> None:
    result = run(*args)
    assert result.returncode == 4, result.stdout + result.stderr
    assert "Error" in result.stderr


def test_help_is_complete() -> None:
    top = run("--help")
    assert top.returncode == 0 and "analyze" in top.stdout and "serve" in top.stdout
    analyze = run("analyze", "--help").stdout
    for option in ("--service", "--canary", "--stable", "--window", "--prometheus-url", "--json"):
        assert option in analyze
    for check in CHECKS:  # every limit is an option, described by its check
        assert f"--{check.limit.field.replace('_', '-')}" in analyze
    assert "Canary P95 SLO in seconds (default 0.3)" in " ".join(analyze.split())
    assert "3  could not measure" in analyze


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
