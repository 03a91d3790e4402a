"""pluggy hook specifications. Hooks only *register* objects at start-up; none runs per request.

Each hook receives a ``register`` callback, typed per hook (``RegisterComponent`` ...). Call it once
per object you provide; an object that does not follow the hook's protocol fails the plugin's
registration with a :class:`~inferflow_core.errors.PluginError` naming what is missing::

    from inferflow_core.api import RegisterComponent, hookimpl

    @hookimpl
    def register_components(register: RegisterComponent) -> None:
        register(MyComponentType())
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .components.base import ComponentType, RequestObserver
    from .config.sources import ConfigSourceFactory

PROJECT = "inferflow"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Register = Callable[[Any], None]
RegisterComponent = Callable[["ComponentType"], None]
RegisterConfigSource = Callable[["ConfigSourceFactory"], None]
RegisterRequestObserver = Callable[["RequestObserver"], None]
RegisterConfigPrefix = Callable[[str], None]


@hookspec
def register_components(register: RegisterComponent) -> None:
    """Register component types (objects following ``api.ComponentType``).

    Each is keyed by its ``config_key``: the ``component_config`` section it consumes, e.g.
    ``rule_components``. A second registration for the same key replaces the first (with a warning).
    """


@hookspec
def register_log_formats(register: Register) -> None:
    """Register inference-log formats (objects with a ``name`` such as ``proto``, ``arrow``, ``parquet``)."""


@hookspec
def register_log_sinks(register: Register) -> None:
    """Register inference-log sinks (objects with a ``name`` such as ``kafka`` or ``file``)."""


@hookspec
def register_config_sources(register: RegisterConfigSource) -> None:
    """Register config source factories (``ConfigSourceFactory``: a ``name`` and
    ``create(settings, prefixes)``)."""


@hookspec
def register_request_observers(register: RegisterRequestObserver) -> None:
    """Register request observers (``api.RequestObserver``): told about every served request after its
    response is built (the inference logger is one). ``observe`` must return at once (queue, don't block).
    """


@hookspec
def register_config_prefixes(register: RegisterConfigPrefix) -> None:
    """Register extra config-tree prefixes (relative to ``/config/``) the config source must load and
    watch, e.g. ``myplugin/rules/``. Components read them through ``ctx.config.get(key)``.
    """
