"""Kubernetes probes and Prometheus' state on a real server, against a real Prometheus, a dead one and one
that trickles its answers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.support.hostile_prometheus import HostilePrometheus, trickle
from tests.support.servers import AnalyzerServer

PROBE_TIMEOUT_SECONDS = 3  # k8s/base/deployment.yaml's readinessProbe


def timed_get(url: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.get(url, timeout=30)
    return response, time.monotonic() - started


@pytest.fixture(scope="module")
def trickling() -> Iterator[HostilePrometheus]:
    """A Prometheus sending one byte a second: no read timeout ever fires."""
    with HostilePrometheus() as server:
        server.reply = trickle(server, interval=1.0)
        yield server


def test_live_and_startup(analyzer_without_prometheus: AnalyzerServer) -> None:
    # Both answer even when Prometheus is down: restarting the analyzer would not bring it back.
    for path, status in (("/health/live", "ok"), ("/health/startup", "started")):
        response = httpx.get(f"{analyzer_without_prometheus.url}{path}", timeout=5)
        assert response.status_code == 200
        assert response.json()["status"] == status


def test_ready_and_prometheus_ok_when_prometheus_answers(analyzer: AnalyzerServer) -> None:
    assert httpx.get(f"{analyzer.url}/health/ready", timeout=5).json() == {"status": "ready"}
    response = httpx.get(f"{analyzer.url}/health/prometheus", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_while_prometheus_is_down_so_argo_still_gets_the_cause(
    analyzer_without_prometheus: AnalyzerServer,
) -> None:
    """Unready pods leave the Service without endpoints: Argo would get "connection refused" instead of this 503."""
    ready = httpx.get(f"{analyzer_without_prometheus.url}/health/ready", timeout=5)
    assert ready.status_code == 200
    state = httpx.get(f"{analyzer_without_prometheus.url}/health/prometheus", timeout=5)
    assert state.status_code == 503
    assert state.json()["status"] == "unavailable" and state.json()["cause"] == "connection"
    analysis = analyzer_without_prometheus.analyze(service="checkout")
    assert analysis.status_code == 503 and analysis.json()["cause"] == "connection"


def test_probes_answer_in_time_whatever_prometheus_does(
    start_analyzer: Callable[..., AnalyzerServer], trickling: HostilePrometheus
) -> None:
    server = start_analyzer(prometheus_url=trickling.url, analysis_timeout_seconds="2")
    ready, ready_seconds = timed_get(f"{server.url}/health/ready")
    assert ready.status_code == 200 and ready_seconds < 1
    state, state_seconds = timed_get(f"{server.url}/health/prometheus")
    assert state.status_code == 503 and state.json()["cause"] == "timeout"
    assert state_seconds < PROBE_TIMEOUT_SECONDS
    started = time.monotonic()
    analysis = server.analyze(service="checkout")
    assert analysis.status_code == 503 and analysis.json()["cause"] == "timeout"
    assert time.monotonic() - started < 4  # ANALYSIS_TIMEOUT_SECONDS, however Prometheus trickles
