"""Fixtures shared by the core's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inferflow_core.testing.tracing import recorded_spans
from tests.shadow_support import linear_model


@pytest.fixture
def spans() -> Iterator[Any]:
    """Inferflow's tracing on for the test, into an in-memory exporter (``get_finished_spans()``)."""
    with recorded_spans() as exporter:
        yield exporter


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A model repository with two linear ONNX models, ``lin_a`` (seed 1) and ``lin_b`` (seed 2): the
    primary and the candidate of the shadow and replay tests."""
    linear_model(tmp_path / "models", "lin_a", seed=1)
    linear_model(tmp_path / "models", "lin_b", seed=2)
    return tmp_path / "models"
