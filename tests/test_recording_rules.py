"""Recording rules: each preset's, evaluated by promtool over its exporter's real series in a real
Prometheus, read back by an analyzer pointed at them give the verdicts and the numbers the raw
series give."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import yaml

from app import recording_rules
from app.demo.local_prometheus import LocalPrometheus
from app.presets import PRESETS
from app.promql import duration_seconds
from app.settings import Settings
from tests.support.preset_scenarios import EXPORTERS, FUTURE_SECONDS, HISTORY_SECONDS, KINDS, Exporter
from tests.support.servers import ROOT, AnalyzerServer


@pytest.fixture(scope="module")
def recorded(preset_prometheus: LocalPrometheus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrometheus]:
    """A Prometheus holding only what the rules recorded from the exporters' series."""
    work = tmp_path_factory.mktemp("recorded")
    rules = work / "rules.yaml"
    groups = [recording_rules.rule_group(PRESETS[exporter.preset]) for exporter in EXPORTERS]
    rules.write_text(yaml.safe_dump({"groups": groups}))
    now = time.time()
    result = subprocess.run(
        [
            "promtool", "tsdb", "create-blocks-from", "rules", f"--url={preset_prometheus.url}",
            f"--start={int(now - HISTORY_SECONDS - 120)}", f"--end={int(now + FUTURE_SECONDS)}",
            f"--output-dir={work / 'data'}", "--quiet", str(rules),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    with LocalPrometheus(work / "data") as prometheus:
        yield prometheus


@pytest.fixture(scope="module")
def raw(start_analyzer: Callable[..., AnalyzerServer], preset_prometheus: LocalPrometheus) -> AnalyzerServer:
    return start_analyzer(prometheus_url=preset_prometheus.url)


@pytest.fixture(scope="module")
def from_rules(start_analyzer: Callable[..., AnalyzerServer], recorded: LocalPrometheus) -> AnalyzerServer:
    overrides = {name: recording_rules.overrides(preset) for name, preset in PRESETS.items()}
    return start_analyzer(prometheus_url=recorded.url, preset_overrides=json.dumps(overrides))


def analyze(server: AnalyzerServer, exporter: Exporter, kind: str, **extra: str) -> dict:
    params = {"service": f"{exporter.preset}-{kind}", "canary": exporter.canary, "stable": exporter.stable}
    response = httpx.get(f"{server.url}/analyze", params={**params, "preset": exporter.preset, **extra}, timeout=15)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("exporter", EXPORTERS, ids=lambda e: e.preset)
def test_the_rules_series_are_judged_as_the_raw_ones(
    raw: AnalyzerServer, from_rules: AnalyzerServer, exporter: Exporter, kind: str
) -> None:
    expected = analyze(raw, exporter, kind)
    body = analyze(from_rules, exporter, kind, at=expected["evaluated_at"])
    assert body["verdict"] == expected["verdict"] == KINDS[kind][0], body["reasons"]
    families = body["queries"]["families"]
    assert recording_rules.recorded_name(PRESETS[exporter.preset].requests_metric) in families
    assert "sum_over_time(" in families and "increase(" not in families
    numbers = {check["name"]: check for check in body["checks"]}
    recorded_span, raw_span = (duration_seconds(answer["confidence"]["span"]) for answer in (body, expected))
    assert recorded_span <= raw_span <= recorded_span + 2 * 60  # the rule's first sample of the canary: later
    if kind == "thin":
        return
    raw_requests = {check["name"]: check for check in expected["checks"]}["canary_traffic"]
    for check in expected["checks"]:
        for role in ("canary", "stable"):
            value, raw = numbers[check["name"]][role], check[role]
            if check["name"] == "canary_traffic":
                # The canary's first minute has no increase() until its second scrape; the stable's first
                # recorded sample holds the minute before the span.
                assert abs(value - raw) <= raw * (0.05 + 90 / raw_span), role
            elif check["name"] == "canary_current":
                # The last window's minutes (at least 4 of its 5): whole recorded minutes, each extrapolated on its
                # own, against the counters' own samples: they may be a minute apart.
                assert abs(value - raw) <= raw / 4 * 1.05 + 1, role
            elif check["name"].startswith("error_rate"):
                # Each minute's increase() is extrapolated on its own: a sparse count's noise grows a little.
                requests = raw_requests[role]
                assert abs(value - raw) * requests <= 3 * math.sqrt(raw * requests) + 2, (check["name"], role)
            else:  # latency, from thousands of requests per bucket
                assert value == pytest.approx(raw, rel=0.05), (check["name"], role)


def test_the_shipped_example_is_current() -> None:
    assert recording_rules.EXAMPLE.read_text() == recording_rules.prometheus_rule(PRESETS["default"]), (
        "stale: run `.venv/bin/python -m app.recording_rules > k8s/examples/recording-rules.yaml`"
    )


def test_an_unknown_preset_is_a_usage_error_naming_the_presets() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.recording_rules", "nope"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 4, result.stderr  # the CLI's code for invalid usage
    assert f"Error: no preset is named 'nope'; the presets are {', '.join(PRESETS)}" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_named_preset_gets_its_own_rules() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.recording_rules", "istio"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0 and result.stdout == recording_rules.prometheus_rule(PRESETS["istio"])


def test_a_preset_pointed_at_the_rules_reads_what_they_record() -> None:
    for name, preset in PRESETS.items():
        recorded = Settings(preset_overrides={name: recording_rules.overrides(preset)}).preset(name)
        assert recorded.series == "recorded_increases"
        names = {rule["record"] for rule in recording_rules.rules(preset)}
        bucket = "_bucket" if preset.latency_histogram == "classic" else ""
        assert recorded.duration_metric + bucket in names
        assert recorded.requests_metric in names or recorded.requests_metric == recorded.duration_metric


def test_every_label_a_query_selects_is_kept() -> None:
    for preset in PRESETS.values():
        for rule in recording_rules.rules(preset):
            kept = rule["expr"].split("sum by (", 1)[1].split(")", 1)[0]
            labels = {label.strip() for label in kept.split(",")}
            assert {preset.service_label, preset.version_label, preset.namespace_label, *preset.filters} <= labels
            assert preset.error_label in labels or rule["record"].endswith("_bucket"), rule
