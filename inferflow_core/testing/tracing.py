"""Record the spans Inferflow emits, in memory, for tests and benchmarks that look at a request's trace."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ..observability import tracing

__all__ = ["recorded_spans", "request_span"]


@contextlib.contextmanager
def recorded_spans() -> Iterator[Any]:
    """Turn Inferflow's tracing on for the block, every span sampled, into an in-memory exporter.

    Yields the OpenTelemetry ``InMemorySpanExporter``: ``get_finished_spans()`` lists the spans ended so
    far (a request's server span, one child per component, the plugins' client spans), ``clear()``
    forgets them. Tracing is off again after the block, whatever it was before.
    """
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider)
    try:
        yield exporter
    finally:
        tracing.disable()


@contextlib.contextmanager
def request_span(api: str = "pointwise", traceparent: str | None = None) -> Iterator[None]:
    """Inside :func:`recorded_spans`: the block runs as a served request's span (child of ``traceparent``
    when given, as from a caller's metadata), so a plugin's client calls in it become child spans and carry
    the trace context on the wire, as they do when the server runs them."""
    import grpc

    handle = tracing.start_request(api, [("traceparent", traceparent)] if traceparent else [])
    status = grpc.StatusCode.OK
    try:
        yield
    except BaseException:
        status = grpc.StatusCode.UNKNOWN
        raise
    finally:
        tracing.end_request(handle, status, "", 0)
