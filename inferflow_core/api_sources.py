"""Config sources, as one namespace: ``from inferflow_core.api import sources``.

What a config-source plugin implements (``ConfigSource``, made by a ``ConfigSourceFactory`` registered
through ``register_config_sources``), and the directory source plugins reuse: ``DirectorySource`` (a
config directory watched for changes, e.g. a plugin server's own expressions) and ``read_config_dir`` (a
directory read once into the key -> value tree the runtime applies).
"""

from __future__ import annotations

from .config.sources import ConfigSource, ConfigSourceFactory, DirectorySource, read_config_dir

__all__ = ["ConfigSource", "ConfigSourceFactory", "DirectorySource", "read_config_dir"]
