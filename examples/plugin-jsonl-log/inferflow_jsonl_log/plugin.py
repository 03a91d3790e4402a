"""Entry point ``inferflow = jsonl_log``: registers the ``jsonl`` format and the ``stdout`` sink."""

from __future__ import annotations

from inferflow_logging.api import RegisterLogFormat, RegisterLogSink, hookimpl

from .format import JsonLinesFormat
from .sink import StdoutSink


@hookimpl
def register_log_formats(register: RegisterLogFormat) -> None:
    register(JsonLinesFormat())


@hookimpl
def register_log_sinks(register: RegisterLogSink) -> None:
    register(StdoutSink())
