"""The analyzer as a real uvicorn process, and the Argo web probe."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from app.demo.local_prometheus import die_with_parent, free_port, stop_process

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"


def wait_until_served(process: subprocess.Popen[bytes], url: str, describe: Callable[[], str]) -> None:
    """Returns once the FastAPI app at `url` answers; raises, with `describe()`, if it exits or takes 30 s."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited: {describe()}")
        try:
            httpx.get(f"{url}/openapi.json", timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"did not start: {describe()}")


class AnalyzerServer:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.env = env
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def start(self) -> AnalyzerServer:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMETHEUS_", "OTEL_"))}
        env.update(self.env)
        self._log = self.log_path.open("wb")
        # As production runs it (the container's entrypoint): the same uvicorn options and limits.
        self._process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,  # even if pytest itself is killed
        )
        try:
            self._wait_ready()
        except BaseException:  # nobody else would stop it
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self._process is not None
        wait_until_served(self._process, self.url, lambda: f"analyzer:\n{self.log_path.read_text()[-3000:]}")

    def analyze(self, **params: str) -> httpx.Response:
        return httpx.get(f"{self.url}/analyze", params=params, timeout=15)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self._process:
            stop_process(self._process, timeout=10)
        self._log.close()


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def error_of(raw: bytes) -> tuple[int, dict[str, str], dict]:
    """Status, headers and JSON body of one raw HTTP/1.1 response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    assert headers["content-type"] == "application/json", raw
    return int(status_line.split()[1]), headers, json.loads(body)


def build_argo_probe() -> Path:
    result = subprocess.run(
        ["bash", str(SHARED / "tools/argo-web-probe/build.sh")], capture_output=True, text=True, check=True
    )
    return Path(result.stdout.strip().splitlines()[-1])
