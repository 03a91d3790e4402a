"""The logging plugin's own registration hooks, added to the host through ``add_hookspecs``.

Any installed plugin implements them to contribute a log format or a log sink::

    from inferflow_logging.api import hookimpl

    @hookimpl
    def register_log_formats(register):
        register(MyFormat())

The host collects them by ``name`` (``ObserverHost.registered("register_log_formats")``) after
:func:`.schema.check_format` / :func:`.schema.check_sink` accepted them.
"""

from __future__ import annotations

from inferflow_core.api import hookspec

from .api import RegisterLogFormat, RegisterLogSink

FORMATS_HOOK = "register_log_formats"
SINKS_HOOK = "register_log_sinks"


@hookspec
def register_log_formats(register: RegisterLogFormat) -> None:
    """Register inference-log formats (``inferflow_logging.api.LogFormat``): the ``name`` is what
    service-config ``v2-logging-type`` selects."""


@hookspec
def register_log_sinks(register: RegisterLogSink) -> None:
    """Register inference-log sinks (``inferflow_logging.api.LogSink``): the ``name`` is what
    ``INFERFLOW_LOG_SINK`` selects."""
