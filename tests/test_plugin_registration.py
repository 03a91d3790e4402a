"""What the plugin host accepts at registration: objects that follow each hook's protocol, checked with
``isinstance``; anything else is that plugin's failure, naming the hook, the object and what it lacks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from pydantic import BaseModel

from inferflow_core.api import BuildContext, Component, hookimpl
from inferflow_core.components import builtin_plugin
from inferflow_core.errors import PluginError
from inferflow_core.plugins import PluginHost


class _Empty(BaseModel):
    pass


class _NoBuild:
    config_key = "nobuild_components"
    config_model = _Empty


class _GoodType(_NoBuild):
    config_key = "good_components"

    def build(self, config: Any, ctx: BuildContext) -> Component:
        raise NotImplementedError


class _RootKey(_GoodType):
    config_key = "feature_initializer"


class _HalfObserver:
    def observe(self, served: Any) -> None:
        pass

    async def start(self, host: Any) -> None:
        pass


class _Source:
    name = "nowhere"
    create = "not callable"


class _Plugin:
    def __init__(
        self, components: Sequence[Any] = (), observers: Sequence[Any] = (), prefixes: Sequence[Any] = ()
    ) -> None:
        self.components, self.observers, self.prefixes = components, observers, prefixes

    @hookimpl
    def register_components(self, register: Any) -> None:
        for obj in self.components:
            register(obj)

    @hookimpl
    def register_request_observers(self, register: Any) -> None:
        for obj in self.observers:
            register(obj)

    @hookimpl
    def register_config_prefixes(self, register: Any) -> None:
        for obj in self.prefixes:
            register(obj)


class _SourcePlugin:
    @hookimpl
    def register_config_sources(self, register: Any) -> None:
        register(_Source())


def _collect(plugin: object, strict: bool = False) -> PluginHost:
    host = PluginHost(strict=strict)
    host.register(builtin_plugin, name="core")
    host.register(plugin, name="bad")
    host.collect()
    return host


def test_a_component_type_without_build_is_the_plugins_failure_naming_what_is_missing() -> None:
    host = _collect(_Plugin(components=[_GoodType(), _NoBuild()]))
    assert "good_components" in host.registry.components  # registered before the bad one
    assert "nobuild_components" not in host.registry.components
    [failure] = host.failures
    assert failure.name == "bad"
    assert "register_components" in failure.error
    assert "PluginError" in failure.error
    assert "not a ComponentType: missing build" in failure.error


def test_strict_mode_raises_a_plugin_error_naming_the_plugin() -> None:
    with pytest.raises(PluginError, match=r"plugin 'bad' .*not a ComponentType: missing build"):
        _collect(_Plugin(components=[_NoBuild()]), strict=True)


def test_an_observer_without_stop_and_a_prefix_that_is_no_str_are_rejected() -> None:
    host = _collect(_Plugin(observers=[_HalfObserver()], prefixes=[42]))
    assert host.registry.request_observers == []
    assert host.registry.config_prefixes == []
    errors = sorted(f.error for f in host.failures)
    assert any(
        "register_request_observers" in e and "not a RequestObserver: missing stop" in e for e in errors
    )
    assert any("register_config_prefixes" in e and "must be a str" in e for e in errors)


def test_a_config_source_whose_create_is_not_callable_is_rejected() -> None:
    host = _collect(_SourcePlugin())
    assert "nowhere" not in host.registry.config_sources
    assert "directory" in host.registry.config_sources
    assert any("not a ConfigSourceFactory: missing create" in f.error for f in host.failures), host.failures


def test_no_plugin_may_claim_the_root_node_and_the_core_registers_no_component_type() -> None:
    host = _collect(_Plugin(components=[_RootKey()]))
    assert host.registry.components == {}  # the root node is built by the compiler, not registered
    assert any("'feature_initializer' names the DAG's root node" in f.error for f in host.failures)
