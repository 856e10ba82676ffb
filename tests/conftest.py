"""Shared fixtures: a real Prometheus loaded with known traffic, and real analyzer servers."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.demo.local_prometheus import LocalPrometheus, backfill, ensure_installed
from app.demo.traffic import openmetrics
from app.presets import Preset
from tests.support import business, histograms, preset_scenarios, presets, tenancy
from tests.support.hostile_prometheus import HostilePrometheus
from tests.support.processes import adopt_orphans, command_line, descendants, still_running
from tests.support.recorder import RecordingPrometheus
from tests.support.scenarios import CUSTOM, traffic
from tests.support.scraping import ScrapedAnalyzers, scraping
from tests.support.servers import ROOT, AnalyzerServer, build_argo_probe
from tests.support.spans import SessionSpans

ARTIFACTS = ROOT / "test-artifacts"
LEFTOVER_GRACE_SECONDS = 10


@pytest.fixture(scope="session", autouse=True)
def nothing_left_running() -> Iterator[None]:
    """Fails the run if a process the suite started outlives it, and ends those processes.

    Set up before, and so torn down after, every other fixture. Adopting orphans keeps a process whose parent
    has died among this process's descendants, where the check finds it.
    """
    adopt_orphans()
    yield
    leftovers = still_running(descendants(os.getpid()), timeout=LEFTOVER_GRACE_SECONDS)
    report = [f"{pid}: {command_line(pid)}" for pid in sorted(leftovers)]
    for pid in leftovers:
        os.kill(pid, signal.SIGKILL)
    assert not leftovers, "still running after the tests (now killed):\n" + "\n".join(report)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def backfilled_at() -> float:
    """The moment the test Prometheus' scenarios are anchored to: their canaries started
    CANARY_AGE_SECONDS before it. The suite then runs for minutes: the canaries grow older."""
    return time.time()


@pytest.fixture(scope="session")
def tsdb(tmp_path_factory: pytest.TempPathFactory, backfilled_at: float) -> Path:
    """TSDB blocks holding every scenario, backfilled once per run with promtool."""
    ensure_installed()
    data = tmp_path_factory.mktemp("tsdb")
    now = backfilled_at
    for conventions in (Preset(), CUSTOM):
        backfill(openmetrics(traffic(conventions, now), conventions), data)
    backfill(histograms.openmetrics(now), data)
    backfill(business.openmetrics(now), data)
    return data


def _serve(tsdb: Path, target: Path, route_prefix: str = "") -> Iterator[LocalPrometheus]:
    shutil.copytree(tsdb, target)
    with LocalPrometheus(target, route_prefix=route_prefix) as prometheus:
        yield prometheus


@pytest.fixture(scope="session")
def prometheus(tsdb: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrometheus]:
    yield from _serve(tsdb, tmp_path_factory.mktemp("prom") / "data")


@pytest.fixture(scope="session")
def prefixed_prometheus(tsdb: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrometheus]:
    """The same data behind --web.route-prefix=/prometheus, as behind many ingresses."""
    yield from _serve(tsdb, tmp_path_factory.mktemp("prom-prefixed") / "data", "/prometheus")


@pytest.fixture(scope="session")
def preset_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrometheus]:
    """Each preset's exporter, in its real shape, with a healthy, a slower, an erring and a thin canary."""
    ensure_installed()
    now = float(int(time.time() // presets.SCRAPE_INTERVAL * presets.SCRAPE_INTERVAL))
    data = tmp_path_factory.mktemp("presets") / "data"
    for exporter in preset_scenarios.EXPORTERS:
        backfill(exporter.openmetrics(preset_scenarios.workloads(exporter, now), now), data)
    with LocalPrometheus(data) as prometheus:
        yield prometheus


@pytest.fixture(scope="session")
def teams_prometheus(tmp_path_factory: pytest.TempPathFactory, backfilled_at: float) -> Iterator[LocalPrometheus]:
    """Two namespaces, each with a service `shop` (tests/support/tenancy.py): one analyzer for many teams."""
    data = tmp_path_factory.mktemp("teams") / "data"
    backfill(openmetrics(tenancy.traffic(backfilled_at), Preset()), data)
    with LocalPrometheus(data) as prometheus:
        yield prometheus


@pytest.fixture(scope="session")
def start_analyzer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., AnalyzerServer]]:
    """Starts `canary-analyzer serve` with the given environment; all are stopped at the end."""
    servers: list[AnalyzerServer] = []

    def start(**env: str) -> AnalyzerServer:
        log = tmp_path_factory.mktemp("analyzer") / "server.log"
        server = AnalyzerServer({k.upper(): v for k, v in env.items()}, log).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def analyzer(start_analyzer: Callable[..., AnalyzerServer], prometheus: LocalPrometheus) -> AnalyzerServer:
    return start_analyzer(prometheus_url=prometheus.url)


@pytest.fixture(scope="session")
def custom_analyzer(start_analyzer: Callable[..., AnalyzerServer], prometheus: LocalPrometheus) -> AnalyzerServer:
    return start_analyzer(
        prometheus_url=prometheus.url,
        requests_metric=CUSTOM.requests_metric,
        duration_metric=CUSTOM.duration_metric,
        service_label=CUSTOM.service_label,
        version_label=CUSTOM.version_label,
        status_label=CUSTOM.error_label,
    )


@pytest.fixture(scope="module")
def recorder() -> Iterator[RecordingPrometheus]:
    """A stand-in Prometheus that answers every query with no data and keeps the queries, one per test module."""
    with RecordingPrometheus() as recording:
        yield recording


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostilePrometheus]:
    """A stand-in Prometheus whose `reply` a test sets: echoes, huge bodies, trickles; one per test module."""
    with HostilePrometheus() as server:
        yield server


@pytest.fixture(scope="session")
def dead_prometheus_url() -> Iterator[str]:
    """A loopback port nobody listens on: held bound, never listening, for the whole session (a connection is
    refused), so that no server the suite starts later is given it (a free port picked and let go once was)."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


@pytest.fixture(scope="session")
def analyzer_without_prometheus(
    start_analyzer: Callable[..., AnalyzerServer], dead_prometheus_url: str
) -> AnalyzerServer:
    return start_analyzer(prometheus_url=dead_prometheus_url)


@pytest.fixture(scope="session")
def scraped_analyzers(
    start_analyzer: Callable[..., AnalyzerServer],
    dead_prometheus_url: str,
    teams_prometheus: LocalPrometheus,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ScrapedAnalyzers]:
    """A real Prometheus scraping three real analyzers, with the shipped alert rules loaded.

    One analyzer judges against a Prometheus with no data (every verdict inconclusive), one
    cannot reach its Prometheus (every answer 503), and one judges two namespaces' `shop`: team
    A's passes, and one with no data in its namespace is inconclusive. Together they give every
    alert something to see.
    """
    with RecordingPrometheus() as empty:
        judging = start_analyzer(prometheus_url=empty.url)
        broken = start_analyzer(prometheus_url=dead_prometheus_url)
        teams = start_analyzer(prometheus_url=teams_prometheus.url)
        with scraping(tmp_path_factory.mktemp("scrape"), [judging, broken, teams]) as prometheus:
            for _ in range(2):  # two bursts, so increase() has samples on both sides
                for _ in range(6):
                    judging.analyze(service="checkout")
                    broken.analyze(service="checkout")
                    for namespace, verdict in ((tenancy.TEAM_A, "pass"), (tenancy.TEAM_WITHOUT_DATA, "inconclusive")):
                        assert teams.analyze(service=tenancy.SERVICE, namespace=namespace).json()["verdict"] == verdict
                time.sleep(2.5)
            yield ScrapedAnalyzers(prometheus, judging, broken, teams)


@pytest.fixture(scope="session")
def session_spans() -> SessionSpans:
    return SessionSpans()


@pytest.fixture
def spans(session_spans: SessionSpans) -> SessionSpans:
    """The span processor to give `create_app`; its `exporter` holds only this test's spans."""
    session_spans.exporter.clear()
    return session_spans


@pytest.fixture(scope="session")
def healthy_scraped(
    start_analyzer: Callable[..., AnalyzerServer], prometheus: LocalPrometheus, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalPrometheus]:
    """A real Prometheus scraping one analyzer that judges real traffic and passes it: a good day."""
    healthy = start_analyzer(prometheus_url=prometheus.url)
    with scraping(tmp_path_factory.mktemp("scrape-healthy"), [healthy]) as scraper:
        for _ in range(2):  # two bursts, so increase() has samples on both sides
            for _ in range(3):
                assert healthy.analyze(service="healthy").json()["verdict"] == "pass"
            time.sleep(2.5)
        yield scraper


@pytest.fixture(scope="session")
def argo_probe() -> Path:
    return build_argo_probe()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
