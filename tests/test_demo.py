"""`make run` without PROMETHEUS_URL: the demo starts, its printed URLs give the promised verdicts, and
stopping it the usual ways stops everything it started."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.demo.__main__ import SCENARIOS, demo_settings
from app.demo.local_prometheus import die_with_parent, free_port
from app.settings import load_settings
from tests.support.processes import adopt_orphans, children, port_is_free, reaped, still_running
from tests.support.servers import ROOT

STARTUP_TIMEOUT_SECONDS = 120
LOG_LINE_TIMEOUT_SECONDS = 10
# Tests that only stop the demo need no traffic beyond now: backfilling the 8 hours ahead takes most of its startup.
NOTHING_AHEAD = ("--hours-ahead", "0")
UVICORN_STARTUP_FAILURE = 3


@dataclass
class Demo:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def urls(self) -> dict[str, str]:
        """The printed /analyze URLs, each with the verdict it promises."""
        return dict(re.findall(r"(http://\S+/analyze\?service=\S+)\n\s+-> (\w+)", self.output()))

    def after_the_urls(self) -> list[str]:
        """What the demo printed below its list of URLs (the last promise, `-> ...`, ends it)."""
        *_, below = re.split(r"\n +-> [^\n]*\n", self.output())
        return below.splitlines()

    def prometheus_port(self) -> int:
        found = re.search(r"Demo Prometheus: http://127\.0\.0\.1:(\d+)", self.output())
        assert found, self.output()
        return int(found[1])

    def wait_until_serving(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/health/live", timeout=1).raise_for_status()
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError(f"the demo did not serve within {STARTUP_TIMEOUT_SECONDS}s:\n{self.output()}")


@contextmanager
def demo(tmp_path: Path, port: int, *options: str) -> Iterator[Demo]:
    """`python -m app.demo` as `make run` starts it; killed at the end if a test left it running."""
    log = tmp_path / "demo.log"
    make_run = [sys.executable, "-m", "app.demo", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*make_run, "--data-dir", str(tmp_path / "data"), *options],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,  # even if pytest itself is killed
        )
    try:
        yield Demo(process, port, log)
    finally:
        process.kill()
        process.wait()


def test_demo_prints_urls_that_give_pass_fail_and_inconclusive(tmp_path: Path) -> None:
    with demo(tmp_path, free_port()) as running:
        running.wait_until_serving()
        urls = running.urls()
        assert len(urls) == len(SCENARIOS), running.output()
        assert set(urls.values()) == {"pass", "fail", "inconclusive"}
        for url, verdict in urls.items():
            assert httpx.get(url, timeout=10).json()["verdict"] == verdict, url
        istio = [url for url in urls if "preset=istio" in url]
        assert istio, "the demo serves services in Istio's shape too"
        body = httpx.get(istio[0], timeout=10).json()
        selectors = re.findall(r"\{[^}]*\}", body["queries"]["families"])
        assert len(selectors) >= 2 and all('reporter="destination"' in selector for selector in selectors)
        p95 = next(check for check in body["checks"] if check["name"] == "p95_latency")
        assert 0.05 < p95["canary"] < 0.2  # read in milliseconds, shown in seconds
        assert "<svg" in httpx.get(url, headers={"Accept": "text/html"}, timeout=10).text


def test_the_terminal_shows_one_readable_line_per_request_below_the_urls(tmp_path: Path) -> None:
    with demo(tmp_path, free_port(), *NOTHING_AHEAD) as running:
        running.wait_until_serving()
        promised = running.urls()
        passing, failing = (
            next(url for url, said in promised.items() if said == verdict) for verdict in ("pass", "fail")
        )
        asked = [(passing, "verdict=pass"), (failing, "verdict=fail"), (f"{running.url}/no/such/page", "status=404")]
        for url, _ in asked:
            httpx.get(url, timeout=15)
        deadline = time.monotonic() + LOG_LINE_TIMEOUT_SECONDS
        while len(logged := [line for line in running.after_the_urls() if line]) < len(asked):
            assert time.monotonic() < deadline, running.output()
            time.sleep(0.1)
        time.sleep(1)  # nothing more comes: not a second line for any request
        assert [line for line in running.after_the_urls() if line] == logged, running.output()
    assert len(logged) == len(asked), running.output()
    for line, (url, shown) in zip(logged, asked, strict=True):
        with pytest.raises(ValueError):
            json.loads(line)  # a line a person reads, not a JSON record
        assert " request " in line and f"path={url.split('?')[0].removeprefix(running.url)} " in line, line
        assert shown in line, line


def test_the_demo_logs_for_a_person_unless_log_format_says_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    assert load_settings().log_format == "json"  # the service's own default: `canary-analyzer serve`
    assert demo_settings("http://127.0.0.1:9090").log_format == "console"
    monkeypatch.setenv("LOG_FORMAT", "json")
    assert demo_settings("http://127.0.0.1:9090").log_format == "json"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_a_stop_signal_stops_the_demo_and_its_prometheus(tmp_path: Path, signum: signal.Signals) -> None:
    adopt_orphans()  # a Prometheus the demo left behind becomes our child, and stays our zombie once it ends
    with demo(tmp_path, free_port(), *NOTHING_AHEAD) as running:
        running.wait_until_serving()
        started = children(running.process.pid)
        assert started, "the demo should have started Prometheus"
        running.process.send_signal(signum)  # to the demo alone, as a process manager or `kill` does
        assert running.process.wait(timeout=30) == -signum, running.output()  # what a shell shows as 128 + n
        # The demo stopped Prometheus and collected its exit status before exiting itself: not even a zombie is
        # left. (Had the kernel ended it only because the demo died, it would linger as our zombie.)
        assert not {pid for pid in started if not reaped(pid)}
        assert port_is_free(running.port) and port_is_free(running.prometheus_port())


def test_prometheus_ends_with_the_demo_even_when_the_demo_is_killed(tmp_path: Path) -> None:
    with demo(tmp_path, free_port(), *NOTHING_AHEAD) as running:
        running.wait_until_serving()
        started = children(running.process.pid)
        running.process.kill()  # no handler runs: the kernel tells Prometheus its parent died
        running.process.wait()
        assert not still_running(started, timeout=10)
        assert port_is_free(running.prometheus_port())


def test_the_demo_stops_its_prometheus_when_the_analyzer_cannot_start(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with demo(tmp_path, taken.getsockname()[1], *NOTHING_AHEAD) as running:
            assert running.process.wait(timeout=STARTUP_TIMEOUT_SECONDS) == UVICORN_STARTUP_FAILURE
            assert "address already in use" in running.output()
            assert port_is_free(running.prometheus_port())


def test_a_bad_setting_stops_the_demo_before_it_starts_anything(tmp_path: Path) -> None:
    env = {**os.environ, "PRESET_OVERRIDES": '{"default": {"service_lable": "x"}}'}
    make_run = [sys.executable, "-m", "app.demo", "--port", str(free_port()), "--data-dir", str(tmp_path / "data")]
    result = subprocess.run(make_run, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 4, result.stdout + result.stderr
    assert "Error: PRESET_OVERRIDES: preset 'default': service_lable: Extra inputs are not permitted" in result.stderr
    assert "Traceback" not in result.stderr and "Backfilling" not in result.stdout
    assert not (tmp_path / "data").exists()
