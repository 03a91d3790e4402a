"""A tiny component plugin used by the core's tests (registered directly, not through entry points)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from inferflow_core.api import (
    BuildContext,
    ColumnSpec,
    Component,
    ConfigError,
    DataType,
    DataTypeError,
    RunContext,
    codecs,
    hookimpl,
)
from inferflow_core.runtime import Runtime
from inferflow_core.testing import make_runtime


class OutputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    data_type: str = "DataTypeFP32"


class ProbeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    component: str
    outputs: list[OutputSpec] = []
    sleep_ms: float = 0
    fail: bool = False
    fail_after_write: bool = False  # write the outputs, then raise
    text: str | None = None  # STRING outputs: this text in every row (valid), instead of ``value``
    value: float = 1.0
    timeout_ms: float | None = None
    copy_from: str | None = None  # outputs = value * this input column (read as FP32)
    slate_outputs: list[OutputSpec] = []  # slate columns: value * slate size


TRACE: list[tuple[str, str, float]] = []  # (component, "start"/"end", perf_counter)
CONCURRENT: list[int] = []  # ctx.concurrent_requests() as each probe started


class ProbeComponent(Component):
    kind = "probe"

    def __init__(self, cfg: ProbeConfig, model_id: str) -> None:
        super().__init__(cfg.component, model_id)
        self.cfg = cfg
        self.specs = []
        for i, out in enumerate(cfg.outputs):
            try:
                dtype = codecs.parse_dtype(out.data_type)
            except DataTypeError as exc:
                raise ConfigError(model_id, [(f"outputs[{i}].data_type", str(exc))]) from None
            self.specs.append(ColumnSpec(out.name, dtype))
        for out in cfg.slate_outputs:
            self.specs.append(ColumnSpec(out.name, codecs.parse_dtype(out.data_type), slate=True))
        self.timeout = cfg.timeout_ms / 1000 if cfg.timeout_ms else None

    def outputs(self) -> list[ColumnSpec]:
        return self.specs

    def required_columns(self) -> list[ColumnSpec]:
        return [ColumnSpec(self.cfg.copy_from, DataType.FP32)] if self.cfg.copy_from else []

    async def run(self, ctx: RunContext) -> None:
        TRACE.append((self.name, "start", time.perf_counter()))
        CONCURRENT.append(ctx.concurrent_requests())
        try:
            if self.cfg.sleep_ms:
                await asyncio.sleep(self.cfg.sleep_ms / 1000)
            if self.cfg.fail:
                raise RuntimeError(f"{self.name} was told to fail")
            for spec in self.specs:
                if spec.slate:
                    if ctx.slate_matrix is not None:
                        sizes = [len(t) for t in ctx.slate_matrix.target_indices]
                        ctx.slate_matrix.set_column(spec.name, np.asarray(sizes, np.float32) * self.cfg.value)
                    continue
                if self.cfg.copy_from:
                    values, valid = ctx.matrix.read(self.cfg.copy_from, DataType.FP32)
                    ctx.matrix.set_column(spec.name, values * np.float32(self.cfg.value), valid)
                    continue
                if self.cfg.text is not None and spec.dtype is DataType.STRING:
                    ctx.matrix.set_column(spec.name, np.full(ctx.matrix.rows, self.cfg.text, dtype=object))
                    continue
                ctx.matrix.set_column(spec.name, np.full(ctx.matrix.rows, self.cfg.value, dtype=np.float32))
            if self.cfg.fail_after_write:
                raise RuntimeError(f"{self.name} was told to fail after writing")
        finally:
            TRACE.append((self.name, "end", time.perf_counter()))


class ProbeType:
    config_key = "probe_components"
    config_model = ProbeConfig

    def build(self, config: ProbeConfig, ctx: BuildContext) -> Component:
        return ProbeComponent(config, ctx.model_id)


class ProbePlugin:
    @hookimpl
    def register_components(self, register: Any) -> None:
        register(ProbeType())


def probe_runtime() -> Runtime:
    return make_runtime(probe=ProbePlugin())


def model_json(
    dag: dict[str, list[str]], probes: list[dict[str, Any]], features: list[str] | None = None
) -> str:
    return json.dumps(
        {
            "dag_execution_config": {"component_dependency": dag},
            "component_config": {"probe_components": probes},
            "response_config": {"features": features or ["id"]},
        }
    )


def dtype(name: str) -> DataType:
    return codecs.parse_dtype(name)
