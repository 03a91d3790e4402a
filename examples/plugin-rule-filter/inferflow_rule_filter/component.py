"""``rule_filter_components``: mark each target kept or dropped by a rule over its columns.

Config entry (one per component)::

    {"component": "price_filter",
     "rules": [{"column": "catalog:A:price", "op": "<=", "value": 500}],
     "keep_column": "keep",                    # BOOL output: true = the target passes every rule
     "score_column": "final_score",            # optional: a score to filter ...
     "output_column": "filtered_score",        # ... into this FP32 column, missing for dropped targets
     "keep_missing": false}                    # a target whose rule input is missing is dropped

Why a new output column rather than erasing ``score_column`` in place: every column has exactly one
writer (the engine rejects two components declaring the same output), so a filter publishes its
verdict in its own columns and the response config picks ``filtered_score`` instead of ``final_score``.
Everything is computed on whole columns with numpy, never per target.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from inferflow_core.api import (
    BuildContext,
    ColumnSpec,
    Component,
    ConfigError,
    DataType,
    RunContext,
)

Op = Literal["<", "<=", ">", ">=", "==", "!="]
OPS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    column: str = Field(min_length=1)
    op: Op
    value: float


class RuleFilterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    component: str = Field(min_length=1)
    rules: list[Rule] = Field(min_length=1)
    keep_column: str = "keep"
    score_column: str | None = None
    output_column: str | None = None
    keep_missing: bool = False


class RuleFilterComponent(Component):
    """Writes ``keep_column`` (BOOL) and, if configured, ``output_column`` = score where kept."""

    kind = "rule_filter"

    def __init__(self, cfg: RuleFilterConfig, model_id: str) -> None:
        super().__init__(cfg.component, model_id)
        self.cfg = cfg

    def outputs(self) -> Sequence[ColumnSpec]:
        specs = [ColumnSpec(self.cfg.keep_column, DataType.BOOL)]
        if self.cfg.output_column:
            specs.append(ColumnSpec(self.cfg.output_column, DataType.FP32))
        return specs

    def required_columns(self) -> Sequence[ColumnSpec]:
        specs = [ColumnSpec(rule.column, DataType.FP32) for rule in self.cfg.rules]
        if self.cfg.score_column:
            specs.append(ColumnSpec(self.cfg.score_column, DataType.FP32))
        return specs

    def keep_mask(self, ctx: RunContext) -> np.ndarray:
        keep = np.ones(ctx.matrix.rows, dtype=bool)
        for rule in self.cfg.rules:
            values, valid = ctx.matrix.read(rule.column, DataType.FP32)
            passed = OPS[rule.op](values, rule.value)
            keep &= np.where(valid, passed, self.cfg.keep_missing)
        return keep

    async def run(self, ctx: RunContext) -> None:
        keep = self.keep_mask(ctx)
        ctx.matrix.set_column(self.cfg.keep_column, keep)
        if self.cfg.score_column and self.cfg.output_column:
            scores, valid = ctx.matrix.read(self.cfg.score_column, DataType.FP32)
            ctx.matrix.set_column(self.cfg.output_column, scores, valid & keep)


class RuleFilterType:
    """The component type: one per process, builds a component per config entry."""

    config_key = "rule_filter_components"
    config_model = RuleFilterConfig

    def build(self, cfg: RuleFilterConfig, ctx: BuildContext) -> Component:
        if bool(cfg.score_column) != bool(cfg.output_column):
            raise ConfigError(
                ctx.model_id,
                [("output_column", f"component {cfg.component}: score_column and output_column go together")],
            )
        if cfg.output_column and cfg.output_column == cfg.score_column:
            raise ConfigError(
                ctx.model_id,
                [("output_column", f"component {cfg.component}: must differ from score_column (one writer)")],
            )
        return RuleFilterComponent(cfg, ctx.model_id)
