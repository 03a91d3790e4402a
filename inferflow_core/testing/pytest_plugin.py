"""pytest plugin (entry point ``pytest11: inferflow``): fixtures for plugin authors.

* ``inferflow_host`` - a fresh PluginHost with the installed entry points loaded.
* ``free_port`` - a free loopback TCP port.
"""

from __future__ import annotations

import socket

import pytest

from ..plugins import PluginHost


def pick_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def free_port() -> int:
    return pick_free_port()


@pytest.fixture
def inferflow_host() -> PluginHost:
    host = PluginHost()
    host.load_entrypoints()
    return host
