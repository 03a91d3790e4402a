"""Entry point ``predator`` (group ``inferflow``): registers the ``predator_components`` type."""

from __future__ import annotations

from typing import Any

from inferflow_core.api import hookimpl

from .component import PredatorType


@hookimpl
def register_components(register: Any) -> None:
    register(PredatorType())
