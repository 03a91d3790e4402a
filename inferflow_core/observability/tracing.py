"""OpenTelemetry tracing: off by default, one flag check per request when off.

Turned on by the standard environment: ``OTEL_TRACES_EXPORTER`` (``otlp`` — needs the ``otlp`` extra —
or ``console``; unset or ``none`` = off), ``OTEL_SDK_DISABLED``, ``OTEL_TRACES_SAMPLER`` /
``OTEL_TRACES_SAMPLER_ARG`` (e.g. ``parentbased_traceidratio`` / ``0.01``), ``OTEL_SERVICE_NAME``
(default ``APP_NAME``), ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_EXPORTER_OTLP_*``, ``OTEL_PROPAGATORS``
(default W3C ``traceparent``/``tracestate`` + baggage).

Spans: ``inferflow <api>`` per request (a SERVER span whose parent is the caller's ``traceparent`` from
the gRPC metadata; attributes api, model id, target count, gRPC status), a child per component (kind,
rows, failure kind), and a CLIENT span per external call opened by a plugin with :func:`external_span`,
which also gives the metadata to send so the downstream service continues the trace.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

log = logging.getLogger("inferflow.tracing")

_tracer: Any = None  # an opentelemetry Tracer while tracing is on
_provider: Any = None


def enabled() -> bool:
    return _tracer is not None


def enable(provider: Any) -> None:
    """Trace with ``provider`` (an SDK ``TracerProvider``; tests pass one with an in-memory exporter)."""
    global _tracer, _provider
    _provider = provider
    _tracer = provider.get_tracer("inferflow")


def disable() -> None:
    global _tracer, _provider
    _tracer = _provider = None


def configure_from_env(service_name: str) -> bool:
    """Turn tracing on when the ``OTEL_*`` environment asks for it; returns whether it is on."""
    exporters = [e.strip() for e in os.environ.get("OTEL_TRACES_EXPORTER", "none").split(",") if e.strip()]
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true" or not exporters or exporters == ["none"]:
        disable()
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    attrs = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": service_name}
    provider = TracerProvider(resource=Resource.create(attrs))  # sampler from OTEL_TRACES_SAMPLER
    for name in exporters:
        if name == "otlp":
            try:
                from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
            except ImportError:
                log.error(
                    "OTEL_TRACES_EXPORTER=otlp needs the otlp extra: pip install 'inferflow-core[otlp]'"
                )
                continue
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        elif name == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        elif name != "none":
            log.error("unknown OTEL_TRACES_EXPORTER %r (known: otlp, console, none)", name)
    enable(provider)
    log.info("tracing on", extra={"exporters": exporters})
    return True


def shutdown(timeout: float = 3.0) -> None:
    """Flush and stop the exporters (server shutdown), waiting at most ``timeout`` s: an unreachable
    collector must not hold up the pod's exit (the OTLP exporter retries for up to 10 s)."""
    provider = _provider
    if provider is None or not hasattr(provider, "shutdown"):
        return

    def stop() -> None:
        try:
            provider.shutdown()
        except Exception:
            log.exception("tracing shutdown failed")

    worker = threading.Thread(target=stop, name="inferflow-tracing-shutdown", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        log.warning("tracing: spans not exported within %.0fs of shutdown were dropped", timeout)


# -- request and component spans (the core) ---------------------------------------------------------
# What the current request's trace needs below the request span: _RECORDING (sampled: real child spans),
# an _Unsampled (not sampled: no child spans, but downstream calls still carry the request's context with
# the "not sampled" flag, so every service keeps the same decision), or None (no request / tracing off).
_RECORDING = object()
_SCOPE: ContextVar[Any] = ContextVar("inferflow_trace_scope", default=None)


def recording() -> bool:
    """True inside a sampled request (components then get spans of their own)."""
    return _SCOPE.get() is _RECORDING


def start_request(api: str, metadata: Iterable[tuple[str, Any]]) -> tuple[Any, Any, Any]:
    """Open the request span (parent from the caller's metadata); make it current when it is sampled."""
    from opentelemetry import context, propagate, trace

    carrier = {k.lower(): v for k, v in metadata if isinstance(v, str)}
    parent = propagate.extract(carrier)
    span = _tracer.start_span(
        f"inferflow {api}",
        context=parent,
        kind=trace.SpanKind.SERVER,
        attributes={"rpc.system": "grpc", "inferflow.api": api},
    )
    if not span.is_recording():  # the cheap path of a sampler that said no
        out: dict[str, str] = {}
        propagate.inject(out, trace.set_span_in_context(span, parent))
        return span, None, _SCOPE.set(_Unsampled(tuple(out.items())))
    token = context.attach(trace.set_span_in_context(span, parent))
    return span, token, _SCOPE.set(_RECORDING)


def end_request(handle: tuple[Any, Any, Any], status: Any, model_id: str, targets: int) -> None:
    from opentelemetry import context, trace

    span, token, scope = handle
    _SCOPE.reset(scope)
    if token is None:
        return
    span.set_attribute("inferflow.model_id", model_id)
    span.set_attribute("inferflow.targets", targets)
    span.set_attribute("rpc.grpc.status_code", int(status.value[0]))
    if status.name != "OK":
        span.set_status(trace.Status(trace.StatusCode.ERROR, status.name))
    span.end()
    context.detach(token)


def start_component(name: str, kind: str, model_id: str, rows: int) -> tuple[Any, Any]:
    from opentelemetry import context, trace

    span = _tracer.start_span(
        f"component {name}",
        attributes={
            "inferflow.component": name,
            "inferflow.component.kind": kind,
            "inferflow.model_id": model_id,
            "inferflow.rows": rows,
        },
    )
    return span, context.attach(trace.set_span_in_context(span))


def end_component(handle: tuple[Any, Any], failure: str | None) -> None:
    from opentelemetry import context, trace

    span, token = handle
    if failure and span.is_recording():
        span.set_attribute("inferflow.failure", failure)
        span.set_status(trace.Status(trace.StatusCode.ERROR, failure))
    span.end()
    context.detach(token)


# -- external calls (plugins, through inferflow_core.api) -----------------------------------------
class _NoSpan:
    """What :func:`external_span` gives when tracing is off: no span, no extra metadata."""

    __slots__ = ()
    metadata: tuple[tuple[str, str], ...] = ()

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def set(self, key: str, value: Any) -> None:
        return None


_NO_SPAN = _NoSpan()


class _Unsampled(_NoSpan):
    """External calls of a request that is not sampled: no span, the request's context still sent."""

    __slots__ = ("metadata",)

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.metadata = metadata


class _ExternalSpan:
    __slots__ = ("attributes", "metadata", "name", "span", "token")

    def __init__(self, name: str, attributes: dict[str, Any]) -> None:
        self.name = name
        self.attributes = attributes
        self.metadata: tuple[tuple[str, str], ...] = ()

    def __enter__(self) -> _ExternalSpan:
        from opentelemetry import context, propagate, trace

        self.span = _tracer.start_span(self.name, kind=trace.SpanKind.CLIENT, attributes=self.attributes)
        self.token = context.attach(trace.set_span_in_context(self.span))
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        self.metadata = tuple(carrier.items())
        return self

    def set(self, key: str, value: Any) -> None:
        self.span.set_attribute(key, value)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        from opentelemetry import context, trace

        if exc is not None and self.span.is_recording():
            self.span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:200]))
        self.span.end()
        context.detach(self.token)


def external_span(service: str, endpoint: str, **attributes: Any) -> Any:
    """A CLIENT span around one call to an external service, for plugins::

        with external_span("numerix", "Compute", rows=n) as span:
            await stub(..., metadata=self.metadata + span.metadata)

    ``span.metadata`` holds ``traceparent``/``tracestate`` for the call (empty when tracing is off, in
    which case this costs one check). A raised exception marks the span failed."""
    if _tracer is None:
        return _NO_SPAN
    scope = _SCOPE.get()
    if scope is not _RECORDING:
        return scope or _NO_SPAN  # not sampled (context only) or outside a request
    attrs = {"peer.service": service, "rpc.method": endpoint}
    attrs.update({f"inferflow.{k}": v for k, v in attributes.items()})
    return _ExternalSpan(f"{service} {endpoint}", attrs)
