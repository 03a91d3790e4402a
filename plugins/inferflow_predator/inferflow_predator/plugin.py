"""Entry point ``predator`` (group ``inferflow``): registers the ``predator_components`` type."""

from __future__ import annotations

from inferflow_core.api import RegisterComponent, hookimpl

from .component import PredatorType


@hookimpl
def register_components(register: RegisterComponent) -> None:
    register(PredatorType())
