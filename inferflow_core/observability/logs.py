"""Structured JSON application logs: one JSON object per line on stderr.

Fields: ``ts`` (RFC 3339 UTC), ``level``, ``logger``, ``msg``, ``pid``, plus every ``extra={...}`` key
(``model_id``, ``component``, ``error`` ...) and ``exc`` when an exception is attached.

Request scope: while a request is handled, :data:`REQUEST` (a contextvar, inherited by the tasks of the
request's components) holds what is known about it, and every line logged in that scope gets ``api``,
``tracking_id``, ``model_id`` and ``trace_id`` (the current span's when tracing is on, else the caller's
``traceparent``). The fields are looked up only when a line is actually written.

A library (python-json-logger, structlog) was considered: this formatter and filter are ~60 lines and a
dependency would not remove them (the request scope is ours either way).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from contextvars import ContextVar
from typing import Any

# the request being handled in this context: an object with ``api``, ``tracking_id``, ``model_id`` and
# ``metadata`` (the gRPC invocation metadata) attributes, or None outside a request
REQUEST: ContextVar[Any] = ContextVar("inferflow_request", default=None)


def _trace_id(req: Any) -> str | None:
    from . import tracing

    if tracing.enabled():
        from opentelemetry import trace

        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            return format(ctx.trace_id, "032x")
    for key, value in getattr(req, "metadata", None) or ():
        if key == "traceparent" and isinstance(value, str):
            parts = value.split("-")
            if len(parts) >= 3 and len(parts[1]) == 32:
                return parts[1]
    return None


class RequestContextFilter(logging.Filter):
    """Adds the request's ``api``, ``tracking_id``, ``model_id`` and ``trace_id`` to each record logged
    in a request's scope (fields the call passed in ``extra`` win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        req = REQUEST.get()
        if req is None:
            return True
        fields = record.__dict__
        fields.setdefault("api", req.api)
        if req.tracking_id:
            fields.setdefault("tracking_id", req.tracking_id)
        if req.model_id:
            fields.setdefault("model_id", req.model_id)
        if "trace_id" not in fields:
            trace_id = _trace_id(req)
            if trace_id:
                fields["trace_id"] = trace_id
        return True


_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process or os.getpid(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(level: str = "INFO", json_format: bool = True, stream: Any = None) -> None:
    """Configure the root logger once (idempotent): JSON lines at ``level`` (APP_LOG_LEVEL)."""
    root = logging.getLogger()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json_format else logging.Formatter("%(levelname)s %(name)s %(message)s")
    )
    for old in list(root.handlers):
        if getattr(old, "_inferflow", False):
            root.removeHandler(old)
    handler.addFilter(RequestContextFilter())
    handler._inferflow = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(getattr(logging, str(level).upper(), logging.INFO))
