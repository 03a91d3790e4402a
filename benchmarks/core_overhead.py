"""Core micro-benchmark (not a test), through ``Runtime.execute`` as a served request runs the DAG:

* the engine's overhead: a 6-node no-op DAG (feature initializer + 5 no-op components) over 200 rows;
* request inputs into the matrix: 200 targets x 10 text features decoded to FP32 columns (as the serving
  adapter does) and written by the feature initializer, timed through a 2-node DAG (initializer + one
  no-op) next to the same DAG with the ids alone; the difference is what the 10 features cost.

    .venv/bin/python benchmarks/core_overhead.py [--n 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
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
    Runtime,
    TypedValues,
    codecs,
    hookimpl,
)
from inferflow_core.testing import make_runtime


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


def p50_us(samples: list[float]) -> float:
    return float(np.percentile(np.array(samples) * 1e6, 50))


def noop_runtime(dag: dict[str, list[str]]) -> Runtime:
    """A Runtime holding model ``m``: the no-op components of ``dag`` (besides the initializer)."""
    rt = make_runtime(noop=NoopPlugin())
    nodes = sorted(set(dag) - {"feature_initializer"})
    cfg = {
        "dag_execution_config": {"component_dependency": dag},
        "component_config": {"noop_components": [{"component": c} for c in nodes]},
        "response_config": {"features": ["id"]},
    }
    rt.apply_tree({rt.settings.config_map_prefix + "m": json.dumps(cfg)})
    assert not rt.store.current.errors, rt.store.current.errors
    return rt


async def timed(rt: Runtime, make_initial: Callable[[], InitialData], n: int) -> list[float]:
    """Seconds per ``rt.execute`` of model ``m`` (``make_initial`` inside the clock), after 200 warm-ups."""
    req = RequestInfo(api="pointwise")
    loop = asyncio.get_running_loop()
    samples = []
    for i in range(n + 200):
        t0 = time.perf_counter()
        await rt.execute("m", make_initial(), req, deadline=loop.time() + 1)
        if i >= 200:
            samples.append(time.perf_counter() - t0)
    return samples


async def engine(n: int) -> None:
    rt = noop_runtime({"a": ["feature_initializer"], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": ["d"]})
    ids = [str(i) for i in range(200)]
    samples = await timed(rt, lambda: InitialData(rows=200, texts={"id": ids}), n)
    print(f"6-node no-op DAG (incl. feature_initializer, 200 rows):   {pct(samples)}")


async def matrix_build(n: int) -> None:
    rng = np.random.default_rng(0)
    ids = [str(i) for i in range(200)]
    texts = {f"f{k}": [f"{x:.6g}" for x in rng.random(200)] for k in range(10)}

    def with_features() -> InitialData:
        typed = {}
        for name, col in texts.items():
            values, valid = codecs.parse_text_column(col, DataType.FP32)
            typed[name] = TypedValues(DataType.FP32, values, valid, np.array(col, dtype=object))
        return InitialData(rows=200, texts={"id": ids}, typed=typed)

    rt = noop_runtime({"a": ["feature_initializer"]})
    bare = await timed(rt, lambda: InitialData(rows=200, texts={"id": ids}), n)
    full = await timed(rt, with_features, n)
    print(f"2-node no-op DAG, 200 ids only:                           {pct(bare)}")
    print(f"  + 200 targets x 10 text FP32 features into the matrix:  {pct(full)}")
    print(f"  the 10 features' share (p50 difference):                {p50_us(full) - p50_us(bare):7.1f} us")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    args = ap.parse_args()
    asyncio.run(engine(args.n))
    asyncio.run(matrix_build(args.n))


if __name__ == "__main__":
    main()
