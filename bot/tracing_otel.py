"""Tracing through OpenTelemetry: the tracer provider with its OTLP exporter, the aiohttp (client and server), asyncpg
and redis instrumentations, and the `Tracer` port over it. Imported only by `bot.tracing.start_tracing`, when tracing
is on; not responsible for where spans are opened (the core's central places) nor for deciding whether to trace.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

from bot.tracing import Attributes, Span, Tracing

# A path segment this long and plain is a token (a Slack response_url carries one), not a route.
_TOKENISH = re.compile(r"[A-Za-z0-9_-]{20,}")


class _OtelSpan:
    def __init__(self, span: trace.Span) -> None:
        self._span = span

    def set(self, attributes: Attributes) -> None:
        self._span.set_attributes(attributes)


class OtelTracer:
    """The `Tracer` port over an OpenTelemetry tracer."""

    on = True

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def span(self, name: str, attributes: Attributes | None = None) -> AbstractContextManager[Span]:
        return self._span(name, attributes)

    @contextmanager
    def _span(self, name: str, attributes: Attributes | None) -> Iterator[Span]:
        # start_as_current_span records an exception leaving the block and sets the span's status to error.
        with self._tracer.start_as_current_span(name, attributes=attributes) as span:
            yield _OtelSpan(span)

    def annotate(self, attributes: Attributes) -> None:
        trace.get_current_span().set_attributes(attributes)


def current_ids() -> tuple[str, str] | None:
    """The current trace and span ids as hex (W3C's spelling), for the log lines; None outside any span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def safe_url(url: object) -> str:
    """A URL as a span may show it (the instrumentation hands in a yarl URL): no user or password, no query, and no
    token-like path segment."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    path = "/".join("[redacted]" if _TOKENISH.fullmatch(segment) else segment for segment in parts.path.split("/"))
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def traces_url(endpoint: str) -> str:
    """OTEL_EXPORTER_OTLP_ENDPOINT is the collector's base URL; the SDK's own rule puts traces at /v1/traces."""
    return endpoint.rstrip("/") + "/v1/traces"


def start_otlp(endpoint: str, service_name: str) -> Tracing:
    """Spans batched to the collector (headers, timeouts and TLS from the standard OTEL_EXPORTER_OTLP_* variables)."""
    return start(OTLPSpanExporter(endpoint=traces_url(endpoint)), service_name, batch=True)


def start(exporter: SpanExporter, service_name: str, *, batch: bool = True) -> Tracing:
    """A tracer provider exporting to `exporter` (batched, or each span as it ends for tests) and the instrumentations.
    The provider also becomes OpenTelemetry's global one: the aiohttp server instrumentation reads only that one, and a
    process serves one bot. Instrument before the Context opens its sessions and pools and builds the web app."""
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    instrumentors: list[BaseInstrumentor] = [AioHttpServerInstrumentor(), AioHttpClientInstrumentor(),
                                             AsyncPGInstrumentor(), RedisInstrumentor()]
    for instrumentor in instrumentors:
        if isinstance(instrumentor, AioHttpClientInstrumentor):
            instrumentor.instrument(tracer_provider=provider, url_filter=safe_url)
        else:
            instrumentor.instrument(tracer_provider=provider)

    def shutdown() -> None:
        for instrumentor in instrumentors:
            instrumentor.uninstrument()
        provider.shutdown()  # exports what the batch still holds

    return Tracing(tracer=OtelTracer(provider.get_tracer("opsbot")), trace_ids=current_ids, shutdown=shutdown)
