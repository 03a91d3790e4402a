"""inferflow-rule-filter: an example third-party component plugin (see docs/writing-a-plugin.md)."""

from .component import RuleFilterComponent, RuleFilterConfig, RuleFilterType

__all__ = ["RuleFilterComponent", "RuleFilterConfig", "RuleFilterType"]
