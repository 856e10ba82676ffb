"""The service as production runs it, in front of a real Prometheus backfilled with the demo traffic."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.demo.__main__ import demo_traffic
from app.demo.local_prometheus import LocalPrometheus, backfill, ensure_installed, free_port
from app.demo.traffic import openmetrics
from app.presets import Preset

START_TIMEOUT_SECONDS = 30


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
            port = free_port()
            env = {**os.environ, "PROMETHEUS_URL": prometheus.url}
            command = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
            server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                url = f"http://127.0.0.1:{port}"
                _wait_started(url, server)
                yield Served(prometheus, url, server.pid)
            finally:
                server.terminate()
                server.wait()


def _wait_started(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline and server.poll() is None:
        try:
            httpx.get(f"{url}/health/startup", timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("the analyzer did not start")
