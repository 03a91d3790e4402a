"""The public surface for log format and log sink authors. Import from here, nothing else in
``inferflow_logging`` (and ``inferflow_core.api`` for the core's types such as ``DataType``, ``Metrics``).

A format turns a :class:`LogTable` (entity ids plus every schema entry's wire cells) into
:class:`Chunk` s and decodes them back; a sink's writer takes :class:`LogMessage` s (serialized Kafka
message values). Register them from your plugin module (entry point group ``inferflow``)::

    from inferflow_logging.api import LogTable, Chunk, hookimpl

    class JsonLinesFormat:
        name = "jsonl"
        def bad_rows(self, table): ...
        def encode(self, table, batch_size): ...
        def decode(self, features, entries): ...

    @hookimpl
    def register_log_formats(register):
        register(JsonLinesFormat())

Conformance bases for your tests: :mod:`inferflow_logging.testing`.
"""

from __future__ import annotations

from inferflow_core.api import hookimpl

from .envelope import LoggedMessage, read_message, wrap
from .schema import EXTENSION_CODE, FORMAT_CODES, SchemaEntry, metadata_byte, unpack_metadata
from .settings import LoggingSettings
from .table import LogTable
from .types import Chunk, LogFormat, LogMessage, LogSink, RegisterLogFormat, RegisterLogSink, SinkWriter

__all__ = [
    "EXTENSION_CODE",
    "FORMAT_CODES",
    "Chunk",
    "LogFormat",
    "LogMessage",
    "LogSink",
    "LogTable",
    "LoggedMessage",
    "LoggingSettings",
    "RegisterLogFormat",
    "RegisterLogSink",
    "SchemaEntry",
    "SinkWriter",
    "hookimpl",
    "metadata_byte",
    "read_message",
    "unpack_metadata",
    "wrap",
]
