"""pytest plugin (entry point ``pytest11: inferflow``): fixtures for plugin authors.

* ``inferflow_host`` - a fresh PluginHost with the installed entry points loaded.
* ``free_port`` - a free loopback TCP port (:func:`~inferflow_core.testing.pick_free_port` outside fixtures).
* ``hanging_port`` - a loopback port that accepts connections and never answers: a backend that hangs
  (:func:`~inferflow_core.testing.silent_port` outside fixtures).
* ``etcd_server`` - a real etcd (``/usr/bin/etcd``) on free loopback ports with a temp data dir
  (an :class:`~inferflow_core.testing.etcd.EtcdProcess`; ``.endpoint`` is ``host:port``).
* ``inferflow_server`` - a factory: ``async with inferflow_server(runtime, tree) as srv`` runs a real
  grpc.aio server in-process (see :mod:`inferflow_core.testing.server`).

No pytest setting is needed for the conformance bases (:mod:`inferflow_core.testing`): their tests run
their own event loop. Async tests of your own (``inferflow_server``) need pytest-asyncio.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..plugins import PluginHost
from .ports import pick_free_port, silent_port

__all__ = ["etcd_server", "free_port", "hanging_port", "inferflow_host", "inferflow_server"]


@pytest.fixture
def free_port() -> int:
    return pick_free_port()


@pytest.fixture
def hanging_port() -> Iterator[int]:
    with silent_port() as port:
        yield port


@pytest.fixture
def inferflow_host() -> PluginHost:
    host = PluginHost()
    host.load_entrypoints()
    return host


@pytest.fixture
def etcd_server() -> Iterator[object]:
    from .etcd import EtcdProcess

    etcd = EtcdProcess()
    try:
        etcd.start()
    except RuntimeError as exc:
        etcd.cleanup()
        pytest.fail(f"cannot start etcd: {exc}")
    try:
        yield etcd
    finally:
        etcd.cleanup()


@pytest.fixture
def inferflow_server() -> object:
    from .server import running_server

    return running_server
