"""The documentation's tables that come from code, so they cannot drift from it.

`python -m app.readme` rewrites them in whichever of README.md and docs/*.md holds them (the limits
table: docs/api.md); a test fails when they are stale.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from app.judge.builtin_checks import CHECKS
from app.judge.checks import Limit

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
LIMITS = re.compile(r"(<!-- limits:start -->\n).*?(<!-- limits:end -->)", re.DOTALL)


def limits_table() -> str:
    rows = [
        "| field | check | default | range | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for check in CHECKS:
        limit = check.limit
        rows.append(f"| `{limit.field}` | `{check.name}` | {_default(limit)} | {_range(limit)} | {limit.description} |")
    return "\n".join(rows) + "\n"


def _default(limit: Limit) -> str:
    if limit.statistical_default is None:
        return f"{limit.default:g}"
    return f"{limit.statistical_default:g} ({limit.default:g} with `mode=threshold`)"


def _range(limit: Limit) -> str:
    low = f"{'>' if limit.exclusive_minimum else '≥'} {_number(limit.minimum)}"
    kind = "whole number " if limit.integer else ""
    return f"{kind}{low}, ≤ {_number(limit.maximum)}"


def _number(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:g}"


def render(readme: str) -> str:
    return LIMITS.sub(lambda m: m.group(1) + limits_table() + m.group(2), readme)


def documents() -> list[Path]:
    """The README and every page under docs/."""
    return [README, *sorted(DOCS.glob("*.md"))]


def holding_limits() -> list[Path]:
    """The documents with the limits table's markers."""
    return [path for path in documents() if LIMITS.search(path.read_text())]


if __name__ == "__main__":
    for path in holding_limits():
        text = path.read_text()
        path.write_text(render(text))
    sys.exit(0)
