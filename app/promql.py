"""PromQL, built from validated values only. Nothing else in the code base writes a query.

Label values are checked against a narrow charset at the edge and escaped again here,
so no input can change a query's structure.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from app.judgment import ERROR_RATE, P95_LATENCY, REQUESTS, Signal

LABEL_VALUE = re.compile(r"^[A-Za-z0-9_.:-]{1,253}$")
# A PromQL duration: one or more number+unit pairs, largest unit first (Prometheus' own rule).
DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_UNIT_SECONDS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)


def duration_seconds(text: str) -> float:
    """Seconds in a PromQL duration such as `5m` or `1h30m`; ValueError when it is not one."""
    match = DURATION.fullmatch(text)
    if not text or not match:
        raise ValueError(f"{text!r} is not a PromQL duration (e.g. 30s, 5m, 1h30m)")
    return sum(int(n) * unit for n, unit in zip(match.groups(), _UNIT_SECONDS, strict=True) if n)


def duration(text: str) -> timedelta:
    return timedelta(seconds=duration_seconds(text))


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@dataclass(frozen=True)
class Conventions:
    """The metric and label names the services being judged expose."""

    requests_metric: str = "http_requests_total"
    duration_metric: str = "http_request_duration_seconds"
    service_label: str = "service"
    version_label: str = "version"
    status_label: str = "status"


def selector(conventions: Conventions, service: str, version: str, extra: str = "") -> str:
    for value in (service, version):
        if not LABEL_VALUE.fullmatch(value):
            raise ValueError(f"label value {value!r} is outside [A-Za-z0-9_.:-]{{1,253}}")
    matchers = [
        f'{conventions.service_label}="{escape_label_value(service)}"',
        f'{conventions.version_label}="{escape_label_value(version)}"',
    ]
    if extra:
        matchers.append(extra)
    return "{" + ",".join(matchers) + "}"


def requests_query(c: Conventions, service: str, version: str, window: str) -> str:
    return f"sum(increase({c.requests_metric}{selector(c, service, version)}[{_window(window)}]))"


def error_rate_query(c: Conventions, service: str, version: str, window: str) -> str:
    # `or vector(0)`: a version with no 5xx has no 5xx series, and that is a 0% error rate.
    window = _window(window)
    errors = selector(c, service, version, f'{c.status_label}=~"5.."')
    total = selector(c, service, version)
    return (
        f"(sum(rate({c.requests_metric}{errors}[{window}])) or vector(0))"
        f" / sum(rate({c.requests_metric}{total}[{window}]))"
    )


def p95_query(c: Conventions, service: str, version: str, window: str) -> str:
    return (
        f"histogram_quantile(0.95, sum by (le) "
        f"(rate({c.duration_metric}_bucket{selector(c, service, version)}[{_window(window)}])))"
    )


QueryBuilder = Callable[[Conventions, str, str, str], str]
QUERIES: dict[str, QueryBuilder] = {
    REQUESTS.key: requests_query,
    ERROR_RATE.key: error_rate_query,
    P95_LATENCY.key: p95_query,
}


def signal_query(c: Conventions, signal: Signal, service: str, version: str, window: str) -> str:
    return QUERIES[signal.key](c, service, version, window)


def _window(window: str) -> str:
    duration_seconds(window)
    return window
