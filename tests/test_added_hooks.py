"""Plugins add their own registration hooks (``add_hookspecs``, as pytest's ``pytest_addhooks``) and
check service configs (``validate_service_config``): the core collects and lists what they register
without knowing the hook, and refuses what the owning plugin's check refuses."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from inferflow_core import cli
from inferflow_core.api import PluginError, ServiceConfig, hookimpl, hookspec
from inferflow_core.components import builtin_plugin
from inferflow_core.plugins import PluginHost
from inferflow_core.runtime import Runtime


class WidgetSpecs:
    @hookspec
    def register_widgets(self, register: Callable[[Any], None]) -> None:
        """Register widgets (objects with a ``name``)."""


class Widget:
    def __init__(self, name: str, size: int = 1) -> None:
        self.name = name
        self.size = size


def _no_big_widgets(hook_name: str, obj: Any, registered: Mapping[str, Any]) -> None:
    assert hook_name == "register_widgets"
    if obj.size > 10:
        raise PluginError(f"widget {obj.name!r} is too big (already: {sorted(registered)})")


class WidgetOwner:
    """Adds the hook (with a check) and validates ``service-config`` field ``widget``."""

    @hookimpl
    def add_hookspecs(self, add: Callable[..., None]) -> None:
        add(WidgetSpecs, check=_no_big_widgets)

    @hookimpl
    def register_widgets(self, register: Callable[[Any], None]) -> None:
        register(Widget("small"))

    @hookimpl
    def validate_service_config(
        self, service: ServiceConfig, registered: Callable[[str], Mapping[str, Any]]
    ) -> list[str]:
        name = getattr(service, "widget", None) or "small"
        widgets = registered("register_widgets")
        return [] if name in widgets else [f"widget {name!r} is not installed ({', '.join(sorted(widgets))})"]


class WidgetMaker:
    def __init__(self, *widgets: Widget) -> None:
        self.widgets = widgets

    @hookimpl
    def register_widgets(self, register: Callable[[Any], None]) -> None:
        for w in self.widgets:
            register(w)


def _host(*makers: WidgetMaker, strict: bool = False) -> PluginHost:
    host = PluginHost(strict=strict)
    host.register(builtin_plugin, name="core")
    host.register(WidgetOwner(), name="owner")
    for i, maker in enumerate(makers):
        host.register(maker, name=f"maker{i}")
    return host


def test_an_added_hook_collects_by_name_from_every_plugin() -> None:
    reg = _host(WidgetMaker(Widget("round"), Widget("square"))).collect()
    assert sorted(reg.registered("register_widgets")) == ["round", "small", "square"]
    assert dict(reg.registered("register_gadgets")) == {}  # a hook nobody added: nothing
    with pytest.raises(TypeError):
        reg.registered("register_widgets")["x"] = Widget("x")  # type: ignore[index]


def test_the_owners_check_refuses_a_registration_as_that_plugins_failure() -> None:
    host = _host(WidgetMaker(Widget("huge", size=99)))
    reg = host.collect()
    assert "huge" not in reg.registered("register_widgets")
    (failure,) = host.failures
    assert failure.name == "maker0"
    assert "too big" in failure.error
    assert "register_widgets" in failure.error
    with pytest.raises(PluginError, match="too big"):
        _host(WidgetMaker(Widget("huge", size=99)), strict=True).collect()


def test_a_registration_without_a_name_is_refused() -> None:
    host = _host(WidgetMaker(Widget("")))
    host.collect()
    assert "needs a non-empty string name" in host.failures[0].error


def test_a_plugin_may_add_only_registration_hooks() -> None:
    class Specs:
        @hookspec
        def on_request(self, request: Any) -> None: ...

    class Adder:
        @hookimpl
        def add_hookspecs(self, add: Callable[..., None]) -> None:
            add(Specs)

    host = PluginHost()
    with pytest.raises(PluginError, match="only register_<things> hooks"):
        host.register(Adder(), name="adder")


def test_a_plugin_registered_before_the_owner_is_checked_once_the_hook_is_added() -> None:
    host = PluginHost()
    host.pm.register(WidgetMaker(Widget("early")), name="early")  # hook still unknown: pending
    host.register(WidgetOwner(), name="owner")  # adds the spec; check_pending passes now
    assert "early" in host.collect().registered("register_widgets")


def test_service_config_problems_come_from_the_plugins() -> None:
    runtime = Runtime(host=_host(WidgetMaker(Widget("round"))))
    key = runtime.settings.service_config_key
    good = runtime.apply_tree({key: json.dumps({"widget": "round", "v2-logging-type": "anything"})})
    assert good.service_error is None
    assert good.service.v2_logging_type == "anything"
    bad = runtime.apply_tree({key: json.dumps({"widget": "oval"})})
    assert bad.service_error is not None
    assert "widget 'oval' is not installed (round, small)" in bad.service_error
    assert bad.service is good.service  # the previous service config keeps serving
    problems = cli.check_service_config(runtime, {key: json.dumps({"widget": "oval"})})
    assert problems == [("", "widget 'oval' is not installed (round, small)")]
    assert cli.check_service_config(runtime, {}) == []  # no service config in the tree: nothing to check


def test_inferflow_plugins_lists_every_added_hook(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import inferflow_core.runtime as runtime_module

    class Fixed(Runtime):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(host=_host(WidgetMaker(Widget("round"))))

    monkeypatch.setattr(runtime_module, "Runtime", Fixed)
    assert cli.main(["plugins", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["widgets"] == ["round", "small"]
    assert cli.main(["plugins"]) == 0
    assert "widgets: round, small" in capsys.readouterr().out


def test_a_plugin_whose_hook_owner_is_missing_is_a_reported_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """E.g. a log format plugin installed while the logging plugin failed to load: the host keeps going."""
    import importlib.metadata as md

    class EntryPoint:
        def __init__(self, name: str, obj: object) -> None:
            self.name, self.obj, self.dist = name, obj, None

        def load(self) -> object:
            return self.obj

    eps = [EntryPoint("core", builtin_plugin), EntryPoint("orphan", WidgetMaker(Widget("lost")))]
    monkeypatch.setattr(md, "entry_points", lambda group: eps)
    host = PluginHost()
    host.load_entrypoints()
    (failure,) = host.failures
    assert failure.name == "orphan"
    assert "hook 'register_widgets', which no loaded plugin adds" in failure.error
    assert not host.pm.has_plugin("orphan")
    assert host.pm.has_plugin("core")
    with pytest.raises(PluginError, match="no loaded plugin adds"):
        PluginHost(strict=True).load_entrypoints()
