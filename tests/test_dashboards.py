"""Grafana dashboards: every query parses, and every selector finds the series it graphs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from app import dashboards
from app.demo.local_prometheus import LocalPrometheus
from app.presets import PRESETS
from app.settings import Settings
from tests.support.promql_text import label_presence, selectors, substitute
from tests.support.scraping import ScrapedAnalyzers, query
from tests.support.servers import ROOT

DASHBOARDS = ROOT / "k8s/base/dashboards"
CANARY = json.loads((DASHBOARDS / "canary-vs-stable.json").read_text())
ANALYZER = json.loads((DASHBOARDS / "analyzer.json").read_text())
PER_PRESET = {name: json.loads((DASHBOARDS / dashboards.file_name(name)).read_text()) for name in PRESETS}
SCENARIO_VALUES = {"service": "healthy", "canary": "canary", "stable": "stable", "datasource": "prometheus"}


def expressions(dashboard: dict) -> list[str]:
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


@pytest.mark.parametrize("name", PRESETS)
def test_each_preset_has_its_dashboard_generated_from_its_data(name: str) -> None:
    path = DASHBOARDS / dashboards.file_name(name)
    assert path.read_text() == dashboards.render(PRESETS[name]), "stale: run `.venv/bin/python -m app.dashboards`"
    preset, dashboard = PRESETS[name], PER_PRESET[name]
    for expr in expressions(dashboard):
        assert f'{preset.service_label}="$service"' in expr
        assert all(dashboards._filters(preset)[i] in expr for i in range(len(preset.filters)))
    [link] = dashboard["links"]
    assert ("preset=" in link["url"]) is (name != "default")


@pytest.mark.parametrize("dashboard", [*PER_PRESET.values(), ANALYZER], ids=lambda d: d["uid"])
def test_every_panel_query_parses(dashboard: dict, tmp_path: Path) -> None:
    exprs = [substitute(e, SCENARIO_VALUES) for e in expressions(dashboard)]
    rules = {
        "groups": [{"name": "dashboard", "rules": [{"record": f"panel:q{i}", "expr": e} for i, e in enumerate(exprs)]}]
    }
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_canary_dashboard_graphs_the_metrics_the_analyzer_judges(prometheus: LocalPrometheus) -> None:
    """On the scenario data, both the canary and the stable line of every panel have data."""
    for expr in expressions(CANARY):
        query = substitute(expr, SCENARIO_VALUES)
        result = httpx.post(f"{prometheus.url}/api/v1/query", data={"query": query}, timeout=10).json()
        assert result["data"]["result"], f"no data for {query}"
    defaults = Settings().preset()
    used = {s.split("{")[0] for e in expressions(CANARY) for s in selectors(e)}
    assert used == {defaults.requests_metric, f"{defaults.duration_metric}_bucket"}


def test_analyzer_dashboard_uses_only_metrics_the_analyzer_exports(scraped_analyzers: ScrapedAnalyzers) -> None:
    for expr in expressions(ANALYZER):
        for selector in map(label_presence, selectors(expr)):
            assert scraped_analyzers.query(f"count({selector})"), f"{selector} matches no scraped series"


def test_every_analyzer_panel_has_data_on_a_healthy_analyzer(healthy_scraped: LocalPrometheus) -> None:
    """Errors by cause included: they start at 0 rather than appear with the first error."""
    for expr in expressions(ANALYZER):
        assert query(healthy_scraped, substitute(expr, {"__rate_interval": "1m"})), f"no data for {expr}"


def test_canary_dashboard_variables_and_link_to_the_analyzer() -> None:
    assert CANARY["uid"] == Settings().grafana_dashboard_uid  # what links.grafana points at
    names = {variable["name"] for variable in CANARY["templating"]["list"]}
    assert {"service", "canary", "stable"} <= names
    [link] = CANARY["links"]
    assert link["url"].endswith("/analyze?service=${service}&canary=${canary}&stable=${stable}")
    titles = " ".join(panel["title"] for panel in CANARY["panels"])
    for needed in ("P50", "P95", "P99", "Error rate", "Request rate"):
        assert needed in titles
    for panel in CANARY["panels"]:
        assert [t["legendFormat"] for t in panel["targets"]] == ["canary", "stable"]


def test_dashboards_ship_in_a_configmap_grafana_picks_up() -> None:
    kustomization = yaml.safe_load((ROOT / "k8s/base/kustomization.yaml").read_text())
    [generator] = kustomization["configMapGenerator"]
    assert generator["options"]["labels"] == {"grafana_dashboard": "1"}
    assert sorted(generator["files"]) == sorted(f"dashboards/{p.name}" for p in DASHBOARDS.glob("*.json"))
