"""The one public surface for plugin authors. Import from here, nothing else in ``inferflow_core``.

Everything a component, log format, log sink or config source plugin needs is re-exported here.
"""

from __future__ import annotations

from ._proto import inferflow_logging_pb2 as log_pb2
from ._proto import kafka_request_pb2
from .channels import reconnect_options
from .components.base import (
    BuildContext,
    ColumnRead,
    ColumnSpec,
    Component,
    ComponentFailure,
    ComponentType,
    ConfigView,
    ObserverHost,
    RequestInfo,
    RequestObserver,
    RunContext,
    ServedRequest,
    Stopwatch,
)
from .components.feature_init import InitialData, TypedValues
from .config.model import FEATURE_INITIALIZER, ComponentConfig, ModelConfig, ResponseConfig, ServiceConfig
from .config.settings import ServiceSettings
from .config.sources import ConfigSource, DirectorySource, read_config_dir, write_config_dir
from .dtypes import (
    DataType,
    DataTypeError,
    array_to_cells,
    bytes_to_text,
    cast_array,
    cells_to_array,
    decode_array,
    decode_string_vector,
    encode_array,
    encode_string_vector,
    format_column,
    format_value,
    from_kserve,
    parse_dtype,
    parse_text,
    parse_text_column,
    text_to_bytes,
)
from .engine.compile import CompiledModel
from .errors import ComponentError, ConfigError, InferflowError, PluginError, RequestError
from .hookspecs import hookimpl
from .matrix import Column, ComponentMatrix, SlateMatrix
from .observability.metrics import Metrics
from .observability.tracing import external_span
from .serving.standalone import serve_grpc_service
from .tls import ClientTls, ServerTls, TlsConfigError, open_channel
from .wireformat import length_delimited, varint

__all__ = [
    "FEATURE_INITIALIZER",
    "BuildContext",
    "ClientTls",
    "Column",
    "ColumnRead",
    "ColumnSpec",
    "CompiledModel",
    "Component",
    "ComponentConfig",
    "ComponentError",
    "ComponentFailure",
    "ComponentMatrix",
    "ComponentType",
    "ConfigError",
    "ConfigSource",
    "ConfigView",
    "DataType",
    "DataTypeError",
    "DirectorySource",
    "InferflowError",
    "InitialData",
    "Metrics",
    "ModelConfig",
    "ObserverHost",
    "PluginError",
    "RequestError",
    "RequestInfo",
    "RequestObserver",
    "ResponseConfig",
    "RunContext",
    "ServedRequest",
    "ServerTls",
    "ServiceConfig",
    "ServiceSettings",
    "SlateMatrix",
    "Stopwatch",
    "TlsConfigError",
    "TypedValues",
    "array_to_cells",
    "bytes_to_text",
    "cast_array",
    "cells_to_array",
    "decode_array",
    "decode_string_vector",
    "encode_array",
    "encode_string_vector",
    "external_span",
    "format_column",
    "format_value",
    "from_kserve",
    "hookimpl",
    "kafka_request_pb2",
    "length_delimited",
    "log_pb2",
    "open_channel",
    "parse_dtype",
    "parse_text",
    "parse_text_column",
    "read_config_dir",
    "reconnect_options",
    "serve_grpc_service",
    "text_to_bytes",
    "varint",
    "write_config_dir",
]
