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

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .components.base import ComponentType, RequestObserver
    from .config.sources import ConfigSourceFactory

PROJECT = "inferflow"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

RegisterComponent = Callable[["ComponentType"], None]
RegisterConfigSource = Callable[["ConfigSourceFactory"], None]
RegisterRequestObserver = Callable[["RequestObserver"], None]
RegisterConfigPrefix = Callable[[str], None]
# What was registered through an added hook: hook name -> (object name -> object).
Registered = Callable[[str], Mapping[str, Any]]
# An added hook's owner check: (hook name, object, already registered by name) -> raise to refuse.
Check = Callable[[str, Any, Mapping[str, Any]], None]
AddHookspecs = Callable[..., None]  # add(module_or_class, check: Check | None = None)


@hookspec(historic=True)
def add_hookspecs(add: AddHookspecs) -> None:
    """Add a plugin's own registration hooks to the host (as pytest's ``pytest_addhooks``).

    Called once for every plugin, also one registered later. ``add(module, check=None)`` adds every
    hook specification of ``module`` (functions marked with ``api.hookspec``); each must be a
    ``register_<things>(register)`` hook whose objects have a non-empty string ``name``. The host
    collects them by name like its own (``Registry.registered("register_<things>")``) and lists them in
    ``inferflow plugins``. ``check(hook_name, obj, registered)`` (optional) may raise to refuse an
    object at registration (e.g. a clash with ``registered``, what is already registered by name): the
    refusal is the registering plugin's failure.
    """


@hookspec
def register_components(register: RegisterComponent) -> None:
    """Register component types (objects following ``api.ComponentType``).

    Each is keyed by its ``config_key``: the ``component_config`` section it consumes, e.g.
    ``rule_components``. A second registration for the same key replaces the first (with a warning).
    """


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


@hookspec
def validate_service_config(service: Any, registered: Registered) -> list[str]:
    """Problems of the service config (``ServiceConfig``) for this plugin, e.g. a ``v2-logging-type``
    no installed log format implements; ``[]`` when fine. ``registered(hook_name)`` gives what was
    registered through any registration hook (name -> object). Every config validation asks it:
    ``inferflow validate``, ``config push`` and each load of a config snapshot (a service config with a
    problem is rejected and the previous one kept).
    """
    return []
