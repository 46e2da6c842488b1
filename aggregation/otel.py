"""Optional OpenTelemetry spans: the request, each dependency call, the cache lookup.

Off unless ``OTEL_TRACES_EXPORTER`` names an exporter (``console``, or ``otlp`` with
``opentelemetry-exporter-otlp`` installed; the standard ``OTEL_EXPORTER_OTLP_*`` and
``OTEL_SERVICE_NAME`` variables then apply as the SDK reads them). Off costs one settings
look-up per request: the SDK is imported on first use only, so a process that never asks
for spans never loads it.

The spans are in the request's W3C trace (``contract_core/tracing.py``): under the
client's ``traceparent`` when it sent a valid one, else a root span whose trace id is the
one the response shows. Each dependency call's span id is the parent id its
``traceparent`` carries downstream, so the internal services' spans hang under it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from aggregation.conf import bff_settings
from contract_core.tracing import TraceContext

# The trace id a root span must take: the one the response already shows.
_ROOT_TRACE_ID: ContextVar[int | None] = ContextVar("bff_root_trace_id", default=None)
_state: dict[str, Any] = {}


class UnknownExporter(ValueError):
    """``OTEL_TRACES_EXPORTER`` names an exporter this process cannot load."""


def _exporter(name: str):
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise UnknownExporter("otlp needs: pip install opentelemetry-exporter-otlp") from exc
        return OTLPSpanExporter()
    raise UnknownExporter(f"OTEL_TRACES_EXPORTER={name!r}: use console, otlp or none")


def provider_for(exporter_name: str, *, exporter=None, simple: bool = False):
    """A TracerProvider whose root spans take the request's trace id; ``exporter`` and
    ``simple`` (export each span at once, for tests) override the defaults."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import RandomIdGenerator, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    class RequestTraceIds(RandomIdGenerator):
        def generate_trace_id(self) -> int:
            hinted = _ROOT_TRACE_ID.get()
            return hinted if hinted else super().generate_trace_id()

    provider = TracerProvider(
        resource=Resource.create({"service.name": "bff"}), id_generator=RequestTraceIds()
    )
    processor = SimpleSpanProcessor if simple else BatchSpanProcessor
    provider.add_span_processor(processor(exporter or _exporter(exporter_name)))
    return provider


def tracer():
    """The process's tracer, or None when no exporter is asked for (the common case)."""
    name = bff_settings.OTEL_TRACES_EXPORTER
    if not name:
        return None
    if _state.get("name") != name:
        _state["provider"] = _state.get("override") or provider_for(name)
        _state["tracer"] = _state["provider"].get_tracer("aggregation")
        _state["name"] = name
    return _state["tracer"]


def use_provider(provider) -> None:
    """Tests: send spans to ``provider`` (None: back to what settings say)."""
    _state.clear()
    if provider is not None:
        _state["override"] = provider


@contextlib.contextmanager
def request_span(tracer, name: str, trace: TraceContext, client_sent: bool) -> Iterator[Any]:
    """The server span of one request, in the request's trace."""
    from opentelemetry import trace as otel_trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

    context = None
    token = None
    if client_sent:
        # A valid traceparent: continue the client's trace under its span. The span id
        # is not kept in TraceContext; any non-zero id stands for the remote parent.
        remote = SpanContext(
            trace_id=int(trace.w3c_trace_id, 16),
            span_id=int(trace.parent_id or "1", 16),
            is_remote=True,
            trace_flags=TraceFlags(int(trace.flags, 16)),
        )
        context = otel_trace.set_span_in_context(NonRecordingSpan(remote))
    else:
        token = _ROOT_TRACE_ID.set(int(trace.w3c_trace_id, 16))
    try:
        with tracer.start_as_current_span(name, context=context, kind=SpanKind.SERVER) as span:
            yield span
    finally:
        if token is not None:
            _ROOT_TRACE_ID.reset(token)


@contextlib.contextmanager
def span(tracer, name: str, *, client: bool = False, **attributes: Any) -> Iterator[Any]:
    """A child span of the current one (a dependency call, the cache lookup)."""
    from opentelemetry.trace import SpanKind

    kind = SpanKind.CLIENT if client else SpanKind.INTERNAL
    with tracer.start_as_current_span(name, kind=kind, attributes=attributes) as current:
        yield current


def span_id_of(current) -> str:
    return format(current.get_span_context().span_id, "016x")
