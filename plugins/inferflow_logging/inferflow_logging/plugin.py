"""Entry point ``inferflow = logging``: adds the log format / sink hooks, registers the built-in formats
and sinks and the inference logger, and checks service-config ``v2-logging-type``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from inferflow_core.api import RegisterRequestObserver, ServiceConfig, hookimpl

from . import hookspecs
from .api import RegisterLogFormat, RegisterLogSink
from .formats import FORMATS
from .observer import InferenceLogger
from .registration import check_format, check_sink, format_name, unknown_format
from .sinks import SINKS


def _check(hook_name: str, obj: Any, registered: Mapping[str, Any]) -> None:
    if hook_name == hookspecs.FORMATS_HOOK:
        check_format(obj, registered)
    elif hook_name == hookspecs.SINKS_HOOK:
        check_sink(obj, registered)


@hookimpl
def add_hookspecs(add: Callable[..., None]) -> None:
    add(hookspecs, check=_check)


@hookimpl
def register_log_formats(register: RegisterLogFormat) -> None:
    for fmt in FORMATS.values():
        register(fmt)


@hookimpl
def register_log_sinks(register: RegisterLogSink) -> None:
    for sink in SINKS.values():
        register(sink)


@hookimpl
def register_request_observers(register: RegisterRequestObserver) -> None:
    register(InferenceLogger())


@hookimpl
def validate_service_config(
    service: ServiceConfig, registered: Callable[[str], Mapping[str, Any]]
) -> list[str]:
    """``v2-logging-type`` must name an installed log format."""
    formats = registered(hookspecs.FORMATS_HOOK)
    name = format_name(service)
    if name in formats:
        return []
    return [unknown_format(name, formats)]
