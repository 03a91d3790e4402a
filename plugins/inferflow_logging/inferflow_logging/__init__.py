"""inferflow-logging: inference logs (proto, Arrow, Parquet) to Kafka or files, off the request path."""

from __future__ import annotations

from importlib.metadata import version

from .formats import FORMATS, ArrowFormat, ParquetFormat, ProtoFormat
from .observer import InferenceLogger
from .schema import LogSchema, SchemaEntry, check_model_config, derive_schema, metadata_byte
from .settings import LoggingSettings
from .sinks import SINKS, FileSink, KafkaSink, read_delimited

__version__ = version("inferflow-logging")  # single source: pyproject.toml
__all__ = [
    "FORMATS",
    "SINKS",
    "ArrowFormat",
    "FileSink",
    "InferenceLogger",
    "KafkaSink",
    "LogSchema",
    "LoggingSettings",
    "ParquetFormat",
    "ProtoFormat",
    "SchemaEntry",
    "check_model_config",
    "derive_schema",
    "metadata_byte",
    "read_delimited",
]
