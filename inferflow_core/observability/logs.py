"""Structured JSON application logs: one JSON object per line on stderr.

Fields: ``ts`` (RFC 3339 UTC), ``level``, ``logger``, ``msg``, ``pid``, plus every ``extra={...}`` key
(``model_id``, ``component``, ``error`` ...) and ``exc`` when an exception is attached.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any

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
    handler._inferflow = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(getattr(logging, str(level).upper(), logging.INFO))
