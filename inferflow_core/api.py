"""The one public surface for plugin authors. Import from here, nothing else in ``inferflow_core``.

Everything a component, log format, log sink or config source plugin needs is re-exported here.
"""

from __future__ import annotations

from .channels import reconnect_options
from .client import InferflowClient
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
from .features import Block as FeatureBlock
from .features import (
    DataTypeSpelling,
    EntityKeys,
    FeatureCache,
    FeatureFrame,
    FeatureNames,
    FsKey,
    empty_objects,
    entity_keys,
    from_raw,
    missing_frame,
    raw_dtype,
    read_keys,
    split_typed_feature,
    to_raw,
)
from .features import Slab as FeatureSlab
from .features import Slot as FeatureSlot
from .features import assemble as assemble_features
from .hookspecs import hookimpl, hookspec
from .matrix import Column, ComponentMatrix, SlateMatrix
from .observability.metrics import Metrics
from .observability.tracing import external_span
from .runtime import Runtime
from .serving.standalone import serve_grpc_service
from .stats import average_ranks, kendall_tau_b, spearman, top_k_overlap
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
    "DataTypeSpelling",
    "DirectorySource",
    "EntityKeys",
    "FeatureBlock",
    "FeatureCache",
    "FeatureFrame",
    "FeatureNames",
    "FeatureSlab",
    "FeatureSlot",
    "FsKey",
    "InferflowClient",
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
    "Runtime",
    "ServedRequest",
    "ServerTls",
    "ServiceConfig",
    "ServiceSettings",
    "SlateMatrix",
    "Stopwatch",
    "TlsConfigError",
    "TypedValues",
    "array_to_cells",
    "assemble_features",
    "average_ranks",
    "bytes_to_text",
    "cast_array",
    "cells_to_array",
    "decode_array",
    "decode_string_vector",
    "empty_objects",
    "encode_array",
    "encode_string_vector",
    "entity_keys",
    "external_span",
    "format_column",
    "format_value",
    "from_kserve",
    "from_raw",
    "hookimpl",
    "hookspec",
    "kendall_tau_b",
    "length_delimited",
    "missing_frame",
    "open_channel",
    "parse_dtype",
    "parse_text",
    "parse_text_column",
    "raw_dtype",
    "read_config_dir",
    "read_keys",
    "reconnect_options",
    "serve_grpc_service",
    "spearman",
    "split_typed_feature",
    "text_to_bytes",
    "to_raw",
    "top_k_overlap",
    "varint",
    "write_config_dir",
]
