"""Entry point ``inferflow -> numerix``: registers the component type and the expression prefix."""

from __future__ import annotations

from typing import Any

from inferflow_core.api import hookimpl

from .component import NumerixType
from .settings import NumerixSettings, expression_prefix


@hookimpl
def register_components(register: Any) -> None:
    register(NumerixType())


@hookimpl
def register_config_prefixes(register: Any) -> None:
    register(expression_prefix(NumerixSettings().numerix_app_name))
