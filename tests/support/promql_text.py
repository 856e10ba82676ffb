"""Pulling metric selectors out of PromQL held in manifests and dashboards."""

from __future__ import annotations

import re

SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^{}]*)\}")
GRAFANA_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def selectors(expr: str) -> list[str]:
    """Every `metric{matchers}` in an expression, e.g. `http_requests_total{job="x"}`."""
    return [f"{name}{{{matchers}}}" for name, matchers in SELECTOR.findall(expr) if name not in ("by", "without")]


MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def label_presence(selector: str) -> str:
    """Exact matchers kept, the others reduced to "label present": a renamed metric, label or
    job fails it, while a regex over values that did not occur in the test does not."""
    name, matchers = SELECTOR.fullmatch(selector).groups()
    kept = [f'{label}="{value}"' if op == "=" else f'{label}!=""' for label, op, value in MATCHER.findall(matchers)]
    return name + "{" + ",".join(kept) + "}"


def metric_names(expr: str) -> set[str]:
    return {name for name, _ in SELECTOR.findall(expr)}


def substitute(expr: str, values: dict[str, str]) -> str:
    """Grafana's variables, replaced the way Grafana would before sending the query."""
    values = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h", **values}
    return GRAFANA_VARIABLE.sub(lambda m: values[m.group(1) or m.group(2)], expr)
