"""The analyzer's own Prometheus metrics, served on /metrics.

Every label has a bounded set of values: route templates instead of raw paths, known
methods, and at most MAX_SERVICES services, each a namespace and a name (callers choose those).
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

from prometheus_client import Counter, Histogram

from app.judge.checks import Check
from app.judge.findings import Outcome
from app.judge.judgment import Verdict
from app.models import AnalysisResponse

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED_PATH = "<unmatched>"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
MAX_SERVICES = 500
OTHER_SERVICE = "<other>"
ERROR_VERDICT = "error"  # the analysis could not measure
ANALYSIS_VERDICTS = (*Verdict, ERROR_VERDICT)

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests served by the analyzer.", ["method", "path", "status"])
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time the analyzer took to answer HTTP requests.",
    ["method", "path"],
    buckets=LATENCY_BUCKETS,
)
# By namespace too: with many teams, two namespaces' `shop` are two services, and one team's passes must not
# hide another's stuck analyses. No namespace asked: the label is empty, as Prometheus stores an absent one.
ANALYSES = Counter(
    "canary_analyzer_analyses_total", "Analyses answered, by verdict.", ["verdict", "namespace", "service"]
)
ANALYSIS_DURATION = Histogram(
    "canary_analyzer_analysis_duration_seconds",
    "Time one analysis took, Prometheus queries included.",
    buckets=LATENCY_BUCKETS,
)
QUERY_DURATION = Histogram(
    "canary_analyzer_prometheus_query_duration_seconds",
    "Time Prometheus took to answer one query.",
    buckets=LATENCY_BUCKETS,
)
# `scope`: what the outcome was decided on: the data judged as a whole, or a recent span of the canary's life.
CHECKS = Counter(
    "canary_analyzer_checks_total", "Checks judged, by check, outcome and what decided.", ["check", "outcome", "scope"]
)

QUERY_ERRORS = Counter(
    "canary_analyzer_prometheus_errors_total",
    "Prometheus queries that gave no usable answer, by cause.",
    ["cause"],
)


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else "OTHER"


Value = TypeVar("Value", bound=Hashable)


class BoundedValues(Generic[Value]):
    """Keeps the first `limit` distinct values; later ones share one label value."""

    def __init__(self, limit: int, overflow: Value) -> None:
        self._limit, self._overflow = limit, overflow
        self._seen: set[Value] = set()
        self._lock = threading.Lock()

    def __call__(self, value: Value) -> Value:
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) < self._limit:
                self._seen.add(value)
                return value
        return self._overflow


service_labels = BoundedValues(MAX_SERVICES, (OTHER_SERVICE, OTHER_SERVICE))  # (namespace, service)


CONNECTIONS_REFUSED = Counter(
    "canary_analyzer_connections_refused_total",
    "Connections the server answered and closed itself before a request reached the app "
    "(http_requests_total never sees them), by reason.",
    ["reason"],
)
# The errors app/limits.py answers a connection with, past h11: the cap, slow headers, bytes that are not HTTP.
CONNECTION_REFUSALS = ("too_many_connections", "request_timeout", "bad_request")


def start_at_zero(causes: Iterable[str], checks: Iterable[Check]) -> None:
    """Creates at 0 every series whose labels are known before anything happened: rate() over a series that
    does not exist yet is empty, not 0, and an alert or a panel on it would show nothing instead of "all well"."""
    for cause in causes:
        QUERY_ERRORS.labels(cause=cause)
    for reason in CONNECTION_REFUSALS:
        CONNECTIONS_REFUSED.labels(reason=reason)
    for check in checks:
        for outcome in Outcome:
            CHECKS.labels(check=check.name, outcome=outcome, scope="whole")
        CHECKS.labels(check=check.name, outcome=Outcome.FAIL, scope="recent")  # a recent span only ever fails


def record_analysis(body: AnalysisResponse, namespace: str | None, seconds: float) -> None:
    _count_analysis(body.verdict, namespace, body.service)
    for check in body.checks:
        scope = check.statistics.scope if check.statistics else "whole"
        CHECKS.labels(check=check.name, outcome=check.verdict, scope=scope).inc()
    ANALYSIS_DURATION.observe(seconds)


def record_error(namespace: str | None, service: str, seconds: float) -> None:
    """An analysis that could not measure: `verdict="error"`."""
    _count_analysis(ERROR_VERDICT, namespace, service)
    ANALYSIS_DURATION.observe(seconds)


def _count_analysis(verdict: str, namespace: str | None, service: str) -> None:
    namespace, service = service_labels((namespace or "", service))
    # A service's every verdict exists once the service is known: the stuck-inconclusive alert compares them.
    for known in ANALYSIS_VERDICTS:
        ANALYSES.labels(verdict=known, namespace=namespace, service=service)
    ANALYSES.labels(verdict=verdict, namespace=namespace, service=service).inc()
