"""The service as production runs it, in front of a real Prometheus backfilled with the demo traffic."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.demo.__main__ import demo_traffic
from app.demo.local_prometheus import (
    LocalPrometheus,
    backfill,
    die_with_parent,
    ensure_installed,
    free_port,
    stop_process,
)
from app.demo.traffic import openmetrics
from app.presets import Preset
from tests.support.servers import AnalyzerServer, wait_until_served


@dataclass(frozen=True)
class Served:
    prometheus: LocalPrometheus
    url: str  # the analyzer's
    pid: int  # the analyzer's, to read its memory and open files from /proc


@contextmanager
def demo_service() -> Iterator[Served]:
    """`canary-analyzer serve` (logging at INFO, as deployed) before a Prometheus holding the demo's traffic."""
    ensure_installed()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "tsdb"
        backfill(openmetrics(demo_traffic(time.time()), Preset()), data)
        with LocalPrometheus(data) as prometheus:
            server = AnalyzerServer({"PROMETHEUS_URL": prometheus.url}, Path(tmp) / "analyzer.log").start()
            try:
                yield Served(prometheus, server.url, server.pid)
            finally:
                server.stop()


@contextmanager
def forwarding(prometheus_url: str) -> Iterator[str]:
    """bench/forwarder.py in front of the same Prometheus: the stack's floor. Yields its URL."""
    port = free_port()
    forwarder = Path(__file__).with_name("forwarder.py")
    args = [sys.executable, str(forwarder), "--prometheus", prometheus_url, "--port", str(port)]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_served(process, url, lambda: "bench/forwarder.py")
        yield url
    finally:
        stop_process(process)
