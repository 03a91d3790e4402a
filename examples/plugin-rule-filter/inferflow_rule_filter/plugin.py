"""Entry point ``rule_filter`` (group ``inferflow``): registers the ``rule_filter_components`` section."""

from __future__ import annotations

from inferflow_core.api import RegisterComponent, hookimpl

from .component import RuleFilterType


@hookimpl
def register_components(register: RegisterComponent) -> None:
    register(RuleFilterType())
