"""Core micro-benchmark (not a test): engine overhead of a 6-node no-op DAG, and building a 200-row
matrix from 200 targets x 10 text features (decoded to FP32 columns, as the serving adapter does).

    .venv/bin/python benchmarks/core_overhead.py [--n 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inferflow_core.api import (
    BuildContext,
    ColumnSpec,
    Component,
    DataType,
    InitialData,
    RegisterComponent,
    RequestInfo,
    RunContext,
    codecs,
    hookimpl,
)
from inferflow_core.components import builtin_plugin
from inferflow_core.components.feature_init import TypedValues
from inferflow_core.plugins import PluginHost
from inferflow_core.runtime import Runtime


class Noop(Component):
    async def run(self, ctx: RunContext) -> None:
        return None

    def outputs(self) -> list[ColumnSpec]:
        return [ColumnSpec(f"{self.name}_out", DataType.FP32)]


class NoopType:
    config_key = "noop_components"

    from pydantic import BaseModel

    class config_model(BaseModel):
        component: str

    def build(self, cfg, ctx: BuildContext) -> Component:  # type: ignore[no-untyped-def]
        return Noop(cfg.component, ctx.model_id)


class NoopPlugin:
    @hookimpl
    def register_components(self, register: RegisterComponent) -> None:
        register(NoopType())


def pct(samples: list[float]) -> str:
    arr = np.array(samples) * 1e6
    return f"p50 {np.percentile(arr, 50):7.1f} us   p99 {np.percentile(arr, 99):7.1f} us"


async def engine(n: int) -> None:
    host = PluginHost()
    host.register(builtin_plugin, name="core")
    host.register(NoopPlugin(), name="noop")
    rt = Runtime(host=host)
    dag = {"a": ["feature_initializer"], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": ["d"]}
    cfg = {
        "dag_execution_config": {"component_dependency": dag},
        "component_config": {"noop_components": [{"component": c} for c in "abcde"]},
        "response_config": {"features": ["id"]},
    }
    rt.apply_tree({rt.settings.config_map_prefix + "m": json.dumps(cfg)})
    initial = InitialData(rows=200, texts={"id": [str(i) for i in range(200)]})
    req = RequestInfo(api="pointwise")
    loop = asyncio.get_running_loop()
    samples = []
    for i in range(n + 200):
        t0 = time.perf_counter()
        await rt.execute("m", initial, req, deadline=loop.time() + 1)
        if i >= 200:
            samples.append(time.perf_counter() - t0)
    print(f"6-node no-op DAG (incl. feature_initializer, 200 rows):   {pct(samples)}")


def matrix_build(n: int) -> None:
    rng = np.random.default_rng(0)
    ids = [str(i) for i in range(200)]
    texts = {f"f{k}": [f"{x:.6g}" for x in rng.random(200)] for k in range(10)}
    samples = []
    for i in range(n + 200):
        t0 = time.perf_counter()
        typed = {}
        for name, col in texts.items():
            values, valid = codecs.parse_text_column(col, DataType.FP32)
            typed[name] = TypedValues(DataType.FP32, values, valid, np.array(col, dtype=object))
        initial = InitialData(rows=200, texts={"id": ids}, typed=typed)
        from inferflow_core.components.feature_init import write_initial
        from inferflow_core.matrix import ComponentMatrix

        m = ComponentMatrix(initial.rows)
        write_initial(m, initial.texts, initial.typed)
        if i >= 200:
            samples.append(time.perf_counter() - t0)
    print(f"matrix from 200 targets x 10 text FP32 features:          {pct(samples)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    args = ap.parse_args()
    asyncio.run(engine(args.n))
    matrix_build(args.n)


if __name__ == "__main__":
    main()
