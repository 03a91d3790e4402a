"""Entry point ``inferflow -> numerix``: registers the component type and the expression prefix."""

from __future__ import annotations

from inferflow_core.api import RegisterComponent, RegisterConfigPrefix, hookimpl

from .component import NumerixType
from .settings import NumerixSettings, expression_prefix


@hookimpl
def register_components(register: RegisterComponent) -> None:
    register(NumerixType())


@hookimpl
def register_config_prefixes(register: RegisterConfigPrefix) -> None:
    register(expression_prefix(NumerixSettings().numerix_app_name))
