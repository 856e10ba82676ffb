"""Reading the analyzer's JSON log lines."""

from __future__ import annotations

import json


def log_lines(text: str) -> list[dict]:
    lines = []
    for line in text.splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines
