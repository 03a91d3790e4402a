"""Fixtures shared by the core's tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from inferflow_core.testing.tracing import recorded_spans


@pytest.fixture
def spans() -> Iterator[Any]:
    """Inferflow's tracing on for the test, into an in-memory exporter (``get_finished_spans()``)."""
    with recorded_spans() as exporter:
        yield exporter
