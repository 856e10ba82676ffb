"""A team's own checks from a file: loaded into checks like the built-in ones, or refused with the
line, the field and why."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_api_client import PrometheusConnect

from app.demo.local_prometheus import LocalPrometheus
from app.judge.checks import Bound, Method, Statistic
from app.judge.units import Unit
from app.user_checks import load
from app.yaml_files import FileError
from tests.support import business
from tests.support.servers import AnalyzerServer

CONVERSION = """\
checks:
  - name: checkout_conversion
    title: checkout conversion
    events: sum(increase(orders_total{app="$service",version="$version"}[$window]))
    trials: sum(increase(visits_total{app="$service",version="$version"}[$window]))
    worse: lower
    compare: stable
    limit: {field: conversion_drop_max, default: 0.02, minimum: 0, maximum: 1, description: May fall this much.}
  - name: queue_lag
    title: queue lag
    value: max(queue_lag_seconds{app="$service",version="$version"})
    unit: seconds
    worse: higher
    compare: slo
    method: threshold
    limit: {field: queue_lag_max_seconds, default: 30, minimum: 0, maximum: 86400, description: Queue lag SLO.}
"""


def written(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "checks.yaml"
    path.write_text(text)
    return path


def test_checks_from_a_file(tmp_path: Path) -> None:
    conversion, lag = load(written(tmp_path, CONVERSION))
    assert (conversion.statistic, conversion.bound, conversion.method) == (
        Statistic.RATIO,
        Bound.STABLE_MINUS,  # lower is worse: the canary may fall at most the limit below the stable
        Method.TWO_PROPORTIONS,
    )
    assert conversion.source == "check:checkout_conversion" and conversion.unit is Unit.RATIO
    assert (lag.statistic, lag.bound, lag.method, lag.unit) == (
        Statistic.VALUE,
        Bound.AT_MOST,
        Method.POINT,
        Unit.SECONDS,
    )
    assert lag.limit.field == "queue_lag_max_seconds" and lag.limit.default == 30
    assert load(written(tmp_path, "checks: []\n")) == ()  # a file with none yet is fine


EVENTS = 'app="$service",version="$version"}[$window]))\n    trials'


def replaced(old: str, new: str) -> str:
    assert old in CONVERSION
    return CONVERSION.replace(old, new, 1)


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        (replaced("worse: lower", "worse: sideways"), 6, "checks.0.worse: Input should be 'higher' or 'lower'"),
        (replaced(EVENTS, EVENTS.replace('"$service"', '~".*$service"')), 4, "$service must stand alone"),
        (replaced(EVENTS, EVENTS.replace("[$window]", "[$window] offset $when")), 4, "placeholders ['when']"),
        (replaced(EVENTS, EVENTS.replace(',version="$version"', "")), 4, "a query must select the version"),
        (replaced("    method: threshold\n", ""), 9, "a value is held to its limit as it is"),
        (replaced("default: 30,", "default: -1,"), 16, "default -1 is outside [0, 86400]"),
        (replaced("name: queue_lag", "name: error_rate"), 9, "'error_rate' is a built-in check"),
        (replaced("field: queue_lag_max_seconds", "field: min_requests"), 9, "'min_requests' is a built-in check's"),
        (replaced("field: queue_lag_max_seconds", "field: window"), 9, "'window' is a request field's name"),
        (replaced("name: queue_lag", "name: checkout_conversion"), 1, "name must be unique: checkout_conversion"),
        ("checks: {}\n", 1, "checks: Input should be a valid list"),
        ("checks:\n  - name: [\n", 3, "not valid YAML"),
    ],
)  # fmt: skip
def test_a_malformed_file_names_the_line_and_why(tmp_path: Path, text: str, line: int, problem: str) -> None:
    path = written(tmp_path, text)
    with pytest.raises(FileError) as caught:
        load(path)
    assert f"{path}:{line}: " in str(caught.value) and problem in str(caught.value), caught.value


def test_an_unreadable_file_is_refused_by_name(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(FileError, match=f"{missing}: cannot be read"):
        load(missing)


@pytest.fixture(scope="module")
def checks_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("checks") / "checks.yaml"
    path.write_text(business.CHECKS_FILE)
    return path


@pytest.fixture(scope="module")
def shop_analyzer(
    start_analyzer: Callable[..., AnalyzerServer], prometheus: LocalPrometheus, checks_file: Path
) -> AnalyzerServer:
    return start_analyzer(prometheus_url=prometheus.url, checks_file=str(checks_file))


def by_name(body: dict) -> dict[str, dict]:
    return {check["name"]: check for check in body["checks"]}


def test_a_teams_checks_are_judged_beside_the_built_in_ones(shop_analyzer: AnalyzerServer) -> None:
    steady = shop_analyzer.analyze(service=business.STEADY).json()
    assert steady["verdict"] == "pass", steady["reasons"]
    checks = by_name(steady)
    assert {"p95_latency", "error_rate_vs_stable", "checkout_conversion", "queue_lag"} <= set(checks)
    conversion, lag = checks["checkout_conversion"], checks["queue_lag"]
    assert (conversion["verdict"], lag["verdict"]) == ("pass", "pass")
    assert conversion["canary"] == pytest.approx(0.3, abs=0.005) and conversion["unit"] == "ratio"
    assert conversion["statistics"]["method"] == "miettinen-nurminen and e-process, anytime"
    assert lag["canary"] == 2 and lag["unit"] == "seconds" and lag["statistics"] is None
    assert steady["thresholds"]["conversion_drop_max"] == 0.02
    # Its own queries, one per version and part, sent as the file wrote them with the values filled in.
    sent, span = steady["queries"]["check:checkout_conversion:canary:events"], steady["confidence"]["span"]
    assert sent == f'sum(increase(orders_total{{service="{business.STEADY}",version="canary"}}[{span}]))'

    drop = shop_analyzer.analyze(service=business.DROP).json()
    assert drop["verdict"] == "fail"
    checks = by_name(drop)
    assert checks["checkout_conversion"]["verdict"] == "fail" and checks["queue_lag"]["verdict"] == "fail"
    assert checks["p95_latency"]["verdict"] == "pass"  # the HTTP traffic is healthy; the business is not
    statistics = checks["checkout_conversion"]["statistics"]
    # How much worse the canary converts: 10 points, surely more than the 2 tolerated.
    assert statistics["estimate"] == pytest.approx(0.1, abs=0.005) and statistics["interval"]["low"] > 0.02
    assert any("checkout conversion" in reason for reason in drop["reasons"]), drop["reasons"]


def test_a_user_checks_limits_are_request_fields(shop_analyzer: AnalyzerServer) -> None:
    body = shop_analyzer.analyze(service=business.DROP, conversion_drop_max="0.5", queue_lag_max_seconds="60").json()
    assert body["verdict"] == "pass", body["reasons"]
    assert body["thresholds"]["queue_lag_max_seconds"] == 60
    refused = shop_analyzer.analyze(service=business.DROP, queue_lag_max_seconds="-1")
    assert refused.status_code == 422 and "queue_lag_max_seconds" in refused.text
    posted = httpx.post(f"{shop_analyzer.url}/analyze", json={"service": business.DROP, "conversion_drop_max": 0.5})
    assert by_name(posted.json())["checkout_conversion"]["verdict"] == "pass"
    schema = httpx.get(f"{shop_analyzer.url}/openapi.json").json()["components"]["schemas"]["AnalysisRequest"]
    [number] = [kind for kind in schema["properties"]["conversion_drop_max"]["anyOf"] if kind["type"] == "number"]
    assert (number["minimum"], number["maximum"]) == (0, 1)


def test_the_numbers_agree_with_an_independent_client(
    shop_analyzer: AnalyzerServer, prometheus: LocalPrometheus
) -> None:
    body = shop_analyzer.analyze(service=business.DROP).json()
    oracle = PrometheusConnect(url=prometheus.url, disable_ssl=True)
    at = body["evaluated_at"]
    for check in (c for c in body["checks"] if c["name"] in ("checkout_conversion", "queue_lag")):
        for role in ("canary", "stable"):
            [sample] = oracle.custom_query(check["queries"][role], params={"time": at})
            assert float(sample["value"][1]) == pytest.approx(check[role], rel=1e-9), (check["name"], role)


def test_the_report_shows_a_teams_checks(shop_analyzer: AnalyzerServer) -> None:
    page = shop_analyzer.analyze(service=business.DROP, format="html")
    assert page.status_code == 200
    assert "checkout conversion" in page.text and "queue lag" in page.text
    assert "orders_total" in page.text  # the PromQL behind the number


def test_the_analyzer_counts_a_teams_checks_from_zero(shop_analyzer: AnalyzerServer) -> None:
    text = httpx.get(f"{shop_analyzer.url}/metrics").text
    assert 'canary_analyzer_checks_total{check="queue_lag",outcome="fail",scope="whole"}' in text


CLI = str(Path(sys.executable).parent / "canary-analyzer")


def cli(*args: str, checks: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_")} | {"CHECKS_FILE": str(checks)}
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60, env=env)


def test_the_cli_judges_a_teams_checks_too(prometheus: LocalPrometheus, checks_file: Path) -> None:
    assert "--conversion-drop-max" in cli("analyze", "--help", checks=checks_file).stdout
    analyze = ("analyze", "--service", business.DROP, "--prometheus-url", prometheus.url)
    failed = cli(*analyze, checks=checks_file)
    assert failed.returncode == 1 and "checkout_conversion" in failed.stdout, failed.stderr
    relaxed = cli(*analyze, "--conversion-drop-max", "0.5", "--queue-lag-max-seconds", "60", checks=checks_file)
    assert relaxed.returncode == 0, relaxed.stdout + relaxed.stderr


def test_a_bad_checks_file_stops_the_server_and_the_cli(tmp_path: Path) -> None:
    bad = written(tmp_path, replaced("worse: lower", "worse: sideways"))
    for command in (["serve", "--port", "1"], ["analyze", "--service", "x"]):
        result = cli(*command, checks=bad)
        assert result.returncode == 4, result.stderr
        assert f"{bad}:6: checks.0.worse: Input should be 'higher' or 'lower'" in result.stderr
        assert "Traceback" not in result.stderr
