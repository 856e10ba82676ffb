"""Where a person goes next: Prometheus graphs, the Grafana dashboard, the HTML report."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime, timedelta
from urllib.parse import quote_plus, urlencode

from app import promql
from app.models import AnalysisRequest

# The dashboard shows some context on both sides of the analysis window.
MIN_PADDING = timedelta(minutes=15)


def query_key(role: str, signal_key: str) -> str:
    return f"{role}_{signal_key}"


def prometheus_graphs(base_url: str, queries: Mapping[str, str], evaluated_at: datetime, window: str) -> dict[str, str]:
    """A graph of each query (by key), over the analysis' window with some context on both sides."""
    shown = urlencode(
        {
            "g0.tab": "0",
            "g0.range_input": f"{int(_span(window).total_seconds())}s",
            "g0.end_input": evaluated_at.strftime("%Y-%m-%d %H:%M:%S"),
        }
    )
    return {key: f"{base_url}/graph?g0.expr={_quoted(query)}&{shown}" for key, query in queries.items()}


@functools.lru_cache(maxsize=1024)
def _quoted(query: str) -> str:
    """Quoting a query costs more than the rest of a link; the same few queries come back at every poll."""
    return quote_plus(query)


def grafana_dashboard(base_url: str, uid: str, request: AnalysisRequest, evaluated_at: datetime) -> str:
    window = promql.duration(request.window)
    padding = max(window, MIN_PADDING)
    params = {
        "var-service": request.service,
        "var-canary": request.canary,
        "var-stable": request.stable,
        "from": _millis(evaluated_at - window - padding),
        "to": _millis(evaluated_at + padding),
    }
    return f"{base_url}/d/{uid}/canary-vs-stable?{urlencode(params)}"


def report(public_url: str | None, request: AnalysisRequest) -> str:
    """The HTML report for the same inputs; relative unless the service knows its public URL."""
    # What the caller asked for, and who is compared: defaults they did not set stay out.
    shown = {"service", "canary", "stable", "window"}
    params = request.model_dump(mode="json", exclude_none=True, include=shown | request.model_fields_set)
    params["format"] = "html"
    return f"{public_url or ''}/analyze?{urlencode(params)}"


def _span(window: str) -> timedelta:
    window_delta = promql.duration(window)
    return window_delta + 2 * max(window_delta, MIN_PADDING)


def _millis(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000))
