"""What the logging plugin accepts as a registered log format or sink, and the messages naming the
installed ones when a config selects one that is not."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from inferflow_core.api import PluginError

from .schema import EXTENSION_CODE, FORMAT_CODES, MAX_FORMAT_NAME


def check_format(fmt: object, registered: Mapping[str, object]) -> None:
    """Refuse a log format whose name or code could be misread (``register_log_formats``' check).

    A format declaring a ``code`` must be the Go format of that code (``proto`` 0, ``arrow`` 1,
    ``parquet`` 2); any other format declares none (or ``EXTENSION_CODE``) and must not take a Go
    format's name, so a reader never mistakes it for one; a name is registered once.
    """
    name = getattr(fmt, "name", None)
    if not isinstance(name, str) or not name:
        raise PluginError(f"log format {fmt!r}: name must be a non-empty string, got {name!r}")
    code = getattr(fmt, "code", None)
    if code is not None and code != EXTENSION_CODE:
        if FORMAT_CODES.get(name) != code:
            owner = {v: k for k, v in FORMAT_CODES.items()}.get(code)
            why = f"is Go Inferflow's {owner!r} format" if owner else "is not a format code"
            raise PluginError(
                f"log format {name!r}: code {code!r} {why}; declare no code (extension formats are code "
                f"{EXTENSION_CODE} with their name in the metadata)"
            )
    elif name in FORMAT_CODES:
        raise PluginError(
            f"log format {name!r}: the name of a Go Inferflow format must come with its code "
            f"{FORMAT_CODES[name]}"
        )
    encoded = name.encode("utf-8")
    if len(encoded) > MAX_FORMAT_NAME or not name.isprintable() or name != name.strip().lower():
        raise PluginError(
            f"log format {name!r}: a name is lower case, printable, without surrounding spaces and at "
            f"most {MAX_FORMAT_NAME} bytes"
        )
    if name in registered:
        raise PluginError(f"log format {name!r} is already registered by {registered[name]!r}")
    for method in ("encode", "decode", "bad_rows"):
        if not callable(getattr(fmt, method, None)):
            raise PluginError(
                f"log format {name!r}: {method}() is missing (see inferflow_logging.api.LogFormat)"
            )


def check_sink(sink: object, registered: Mapping[str, object]) -> None:
    """Refuse a log sink that cannot be selected (``register_log_sinks``' check)."""
    name = getattr(sink, "name", None)
    if not isinstance(name, str) or not name or name != name.strip().lower() or name in RESERVED_SINKS:
        raise PluginError(
            f"log sink {sink!r}: name must be a lower-case string other than {', '.join(RESERVED_SINKS)}, "
            f"got {name!r}"
        )
    if name in registered:
        raise PluginError(f"log sink {name!r} is already registered by {registered[name]!r}")
    if not callable(getattr(sink, "create", None)):
        raise PluginError(f"log sink {name!r}: create() is missing (see inferflow_logging.api.LogSink)")


RESERVED_SINKS = ("auto", "none")  # INFERFLOW_LOG_SINK values that name no sink


DEFAULT_FORMAT = "proto"  # Go Inferflow's default when service-config names none


def format_name(service: Any) -> str:
    """The log format a service config selects (``v2-logging-type``, ``proto`` when not set)."""
    return getattr(service, "v2_logging_type", None) or DEFAULT_FORMAT


def unknown_format(name: str, formats: Mapping[str, Any]) -> str:
    installed = ", ".join(sorted(formats)) or "none"
    return f"v2-logging-type {name!r} is not an installed log format (installed: {installed})"


def unknown_sink(name: str, sinks: Mapping[str, Any]) -> PluginError:
    installed = ", ".join(sorted(sinks)) or "none"
    return PluginError(
        f"INFERFLOW_LOG_SINK={name!r} is not an installed log sink (installed: {installed}; or auto, none)"
    )
