"""Audit and access logs: structured, one audit line per analysis, never a secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from contextlib import redirect_stdout

import httpx
import pytest
import structlog
from fastapi.testclient import TestClient

from app.logs import REDACTED, Redactor, configure_logging
from app.main import create_app
from app.prometheus import Redaction
from app.settings import Settings
from tests.support.logs import lines_with_trace_id, log_lines
from tests.support.recorder import RecordingPrometheus
from tests.support.servers import AnalyzerServer

TOKEN = "tok-9f8e7d6c5b4a"
HEADER_SECRET = "hdr-1a2b3c4d"
CALLER_SECRET = "caller-5e6f7a8b"


def test_no_secret_ever_appears_in_logs(
    start_analyzer: Callable[..., AnalyzerServer], recorder: RecordingPrometheus, dead_prometheus_url: str
) -> None:
    servers = [
        start_analyzer(
            prometheus_url=url,
            prometheus_bearer_token=TOKEN,
            prometheus_headers=json.dumps({"X-Api-Key": HEADER_SECRET}),
            log_level="DEBUG",
        )
        for url in (recorder.url, dead_prometheus_url)
    ]
    for server in servers:
        headers = {"Authorization": f"Bearer {CALLER_SECRET}", "Cookie": f"session={CALLER_SECRET}"}
        for path in ("/analyze?service=checkout", "/analyze?service=bad%20x", "/health/ready", "/metrics"):
            response = httpx.get(f"{server.url}{path}", headers=headers, timeout=10)
            assert TOKEN not in response.text and HEADER_SECRET not in response.text
    for server in servers:
        text = server.logs()
        assert "analysis" in text  # the logs were written: this test can see what it checks
        for secret in (TOKEN, HEADER_SECRET, CALLER_SECRET):
            assert secret not in text


def test_health_checks_stay_out_of_info_logs(analyzer: AnalyzerServer) -> None:
    marker = "health-marker-1"
    for path in ("/health/live", "/health/ready", "/health/startup"):
        httpx.get(f"{analyzer.url}{path}", headers={"X-Trace-ID": marker}, timeout=10)
    httpx.get(f"{analyzer.url}/analyze", params={"service": "healthy"}, headers={"X-Trace-ID": marker}, timeout=15)
    lines = lines_with_trace_id(analyzer, marker, lambda ls: any(line.get("route") == "/analyze" for line in ls))
    routes = [line.get("route") for line in lines]
    assert routes.count("/analyze") == 1  # the control: access lines are there
    assert not [r for r in routes if r and r.startswith("/health")]


def test_redactor_masks_secret_keys_and_known_values() -> None:
    redact = Redactor(Redaction(["s3cr3t"]))
    event = redact(
        None,
        "info",
        {
            "event": "x",
            "Authorization": "Bearer abc",
            "nested": {"api_key": "k", "url": "http://u:s3cr3t@h"},
            "items": ["s3cr3t", 1],
        },
    )
    assert event["Authorization"] == REDACTED
    assert event["nested"] == {"api_key": REDACTED, "url": f"http://u:{REDACTED}@h"}
    assert event["items"] == [REDACTED, 1]


@pytest.mark.parametrize(("log_format", "is_json"), [("json", True), ("console", False)])
def test_log_formats(log_format: str, is_json: bool) -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        configure_logging(log_format, "INFO")
        logging.getLogger().handlers[0].stream = out
        structlog.get_logger("t").info("hello", answer=42)
    line = out.getvalue().strip().splitlines()[-1]
    if is_json:
        assert json.loads(line)["answer"] == 42
    else:
        assert "hello" in line and "answer=42" in line
        with pytest.raises(ValueError):
            json.loads(line)


def explode(secret: str) -> None:
    raise RuntimeError(f"kaboom with {secret}")


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_an_unexpected_error_logs_its_traceback_with_secrets_redacted(log_format: str) -> None:
    app = create_app(
        Settings(prometheus_url="http://127.0.0.1:1", prometheus_bearer_token=TOKEN, log_format=log_format)
    )

    @app.get("/boom")
    async def boom() -> None:
        explode(TOKEN)

    out = io.StringIO()
    logging.getLogger().handlers[0].setStream(out)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/boom").status_code == 500
    text = out.getvalue()
    assert TOKEN not in text
    if log_format == "json":
        [line] = [line for line in log_lines(text) if line["event"] == "unhandled error"]
        assert "exc_info" not in line
        text = line["exception"]
    assert "Traceback (most recent call last):" in text
    assert "in explode" in text  # the frame that raised, with its caller above it
    assert f"RuntimeError: kaboom with {REDACTED}" in text
