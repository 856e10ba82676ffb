"""Kubernetes probes on a real server, against a real Prometheus and a dead one."""

from __future__ import annotations

import httpx

from tests.support.servers import AnalyzerServer


def test_live_and_startup(analyzer_without_prometheus: AnalyzerServer) -> None:
    # Both answer even when Prometheus is down: restarting the analyzer would not bring it back.
    for path, status in (("/health/live", "ok"), ("/health/startup", "started")):
        response = httpx.get(f"{analyzer_without_prometheus.url}{path}", timeout=5)
        assert response.status_code == 200
        assert response.json()["status"] == status


def test_ready_when_prometheus_answers(analyzer: AnalyzerServer) -> None:
    response = httpx.get(f"{analyzer.url}/health/ready", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_not_ready_when_prometheus_is_down(analyzer_without_prometheus: AnalyzerServer) -> None:
    response = httpx.get(f"{analyzer_without_prometheus.url}/health/ready", timeout=5)
    assert response.status_code == 503
    assert response.json()["cause"] == "connection"
