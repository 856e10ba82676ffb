"""Reading the analyzer's JSON log lines."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from tests.support.servers import AnalyzerServer


def log_lines(text: str) -> list[dict]:
    lines = []
    for line in text.splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines


def lines_with_trace_id(
    server: AnalyzerServer, trace_id: str, until: Callable[[list[dict]], bool], timeout: float = 5
) -> list[dict]:
    """The server's log lines for one trace id, once `until` holds for them (the access line
    is written after the response, so a test reading the log may be a moment early)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in log_lines(server.logs()) if line.get("trace_id") == trace_id]
        if until(lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)
