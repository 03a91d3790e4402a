"""The ``stdout`` log sink: one JSON line per log message on standard output.

``{"inference_log": model id, "tracking_id", "event_name", "created_at", "format", "schema",
"entities", "features"}``: a ``features`` blob that is UTF-8 JSON (the ``jsonl`` format's rows) is
embedded as JSON, any other as ``{"base64": ...}``. For development and log shippers that read a
container's output.
"""

from __future__ import annotations

import base64
import json
import sys
from typing import Any, BinaryIO

from inferflow_logging.api import LoggingSettings, LogMessage, read_message

from inferflow_core.api import Metrics


def _blob(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:  # not UTF-8 or not JSON (UnicodeDecodeError is a ValueError)
        return {"base64": base64.b64encode(data).decode("ascii")}


class StdoutWriter:
    def __init__(self, metrics: Metrics, out: BinaryIO | None = None) -> None:
        self.metrics = metrics
        self.out = out if out is not None else sys.stdout.buffer

    def write(self, messages: list[LogMessage]) -> None:
        lines = []
        for msg in messages:
            got = read_message(msg.value)
            line = {
                "inference_log": msg.model_id,
                "tracking_id": got.tracking_id,
                "event_name": got.event_name,
                "created_at": got.created_at,
                "format": got.format,
                "schema": msg.schema,
                "entities": got.entities,
                "features": [_blob(f) for f in got.features],
            }
            lines.append(json.dumps(line, ensure_ascii=False).encode("utf-8") + b"\n")
        self.out.write(b"".join(lines))  # an OSError here is the logger's sink error (counted, logged)
        self.out.flush()
        for msg in messages:
            self.metrics.count("logging.logged", model_id=msg.model_id, sink="stdout")

    def poll(self) -> None:
        pass

    def flush(self, timeout: float) -> int:
        self.out.flush()
        return 0

    def close(self) -> None:
        self.out.flush()


class StdoutSink:
    name = "stdout"

    def create(self, settings: LoggingSettings, metrics: Metrics) -> StdoutWriter:
        return StdoutWriter(metrics)
