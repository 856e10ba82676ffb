"""`make run` without PROMETHEUS_URL: the demo starts and its printed URLs give the promised verdicts."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.demo.__main__ import SCENARIOS
from app.demo.local_prometheus import free_port
from tests.support.servers import ROOT


def test_demo_prints_urls_that_give_pass_fail_and_inconclusive(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "app.demo", "--port", str(port), "--data-dir", str(tmp_path / "data")],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        urls: dict[str, str] = {}
        deadline = time.monotonic() + 120
        while len(urls) < len(SCENARIOS) and time.monotonic() < deadline:
            assert demo.poll() is None, log.read_text()
            text = log.read_text()
            urls = dict(re.findall(r"(http://\S+/analyze\?service=\S+)\n\s+-> (\w+)", text))
            time.sleep(0.5)
        assert len(urls) == len(SCENARIOS), log.read_text()
        assert set(urls.values()) == {"pass", "fail", "inconclusive"}
        for url, verdict in urls.items():
            for _ in range(50):  # the server starts right after the URLs are printed
                try:
                    response = httpx.get(url, timeout=10)
                    break
                except httpx.ConnectError:
                    time.sleep(0.2)
            assert response.json()["verdict"] == verdict, url
        assert "<svg" in httpx.get(url, headers={"Accept": "text/html"}, timeout=10).text
    finally:
        demo.terminate()
        demo.wait(timeout=20)
