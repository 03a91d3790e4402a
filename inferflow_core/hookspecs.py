"""pluggy hook specifications. Hooks only *register* objects at start-up; none runs per request.

Each hook receives a ``register`` callback. Call it once per object you provide::

    from inferflow_core.api import hookimpl

    @hookimpl
    def register_components(register):
        register(MyComponentType())
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT = "inferflow"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Register = Callable[[Any], None]


@hookspec
def register_components(register: Register) -> None:
    """Register component types (objects following ``api.ComponentType``).

    Each is keyed by its ``config_key``: the ``component_config`` section it consumes, e.g.
    ``feature_components``. A second registration for the same key replaces the first (with a warning).
    """


@hookspec
def register_log_formats(register: Register) -> None:
    """Register inference-log formats (objects with a ``name`` such as ``proto``, ``arrow``, ``parquet``)."""


@hookspec
def register_log_sinks(register: Register) -> None:
    """Register inference-log sinks (objects with a ``name`` such as ``kafka`` or ``file``)."""


@hookspec
def register_config_sources(register: Register) -> None:
    """Register config source factories (objects with a ``name`` and ``create(settings, prefixes)``)."""


@hookspec
def register_request_observers(register: Register) -> None:
    """Register request observers (``api.RequestObserver``): told about every served request after its
    response is built (the inference logger is one). ``observe`` must return at once (queue, don't block).
    """


@hookspec
def register_config_prefixes(register: Register) -> None:
    """Register extra config-tree prefixes (relative to ``/config/``) the config source must load and
    watch, e.g. ``numerix/expression-config/``. Components read them through ``ctx.config.get(key)``.
    """
