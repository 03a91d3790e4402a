"""The one public surface for plugin authors. Import from here, nothing else in ``inferflow_core``
(tests may also use ``inferflow_core.testing``).

* registration: ``hookimpl`` and one ``Register*`` callback type per hook;
* components: ``ComponentType`` (what a plugin registers), ``Component`` (what it builds), the
  column declarations, the build and run contexts, the matrix and data types, the errors;
* request observers (``RequestObserver``, ``ServedRequest``, ``ObserverHost``);
* config sources: the ``sources`` namespace (``ConfigSource``, ``ConfigSourceFactory``, ``DirectorySource``,
  ``read_config_dir``);
* shared services: metrics and tracing, TLS and gRPC channels, a plugin's own gRPC server, an
  in-process ``Runtime`` and the ``InferflowClient``;
* three namespaces: ``codecs`` (value and wire codecs), ``features`` (what feature-source plugins
  share: the FeatureFrame, the feature cache, entity keys, feature config pieces) and ``stats`` (rank
  correlations).
"""

from __future__ import annotations

from . import api_codecs as codecs
from . import api_net as net
from . import api_sources as sources
from . import features, stats
from .client import InferflowClient
from .components.base import (
    BuildContext,
    ColumnRead,
    ColumnSpec,
    Component,
    ComponentType,
    ObserverHost,
    RequestInfo,
    RequestObserver,
    RunContext,
    ServedRequest,
)
from .components.feature_init import InitialData, TypedValues
from .config.model import ComponentConfig, ModelConfig, ServiceConfig
from .dtypes import DataType, DataTypeError
from .engine.compile import CompiledModel
from .errors import ComponentError, ConfigError, PluginError
from .hookspecs import (
    RegisterComponent,
    RegisterConfigPrefix,
    RegisterConfigSource,
    RegisterRequestObserver,
    hookimpl,
    hookspec,
)
from .matrix import ComponentMatrix
from .observability.metrics import ComponentMetrics, ExternalCallMetrics, Metrics
from .observability.tracing import external_span
from .runtime import Runtime

__all__ = [
    "BuildContext",
    "ColumnRead",
    "ColumnSpec",
    "CompiledModel",
    "Component",
    "ComponentConfig",
    "ComponentError",
    "ComponentMatrix",
    "ComponentMetrics",
    "ComponentType",
    "ConfigError",
    "DataType",
    "DataTypeError",
    "ExternalCallMetrics",
    "InferflowClient",
    "InitialData",
    "Metrics",
    "ModelConfig",
    "ObserverHost",
    "PluginError",
    "RegisterComponent",
    "RegisterConfigPrefix",
    "RegisterConfigSource",
    "RegisterRequestObserver",
    "RequestInfo",
    "RequestObserver",
    "RunContext",
    "Runtime",
    "ServedRequest",
    "ServiceConfig",
    "TypedValues",
    "codecs",
    "external_span",
    "features",
    "hookimpl",
    "hookspec",
    "net",
    "sources",
    "stats",
]
