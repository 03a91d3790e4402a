"""The test kit itself: make_runtime's plugin sets and the free-port helper."""

from __future__ import annotations

import socket

import pytest

from inferflow_core.config.settings import ServiceSettings
from inferflow_core.testing import make_runtime, pick_free_port, silent_port
from tests.helpers import ProbePlugin


def test_make_runtime_holds_the_builtin_components_and_the_given_plugins_only() -> None:
    rt = make_runtime(probe=ProbePlugin(), settings=ServiceSettings(request_value_encoding="binary"))
    names = {name for name, _ in rt.host.pm.list_name_plugin()}
    assert names == {"core", "probe"}
    assert "probe_components" in rt.registry.components
    assert "feature_components" not in rt.registry.components  # installed, but not asked for
    assert rt.settings.request_value_encoding == "binary"


def test_make_runtime_with_entry_points_adds_the_installed_plugins() -> None:
    rt = make_runtime(entry_points=True, probe=ProbePlugin())
    assert {"probe_components", "feature_components"} <= set(rt.registry.components)


def test_pick_free_port_is_bindable() -> None:
    port = pick_free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_silent_port_accepts_and_never_answers() -> None:
    with silent_port() as port, socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
        conn.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        conn.settimeout(0.3)
        with pytest.raises(TimeoutError):
            conn.recv(1)  # a hanging backend: connected, and no byte ever comes back
