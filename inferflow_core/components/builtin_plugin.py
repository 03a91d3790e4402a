"""The core's own plugin (entry point ``core``): the directory and etcd config sources.

It is registered like any other plugin, so ``inferflow plugins`` lists it and tests can replace it.
The DAG's root node (``feature_initializer``) is no component type: the model compiler builds it.
"""

from __future__ import annotations

from ..config.etcd_source import EtcdSourceFactory
from ..config.sources import DirectorySourceFactory
from ..hookspecs import RegisterConfigSource, hookimpl


@hookimpl
def register_config_sources(register: RegisterConfigSource) -> None:
    register(DirectorySourceFactory())
    register(EtcdSourceFactory())
