"""The plugin host: one object that owns the PluginManager, loads entry points one by one and
collects what plugins register. A broken plugin is reported (distribution, version, error) and skipped
unless strict mode is on."""

from __future__ import annotations

import importlib.metadata as md
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, ModuleType
from typing import Any

import pluggy

from . import hookspecs
from .components.base import ComponentType, RequestObserver
from .config.model import FEATURE_INITIALIZER, RESERVED_SECTION_KEYS
from .config.sources import ConfigSourceFactory
from .errors import PluginError
from .hookspecs import Check

log = logging.getLogger("inferflow.plugins")
ENTRY_POINT_GROUP = "inferflow"


@dataclass(frozen=True)
class PluginFailure:
    name: str
    distribution: str
    version: str
    error: str


@dataclass(frozen=True)
class PluginInfo:
    name: str
    distribution: str
    version: str
    hooks: tuple[str, ...]


@dataclass
class Registry:
    """What the loaded plugins registered. ``extras`` holds what was registered through hooks that
    plugins added (``add_hookspecs``): hook name -> object name -> object."""

    components: dict[str, ComponentType] = field(default_factory=dict)
    config_sources: dict[str, ConfigSourceFactory] = field(default_factory=dict)
    request_observers: list[RequestObserver] = field(default_factory=list)
    config_prefixes: list[str] = field(default_factory=list)
    extras: dict[str, dict[str, Any]] = field(default_factory=dict)

    def registered(self, hook_name: str) -> Mapping[str, Any]:
        """What was registered through the added hook ``hook_name`` (name -> object, read-only);
        empty when no plugin added that hook or nothing was registered."""
        return MappingProxyType(self.extras.get(hook_name, {}))


class PluginHost:
    """Loads plugins and collects their registrations. Create one per process (or per test)."""

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.failures: list[PluginFailure] = []
        self._dists: dict[str, tuple[str, str]] = {}
        self.registry = Registry()
        self.added_hooks: dict[str, Check | None] = {}  # hooks plugins added -> their registration check
        self.pm.hook.add_hookspecs.call_historic(kwargs={"add": self._add_hookspecs})

    def _add_hookspecs(self, module_or_class: ModuleType | type, check: Check | None = None) -> None:
        """``add_hookspecs``'s callback: add a plugin's registration hooks (see ``hookspecs``)."""
        before = set(self._spec_names())
        self.pm.add_hookspecs(module_or_class)
        for name in sorted(set(self._spec_names()) - before):
            if not name.startswith("register_"):
                raise PluginError(f"added hook {name!r}: a plugin may add only register_<things> hooks")
            self.added_hooks[name] = check

    def _spec_names(self) -> list[str]:
        return [name for name, caller in vars(self.pm.hook).items() if caller.spec is not None]

    def load_entrypoints(self) -> None:
        """Load every entry point of group ``inferflow``; a failing one is recorded, not fatal."""
        for ep in sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else "?"
            if self.pm.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
                self._dists[ep.name] = (dist, version)
                self.pm.register(plugin, name=ep.name)  # runs its add_hookspecs at once (historic)
            except Exception as exc:
                if self.pm.has_plugin(ep.name):
                    self.pm.unregister(name=ep.name)
                self._dists.pop(ep.name, None)
                self._fail(ep.name, dist, version, exc)
        self._drop_unknown_hooks()
        self.pm.check_pending()

    def _drop_unknown_hooks(self) -> None:
        """A plugin implementing a hook no loaded plugin added (its owner is missing or failed to load)
        is a failure of that plugin: recorded and unregistered, not a crash of the host."""
        for hook_name, caller in list(vars(self.pm.hook).items()):
            if hook_name.startswith("_") or caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if impl.optionalhook or not self.pm.has_plugin(impl.plugin_name):
                    continue
                dist, version = self._dists.pop(impl.plugin_name, (impl.plugin_name, "?"))
                self.pm.unregister(name=impl.plugin_name)
                why = PluginError(f"implements hook {hook_name!r}, which no loaded plugin adds")
                self._fail(impl.plugin_name, dist, version, why)

    def register(self, plugin: object, name: str | None = None) -> str:
        """Register a plugin object (module or instance with hookimpls) directly, e.g. in tests."""
        try:
            got = self.pm.register(plugin, name=name)  # runs its add_hookspecs at once (historic)
        except Exception:
            if self.pm.is_registered(plugin):
                self.pm.unregister(plugin)
            raise
        if got is None:
            raise PluginError(f"plugin {name!r} is already registered")
        self.pm.check_pending()
        return got

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)

    def collect(self) -> Registry:
        """Call every registration hook (each plugin isolated) and return the fresh registry."""
        reg = Registry()

        def component(obj: Any) -> None:
            _conforms(obj, ComponentType, "register_components")
            _keyed(reg.components, _config_key(obj), obj)

        def config_source(obj: Any) -> None:
            _conforms(obj, ConfigSourceFactory, "register_config_sources")
            _keyed(reg.config_sources, obj.name, obj)

        def observer(obj: Any) -> None:
            _conforms(obj, RequestObserver, "register_request_observers")
            reg.request_observers.append(obj)

        def prefix(obj: Any) -> None:
            if not isinstance(obj, str):
                raise PluginError(f"register_config_prefixes got {obj!r}: a config prefix must be a str")
            reg.config_prefixes.append(obj)

        self._call("register_components", component)
        self._call("register_config_sources", config_source)
        self._call("register_request_observers", observer)
        self._call("register_config_prefixes", prefix)
        for hook_name, check in self.added_hooks.items():
            self._call(hook_name, _adder(hook_name, reg.extras.setdefault(hook_name, {}), check))
        self.registry = reg
        return reg

    def validate_service_config(self, service: Any) -> list[str]:
        """Every plugin's problems with ``service`` (``validate_service_config``); a plugin whose check
        raises reports that as a problem."""
        problems: list[str] = []
        registered = self.registry.registered
        for impl in reversed(self.pm.hook.validate_service_config.get_hookimpls()):
            try:
                got: Any = impl.function(service=service, registered=registered)
                problems += [str(p) for p in got or []]
            except Exception as exc:
                problems.append(
                    f"plugin {impl.plugin_name!r} could not check it: {type(exc).__name__}: {exc}"
                )
        return problems

    def _call(self, hook_name: str, register: Callable[[Any], None]) -> None:
        """Call ``hook_name`` of each plugin; an exception (e.g. a :class:`PluginError` from ``register``)
        is recorded as that plugin's failure, naming it (or raised in strict mode)."""
        hook = getattr(self.pm.hook, hook_name)
        for impl in reversed(hook.get_hookimpls()):
            try:
                impl.function(register=register)
            except Exception as exc:
                dist, version = self._dists.get(impl.plugin_name, (impl.plugin_name, "?"))
                self._fail(impl.plugin_name, dist, version, exc, hook_name)

    def _fail(self, name: str, dist: str, version: str, exc: BaseException, where: str = "load") -> None:
        failure = PluginFailure(name, dist, version, f"{where}: {type(exc).__name__}: {exc}")
        self.failures.append(failure)
        log.error("plugin %s (%s %s) failed to %s: %s", name, dist, version, where, exc)
        if self.strict:
            raise PluginError(f"plugin {name!r} ({dist} {version}) failed: {failure.error}") from exc

    def plugins(self) -> list[PluginInfo]:
        out = []
        for name, plugin in self.pm.list_name_plugin():
            dist, version = self._dists.get(name, ("(registered directly)", "-"))
            hooks = tuple(sorted(h.name for h in self.pm.get_hookcallers(plugin) or []))
            out.append(PluginInfo(name, dist, version, hooks))
        return sorted(out, key=lambda p: p.name)

    def missing_reason(self) -> dict[str, str]:
        """For config validation: text explaining why a component section may have no plugin."""
        if not self.failures:
            return {}
        failed = "; ".join(f"{f.distribution} {f.version}: {f.error}" for f in self.failures)
        why = f"no installed plugin registers this section (plugins that failed to load: {failed})"
        return {"*": why}


def _config_key(obj: Any) -> str:
    """The section a component type consumes; a key that cannot name a section fails registration."""
    key = getattr(obj, "config_key", None)
    if not isinstance(key, str) or not key.strip() or key != key.strip():
        raise PluginError(f"component type {obj!r}: config_key must be a non-empty string, got {key!r}")
    if key in RESERVED_SECTION_KEYS:
        raise PluginError(
            f"component type {obj!r}: config_key {key!r} is a component_config switch, not a section"
        )
    if key == FEATURE_INITIALIZER:
        raise PluginError(f"component type {obj!r}: config_key {key!r} names the DAG's root node, built in")
    return key


def _adder(hook_name: str, store: dict[str, Any], check: Check | None) -> Callable[[Any], None]:
    """The ``register`` callback of an added hook: objects keyed by their ``name``, each first passed
    to the hook's check (which raises to refuse it)."""

    def register(obj: Any) -> None:
        name = getattr(obj, "name", None)
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise PluginError(f"{hook_name}: {obj!r} needs a non-empty string name, got {name!r}")
        if check is not None:
            check(hook_name, obj, MappingProxyType(store))
        _keyed(store, name, obj)

    return register


def _conforms(obj: Any, protocol: type, hook: str) -> None:
    """``isinstance(obj, protocol)`` (a runtime-checkable protocol) with its methods callable, or a
    :class:`PluginError` naming the hook, the object and each member it lacks (the host adds the plugin)."""
    defined = {n: v for n, v in vars(protocol).items() if not n.startswith("_")}
    methods = {n for n, v in defined.items() if callable(v)}
    members = set(defined) | set(getattr(protocol, "__annotations__", {}))
    missing = sorted(
        m for m in members if not hasattr(obj, m) or (m in methods and not callable(getattr(obj, m)))
    )
    if missing or not isinstance(obj, protocol):
        raise PluginError(
            f"{hook} got {obj!r}, which is not a {protocol.__name__}: missing {', '.join(missing)}"
        )


def _keyed(store: dict[str, Any], key: str, obj: Any) -> None:
    if key in store:
        log.warning("%r registered twice; the later registration wins", key)
    store[key] = obj
