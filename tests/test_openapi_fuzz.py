"""The OpenAPI is the contract: Schemathesis fuzzes a live server from /openapi.json and holds every answer
to it (no 5xx, only declared status codes and content types, bodies that match their schema, 405 with
`Allow` for a method a path does not take)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.recorder import RecordingPrometheus
from tests.support.servers import ROOT, AnalyzerServer

SEED = 20261123
MAX_EXAMPLES = 80  # per operation, for the fuzzing phase; the coverage phase adds its own: ~700 in all
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "unsupported_method",
)
RUN_TIMEOUT_SECONDS = 150
CONFIG = Path(__file__).parent / "support" / "schemathesis.toml"


@pytest.fixture(scope="module")
def server(start_analyzer: Callable[..., AnalyzerServer]) -> Iterator[AnalyzerServer]:
    with RecordingPrometheus() as recorder:
        yield start_analyzer(prometheus_url=recorder.url)


def fuzz(server: AnalyzerServer, workdir: Path) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Runs Schemathesis against the server; its output, and the URL of every request it sent."""
    har = workdir / "requests.har"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        f"--config-file={CONFIG}",
        "run",
        f"{server.url}/openapi.json",
        f"--checks={','.join(CHECKS)}",
        "--phases=examples,coverage,fuzzing",
        f"--max-examples={MAX_EXAMPLES}",
        f"--seed={SEED}",
        "--generation-database=none",
        "--report=har",
        f"--report-har-path={har}",
        "--no-color",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS)
    urls = [entry["request"]["url"] for entry in json.loads(har.read_text())["log"]["entries"]]
    return result, urls


def test_every_answer_keeps_the_openapi_contract(server: AnalyzerServer, tmp_path: Path) -> None:
    result, urls = fuzz(server, tmp_path)
    assert result.returncode == 0, result.stdout[-20_000:] + result.stderr[-5_000:]
    generated = int(re.search(r"(\d+) generated", result.stdout).group(1))  # type: ignore[union-attr]
    assert generated >= 400, result.stdout[-3_000:]
    # The report is fuzzed too, not only the JSON: HTML answers are where a 500 was found.
    assert sum("format=html" in url for url in urls) >= 30
    assert any(url.endswith("/analyze") and "format" not in url for url in urls)  # POSTs


@pytest.mark.parametrize("field", ["p95_max_seconds", "error_rate_max"])
def test_a_subnormal_limit_in_the_report(server: AnalyzerServer, field: str) -> None:
    """What the fuzzing found first: a 5e-324 limit used to make the chart scale 0, a 500."""
    response = httpx.get(
        f"{server.url}/analyze", params={"service": "checkout", field: "5e-324", "format": "html"}, timeout=15
    )
    assert response.status_code == 200 and "<svg" in response.text
