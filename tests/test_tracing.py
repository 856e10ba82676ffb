"""OpenTelemetry: off by default; when on, a span per analysis with a child per Prometheus query."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from app.demo.local_prometheus import LocalPrometheus
from app.main import create_app
from app.settings import Settings
from app.tracing import tracing_enabled
from tests.support.spans import SessionSpans


@pytest.mark.parametrize(
    ("env", "enabled"),
    [
        ({}, False),
        ({"otel_exporter_otlp_endpoint": "http://collector:4318"}, True),
        ({"otel_traces_exporter": "otlp"}, True),
        ({"otel_traces_exporter": "console"}, True),
        ({"otel_traces_exporter": "none", "otel_exporter_otlp_endpoint": "http://collector:4318"}, False),
    ],
)
def test_tracing_is_off_unless_asked_for(env: dict, enabled: bool) -> None:
    assert tracing_enabled(Settings(**env)) is enabled


def test_spans_per_analysis_and_query(prometheus: LocalPrometheus, spans: SessionSpans) -> None:
    app = create_app(Settings(prometheus_url=prometheus.url), span_processor=spans)
    trace_id = uuid.uuid4().hex
    with TestClient(app) as client:
        response = client.get(
            "/analyze",
            params={"service": "healthy"},
            headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
        )
    assert response.status_code == 200
    # The W3C traceparent is honoured: the caller's trace id is the analyzer's.
    assert response.headers["X-Trace-ID"] == response.json()["trace_id"] == trace_id

    finished = spans.exporter.get_finished_spans()
    assert {format(s.context.trace_id, "032x") for s in finished} == {trace_id}
    [analysis] = [s for s in finished if s.name == "analysis"]
    assert analysis.attributes["canary.service"] == "healthy"
    assert analysis.attributes["canary.verdict"] == "pass"
    queries = sorted((s for s in finished if s.name == "prometheus api/v1/query"), key=lambda s: s.start_time)
    start, query = queries  # when the canary started; then both metric families, both versions, since
    [minutes] = [s for s in finished if s.name == "prometheus api/v1/query_range"]  # the last hour's, beside the start
    assert minutes.parent.span_id == analysis.context.span_id
    assert start.parent.span_id == query.parent.span_id == analysis.context.span_id
    assert start.attributes["prometheus.result.series"] == 1
    assert "healthy" in query.attributes["db.query.text"]
    # Requests: ok and error series for each version; latency: 12 buckets each; and the same counted since the
    # last settled minute.
    assert query.attributes["prometheus.result.series"] == (4 + 24) * 2
    # httpx instrumentation adds the HTTP client span under each query span.
    http_spans = [s for s in finished if s.parent and s.parent.span_id == query.context.span_id]
    assert len(http_spans) == 1
