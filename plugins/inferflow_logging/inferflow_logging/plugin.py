"""Entry point ``inferflow = logging``: registers the formats, the sinks and the inference logger."""

from __future__ import annotations

from typing import Any

from inferflow_core.api import RegisterRequestObserver, hookimpl

from .formats import FORMATS
from .observer import InferenceLogger
from .sinks import SINKS


@hookimpl
def register_log_formats(register: Any) -> None:
    for fmt in FORMATS.values():
        register(fmt)


@hookimpl
def register_log_sinks(register: Any) -> None:
    for sink in SINKS.values():
        register(sink)


@hookimpl
def register_request_observers(register: RegisterRequestObserver) -> None:
    register(InferenceLogger())
