"""Fixtures for the inferflow-feast tests (helpers live in feast_support.py)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from feast_support import make_repo


@pytest.fixture(scope="session")
def feast_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, pa.Table]]:
    """A real Feast repository (SQLite online store), applied and materialized once per session."""
    return make_repo(tmp_path_factory.mktemp("feast"))


@pytest.fixture
def feast_env(feast_repo: tuple[Path, dict[str, pa.Table]], monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("INFERFLOW_FEAST_REPO", str(feast_repo[0]))
    monkeypatch.setenv("INFERFLOW_FEAST_DEADLINE_MS", "5000")
    monkeypatch.setenv("INFERFLOW_FEAST_BATCH_SIZE", "7")
    return {name: table.to_pydict() for name, table in feast_repo[1].items()}
