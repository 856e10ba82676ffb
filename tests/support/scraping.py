"""A real Prometheus that scrapes analyzers and evaluates the shipped PrometheusRule."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from app.demo.local_prometheus import LocalPrometheus
from tests.support.servers import ROOT, AnalyzerServer

PROMETHEUS_RULE = ROOT / "k8s/components/prometheus-operator/prometheusrule.yaml"
JOB = "canary-analyzer"  # what the ServiceMonitor's Service name makes the job label


@dataclass(frozen=True)
class ScrapedAnalyzers:
    prometheus: LocalPrometheus
    judging: AnalyzerServer
    broken: AnalyzerServer
    teams: AnalyzerServer

    def query(self, expr: str) -> list[dict]:
        return query(self.prometheus, expr)


def query(prometheus: LocalPrometheus, expr: str) -> list[dict]:
    response = httpx.post(f"{prometheus.url}/api/v1/query", data={"query": expr}, timeout=10)
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def alert_rules() -> list[dict]:
    spec = yaml.safe_load(PROMETHEUS_RULE.read_text())["spec"]
    return [rule for group in spec["groups"] for rule in group["rules"] if "alert" in rule]


@contextmanager
def scraping(data_dir: Path, targets: list[AnalyzerServer]) -> Iterator[LocalPrometheus]:
    rules = data_dir / "rules.yml"
    rules.write_text(yaml.safe_dump({"groups": yaml.safe_load(PROMETHEUS_RULE.read_text())["spec"]["groups"]}))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {"job_name": JOB, "static_configs": [{"targets": [f"127.0.0.1:{t.port}" for t in targets]}]}
        ],
    }
    with LocalPrometheus(data_dir, config=yaml.safe_dump(config)) as prometheus:
        _wait_for_scrapes(prometheus, len(targets))
        yield prometheus


def _wait_for_scrapes(prometheus: LocalPrometheus, count: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        body = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": f'up{{job="{JOB}"}} == 1'}).json()
        if len(body["data"]["result"]) == count:
            return
        time.sleep(0.2)
    raise RuntimeError("Prometheus never scraped the analyzers")
