"""S1 final step: "pctr price 2 + log /" over 200 rows, embedded and remote (benchmarks/README.md).

Times ``NumerixComponent.run`` on a matrix whose ``pctr`` and ``price`` are FP32 columns (as the ranker
and the feature store leave them): reading both inputs, evaluating and writing ``final_score`` into the
matrix. Next to it, in the same run: the bare numpy expression (the floor of the embedded mode) and a
direct gRPC call with a prebuilt request (the floor of the remote mode). Usage::

    python plugins/inferflow_numerix/benchmarks/bench_final.py [--iterations 5000] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import numpy as np
from inferflow_numerix.component import NumerixType
from inferflow_numerix.config import NumerixConfig
from inferflow_numerix.settings import NumerixSettings
from inferflow_numerix.wire import encode_request

from inferflow_core.api import BuildContext, DataType, Metrics
from inferflow_core.testing import make_context, pick_free_port, write_config_dir

ROWS = 200
EXPRESSION = "pctr price 2 + log /"
CFG = {
    "component": "final",
    "component_id": "catalog_id",
    "score_col": "final_score",
    "data_type": "DataTypeFP32",
    "score_mapping": {"pctr@DataTypeFP32": "pctr", "price@DataTypeFP32": "price"},
    "compute_id": "s1",
}
KEY = "numerix/expression-config/s1"


def _stats(ns: list[int]) -> dict[str, float]:
    arr = np.asarray(ns, dtype=np.float64) / 1000.0
    return {
        "p50_us": float(np.percentile(arr, 50)),
        "p99_us": float(np.percentile(arr, 99)),
        "max_us": float(arr.max()),
    }


async def _time(fn: Callable[[], Awaitable[object]], iterations: int, warmup: int) -> dict[str, float]:
    for _ in range(warmup):
        await fn()
    out = []
    for _ in range(iterations):
        t0 = time.perf_counter_ns()
        await fn()
        out.append(time.perf_counter_ns() - t0)
    return _stats(out)


def _context(settings: NumerixSettings):  # type: ignore[no-untyped-def]
    expressions = {KEY: json.dumps({"expression": EXPRESSION})}  # checked at build, read per request
    build_ctx = BuildContext(model_id="bench", model=None, config=expressions, metrics=Metrics())  # type: ignore[arg-type]
    comp = NumerixType(settings).build(NumerixConfig.model_validate(CFG), build_ctx)
    rng = np.random.default_rng(1)
    ctx = make_context(
        comp,
        rows=ROWS,
        texts={"catalog_id": [str(i) for i in range(ROWS)]},
        config=expressions,
    )
    ctx.matrix.declare("pctr", DataType.FP32)
    ctx.matrix.set_column("pctr", rng.random(ROWS, dtype=np.float32))
    ctx.matrix.set_column("price", (1 + 100 * rng.random(ROWS)).astype(np.float32))
    return comp, ctx


async def main(iterations: int, warmup: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    comp, ctx = _context(NumerixSettings(host=""))
    results["embedded component.run"] = await _time(lambda: comp.run(ctx), iterations, warmup)
    assert not ctx.failures
    assert ctx.matrix.read("final_score")[1].all()
    pctr, price = ctx.matrix.read("pctr")[0], ctx.matrix.read("price")[0]

    async def bare() -> object:
        return pctr / np.log(price + np.float32(2))

    results["embedded floor (bare numpy)"] = await _time(bare, iterations, warmup)

    with tempfile.TemporaryDirectory() as tmp:
        write_config_dir(tmp, {KEY: json.dumps({"expression": EXPRESSION})})
        port = pick_free_port()
        exe = Path(sys.executable).parent / "inferflow-numerix"
        proc = subprocess.Popen(
            [str(exe), "serve", "--config-dir", tmp, "--port", str(port)], stdout=subprocess.PIPE
        )
        try:
            assert proc.stdout is not None
            assert b"serving" in proc.stdout.readline()
            remote_iters = max(iterations // 5, 200)
            for batch in (100, 200):
                rcomp, rctx = _context(
                    NumerixSettings(host="127.0.0.1", port=port, plaintext=True, batch_size=batch)
                )
                rctx.matrix.set_column("pctr", pctr)
                rctx.matrix.set_column("price", price)
                results[f"remote component.run (batch {batch})"] = await _time(
                    lambda rcomp=rcomp, rctx=rctx: rcomp.run(rctx), remote_iters, warmup
                )
                assert not rctx.failures, rctx.failures
                np.testing.assert_array_equal(
                    rctx.matrix.read("final_score")[0], ctx.matrix.read("final_score")[0]
                )
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                call = channel.unary_unary("/numerix.Numerix/Compute")
                req = encode_request(
                    "s1",
                    ["catalog_id", "pctr", "price"],
                    [str(i) for i in range(ROWS)],
                    [pctr, price],
                    DataType.FP32,
                ).SerializeToString()
                results["remote floor (direct call, prebuilt request)"] = await _time(
                    lambda: call(req, timeout=5), remote_iters, warmup
                )
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    res = asyncio.run(main(args.iterations, args.warmup))
    print(f"S1 final step {EXPRESSION!r} over {ROWS} rows")
    for name, st in res.items():
        print(
            f"  {name:48s} p50 {st['p50_us']:9.1f} us  p99 {st['p99_us']:9.1f} us  max {st['max_us']:9.1f} us"
        )
    emb, floor = res["embedded component.run"], res["embedded floor (bare numpy)"]
    print(f"  embedded overhead ratio (p50 / bare numpy p50): {emb['p50_us'] / floor['p50_us']:.2f}")
    for batch in (100, 200):
        r = res[f"remote component.run (batch {batch})"]["p50_us"]
        d = res["remote floor (direct call, prebuilt request)"]["p50_us"]
        print(f"  remote overhead ratio batch {batch} (p50 / direct p50): {r / d:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
