"""OpenTelemetry tracing shared by the gateway and every model service.

Off unless an OTLP endpoint is set (the server's ``otlp_endpoint`` setting, else the standard
``OTEL_EXPORTER_OTLP_ENDPOINT``): then each call a server takes gets a SERVER span (started by
shared.interceptors, continuing the W3C ``traceparent`` the caller sent), the gateway's
composite parts get CLIENT spans, and every backend call carries the current span's
``traceparent``/``tracestate`` in its metadata. Spans go out in batches over OTLP/gRPC.
Off, every entry point is one ``is None`` test: no span objects, no context changes.

The tracer provider is this module's own (not the process-global one), so tests can
`configure` with an in-memory exporter and `disable` again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

TRACE_KEYS = ("traceparent", "tracestate")
_PROPAGATOR = TraceContextTextMapPropagator()
# Server spans with these codes are errors (OpenTelemetry's gRPC conventions); a caller's bad
# request (INVALID_ARGUMENT, NOT_FOUND...) is the caller's error, not the server's.
_SERVER_ERRORS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)

_tracer: trace.Tracer | None = None
_provider: Any = None  # opentelemetry.sdk.trace.TracerProvider while tracing is on


def endpoint_of(setting: str, environ: Mapping[str, str] | None = None) -> str:
    """The OTLP endpoint to export to: the lumen setting, else OTEL_EXPORTER_OTLP_ENDPOINT."""
    env = os.environ if environ is None else environ
    return setting or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")


def configure(service: str, endpoint: str = "", exporter: Any = None) -> bool:
    """Turn tracing on for this process when ``endpoint`` (or the OTEL env) or ``exporter`` is
    given; returns whether it is on. ``exporter`` (tests: InMemorySpanExporter) is called as
    each span ends; the OTLP exporter gets batches."""
    global _tracer, _provider
    target = endpoint_of(endpoint)
    if exporter is None and not target:
        return False
    # Imported only when on: the SDK and the OTLP exporter cost import time nobody needs otherwise.
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    disable()
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: f"lumen-{service}"}
    provider = TracerProvider(resource=Resource.create(attributes), shutdown_on_exit=True)
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        # http:// endpoints are plain text, https:// TLS; OTEL_EXPORTER_OTLP_* variables
        # (headers, certificate, insecure, timeout) are read by the exporter itself.
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=target)))
        log.info("tracing on: spans of lumen-%s go to %s over OTLP/gRPC", service, target)
    _provider = provider
    _tracer = provider.get_tracer("lumen")
    return True


def disable() -> None:
    """Flush and stop the exporter; tracing is off afterwards."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer, _provider = None, None


def enabled() -> bool:
    return _tracer is not None


class ServerSpan:
    """The SERVER span of one call, current (for logs and backend calls) until `end`."""

    __slots__ = ("span", "token")

    def __init__(self, method: str, metadata: Iterable[tuple[str, Any]] | None) -> None:
        assert _tracer is not None
        carrier = {key: value for key, value in metadata or () if key in TRACE_KEYS}
        parent = _PROPAGATOR.extract(carrier) if carrier else None
        service, _, name = method.lstrip("/").partition("/")
        self.span = _tracer.start_span(
            method.lstrip("/"),
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
        )
        self.token = otel_context.attach(trace.set_span_in_context(self.span))

    def end(self, code: grpc.StatusCode, request_id: str) -> None:
        self.span.set_attribute("rpc.grpc.status_code", code.value[0])
        self.span.set_attribute("lumen.request_id", request_id)
        if code in _SERVER_ERRORS:
            self.span.set_status(Status(StatusCode.ERROR, code.name))
        self.span.end()
        otel_context.detach(self.token)


def server_span(method: str, metadata: Iterable[tuple[str, Any]] | None) -> ServerSpan | None:
    """A started SERVER span for ``method``, or None when tracing is off."""
    return None if _tracer is None else ServerSpan(method, metadata)


@contextmanager
def client_span(name: str, **attributes: Any) -> Iterator[None]:
    """A CLIENT span around one backend call (current inside, so `inject` carries it); nothing when off."""
    if _tracer is None:
        yield
        return
    # An exception (the backend's status) ends the span as an error, with the exception recorded.
    with _tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes):
        yield


def inject(metadata: list[tuple[str, str]]) -> None:
    """Append the current span's traceparent (and tracestate) to outgoing ``metadata``."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    metadata.extend(carrier.items())


def with_context(metadata: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """``metadata`` with its trace context replaced by the current span's (as is when off)."""
    if _tracer is None:
        return metadata
    out = [(key, value) for key, value in metadata if key not in TRACE_KEYS]
    inject(out)
    return tuple(out)


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) in hex of the current span, None outside one (or when off)."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"
