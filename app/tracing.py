"""OpenTelemetry traces: off unless the standard OTEL_* variables ask for them."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from app.settings import Settings

NOT_TRACED = "health/.*,metrics"


def tracing_enabled(settings: Settings) -> bool:
    exporter = (settings.otel_traces_exporter or "").lower()
    return exporter not in ("", "none") or (bool(settings.otel_exporter_otlp_endpoint) and exporter != "none")


def configure_tracing(settings: Settings, processor: SpanProcessor | None = None) -> TracerProvider | None:
    """A tracer provider exporting as configured, or None when tracing is off.

    `processor` replaces the exporter (tests pass an in-memory one).
    """
    if processor is None and not tracing_enabled(settings):
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": settings.otel_service_name}))
    provider.add_span_processor(processor or BatchSpanProcessor(_exporter(settings)))
    # The analysis and query spans use the global tracer, so this provider becomes the global one.
    trace.set_tracer_provider(provider)
    return provider


def instrument_app(app: FastAPI, provider: TracerProvider) -> None:
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls=NOT_TRACED)


def instrument_client(client: httpx.AsyncClient, provider: TracerProvider) -> None:
    HTTPXClientInstrumentor.instrument_client(client, tracer_provider=provider)


def _exporter(settings: Settings) -> SpanExporter:
    if (settings.otel_traces_exporter or "").lower() == "console":
        return ConsoleSpanExporter()
    # Reads OTEL_EXPORTER_OTLP_* itself, as every OpenTelemetry SDK does.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()
