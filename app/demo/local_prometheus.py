"""A real Prometheus on loopback, loaded with backfilled data: for the demo and the tests."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import httpx

DEBIAN_PACKAGE = "prometheus"
READY_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 15
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
# Looked up before any fork: a child between fork and exec should only make the call.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def ensure_installed() -> None:
    """Installs Debian's prometheus package (prometheus and promtool) when either is missing."""
    if not (shutil.which("prometheus") and shutil.which("promtool")):
        install_debian_packages(DEBIAN_PACKAGE)


def install_debian_packages(*packages: str) -> None:
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
    install = [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages]
    subprocess.run(install, check=True, env=env)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def die_with_parent() -> None:
    """A `preexec_fn`: the kernel sends the child SIGTERM when its parent (the thread that started it) ends.

    That covers the deaths no handler sees (SIGKILL, a crash), so nothing is left orphaned. Linux only.
    """
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def stop_process(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """SIGTERM, then SIGKILL if it has not exited within timeout; returns once it is reaped."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def backfill(openmetrics: str, data_dir: Path) -> None:
    """Writes the samples into TSDB blocks under data_dir with promtool."""
    data_dir.mkdir(parents=True, exist_ok=True)
    source = data_dir / "backfill.om"
    source.write_text(openmetrics)
    result = subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(data_dir)],
        capture_output=True,
        text=True,
    )
    source.unlink()
    if result.returncode != 0:
        raise RuntimeError(f"promtool backfill failed: {result.stderr or result.stdout}")


class LocalPrometheus:
    """`prometheus` serving data_dir on a free loopback port, optionally under a route prefix."""

    def __init__(
        self,
        data_dir: Path,
        route_prefix: str = "",
        port: int | None = None,
        config: str | None = None,
        flags: Sequence[str] = (),
    ) -> None:
        self.data_dir = data_dir
        self.flags = tuple(flags)  # more command-line flags, e.g. --enable-feature=native-histograms
        self.config = config or "global:\n  scrape_interval: 15s\nscrape_configs: []\n"
        self.route_prefix = route_prefix.rstrip("/")
        self.port = port or free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.route_prefix}"

    @property
    def pid(self) -> int | None:
        """The running Prometheus' process id; None when stopped."""
        return self._process.pid if self._process else None

    def start(self) -> LocalPrometheus:
        config = self.data_dir / "prometheus.yml"
        config.write_text(self.config)
        log = (self.data_dir / "prometheus.log").open("wb")
        self._process = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={self.data_dir}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--web.route-prefix={self.route_prefix or '/'}",
                f"--web.external-url=http://127.0.0.1:{self.port}{self.route_prefix}",
                "--storage.tsdb.retention.time=30d",
                *self.flags,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group: Ctrl-C in a terminal reaches only whoever started it, which stops
            # Prometheus last, after the analyzer in front of it has finished its requests.
            process_group=0,
            preexec_fn=die_with_parent,
        )
        log.close()  # the child has its own copy
        try:
            self._wait_ready()
        except BaseException:  # __exit__ does not run when __enter__ fails: a signal here must not leak it
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._process:
            stop_process(self._process)
        self._process = None

    def __enter__(self) -> LocalPrometheus:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                log = (self.data_dir / "prometheus.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"prometheus exited with {self._process.returncode}:\n{log}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"prometheus on {self.url} was not ready within {READY_TIMEOUT_SECONDS}s")
