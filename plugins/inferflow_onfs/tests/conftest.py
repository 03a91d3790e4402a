"""Fixtures for the inferflow-onfs tests (helpers live in onfs_support.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from onfs_support import onfs_server, write_store


@pytest.fixture(scope="session")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("onfs_store")
    return root, write_store(root)


@pytest.fixture(scope="module")
def server_port(store_dir: tuple[Path, dict]) -> Iterator[int]:
    with onfs_server(store_dir[0], "--caller-id", "inferflow", "--auth-token", "secret") as port:
        yield port


@pytest.fixture
def remote_env(server_port: int, monkeypatch: pytest.MonkeyPatch) -> int:
    for key, value in {
        "EXTERNAL_SERVICE_ONFS_FS_HOST": "127.0.0.1",
        "EXTERNAL_SERVICE_ONFS_FS_PORT": str(server_port),
        "EXTERNAL_SERVICE_ONFS_FS_GRPC_PLAIN_TEXT": "true",
        "EXTERNAL_SERVICE_ONFS_FS_CALLER_ID": "inferflow",
        "EXTERNAL_SERVICE_ONFS_FS_CALLER_TOKEN": "secret",
        "EXTERNAL_SERVICE_ONFS_FS_DEAD_LINE": "2000",
        "EXTERNAL_SERVICE_ONFS_FS_BATCH_SIZE": "7",
    }.items():
        monkeypatch.setenv(key, value)
    return server_port
