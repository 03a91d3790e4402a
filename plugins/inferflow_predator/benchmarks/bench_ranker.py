"""S1 ranker step (benchmarks/README.md): 200 rows, inputs dense [96] + emb [32] FP32, MLP 128-64-1.

    /work/venv/bin/python plugins/inferflow_predator/benchmarks/bench_ranker.py [--iters 2000] [--no-remote]

* embedded: endpoint ``onnx://inferflow_core/example/models`` (the example MLP, ONNX Runtime,
  1 intra-op thread);
  the 64 catalog scalars are one matrix column block, as the OnFS component writes them
  (``embedded_columns``: the same with 64 separately written columns);
* remote: MLServer 1.7.1 on loopback (its own process) serving an sklearn ``MLPRegressor`` with hidden
  layers (128, 64) and one output over the same 128 inputs (MLServer cannot run ONNX). The remote model has a
  single input tensor, so the step sends one [200, 128] tensor assembled from the same columns.

Reports p50/p99 of the whole component run, of the model call alone (ONNX ``session.run`` in its thread;
the ``ModelInfer`` RPC for remote) and the share of the step spent outside the model call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from inferflow_predator import PredatorSettings, PredatorType

from inferflow_core.api import BuildContext, DataType, Metrics, ModelConfig
from inferflow_core.testing import make_context, pick_free_port

ROOT = Path(__file__).resolve().parents[3]
REPO = ROOT / "inferflow_core" / "example" / "models"
MLSERVER = os.environ.get("INFERFLOW_MLSERVER_BIN", "/work/venv-mlserver/bin/mlserver")
ROWS = 200
DENSE = ["user_emb"] + [f"c{i}" for i in range(64)]

TRAIN = """
import sys, joblib, numpy as np
from sklearn.neural_network import MLPRegressor
rng = np.random.default_rng(0)
X = rng.normal(size=(256, 128)).astype(np.float32); y = rng.normal(size=256)
m = MLPRegressor(hidden_layer_sizes=(128, 64), max_iter=5).fit(X, y)
joblib.dump(m, sys.argv[1] + "/model.joblib")
"""


def component_config(endpoint: str, model: str, single_input: bool) -> dict[str, Any]:
    if single_input:
        inputs = [{"name": "x", "features": [*DENSE, "cat_emb"], "shape": [128], "data_type": "FP32"}]
        outputs = [
            {"name": "predict", "model_scores": ["pctr"], "model_scores_dims": [[1]], "data_type": "FP32"}
        ]
    else:
        inputs = [
            {"name": "dense", "features": DENSE, "shape": [96], "data_type": "FP32"},
            {"name": "emb", "features": ["cat_emb"], "shape": [32], "data_type": "FP32"},
        ]
        outputs = [
            {"name": "prob", "model_scores": ["pctr"], "model_scores_dims": [[1]], "data_type": "FP32"}
        ]
    return {
        "component": "ranker",
        "component_id": "catalog_id",
        "model_name": model,
        "model_end_point": endpoint,
        "deadline": 1000,
        "batch_size": ROWS,
        "inputs": inputs,
        "outputs": outputs,
    }


def build(cfg: dict[str, Any], blocks: bool = True) -> tuple[Any, Any]:
    """The component and a 200-row S1 matrix. ``blocks``: the 64 catalog scalars are one column block
    (as the OnFS component writes them); otherwise 64 separate columns."""
    ptype = PredatorType(PredatorSettings(plain_text=True))
    model = ModelConfig.model_validate({"dag_execution_config": {"component_dependency": {"ranker": []}}})
    comp = ptype.build(ptype.config_model.model_validate(cfg), BuildContext("bench", model, {}, Metrics()))  # type: ignore[arg-type]
    rng = np.random.default_rng(42)
    ctx = make_context(comp, rows=ROWS)
    ctx.matrix.declare("user_emb", DataType.FP32_VECTOR)
    ctx.matrix.set_column("user_emb", np.repeat(rng.normal(size=(1, 32)).astype(np.float32), ROWS, axis=0))
    names = [f"c{i}" for i in range(64)]
    for name in names:
        ctx.matrix.declare(name, DataType.FP32)
    if blocks:
        ctx.matrix.set_block(names, rng.normal(size=(ROWS, 64)).astype(np.float32))
    else:
        for name in names:
            ctx.matrix.set_column(name, rng.normal(size=ROWS).astype(np.float32))
    ctx.matrix.declare("cat_emb", DataType.FP32_VECTOR)
    ctx.matrix.set_column("cat_emb", rng.normal(size=(ROWS, 32)).astype(np.float32))
    return comp, ctx


class Timed:
    """Wraps a callable and records how long each call took (the 'model call')."""

    def __init__(self, fn: Any) -> None:
        self.fn, self.times = fn, []  # type: ignore[var-annotated]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.times.append(time.perf_counter() - t0)


class TimedAsync(Timed):
    async def __call__(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        t0 = time.perf_counter()
        try:
            return await self.fn(*args, **kwargs)
        finally:
            self.times.append(time.perf_counter() - t0)


class _SessionProxy:
    def __init__(self, sess: Any, timer: Timed) -> None:
        self.sess, self.run = sess, timer


async def measure(comp: Any, ctx: Any, iters: int, warmup: int, instrument: Any) -> dict[str, float]:
    for _ in range(warmup):
        await comp.run(ctx)
    assert not ctx.failures, ctx.failures
    timer = instrument()
    steps = []
    for _ in range(iters):
        t0 = time.perf_counter()
        await comp.run(ctx)
        steps.append(time.perf_counter() - t0)
    assert not ctx.failures
    assert ctx.matrix.read("pctr")[1].all()
    step, model = np.array(steps) * 1e3, np.array(timer.times) * 1e3
    outside = (step - model) / step
    return {
        "step_p50_ms": float(np.percentile(step, 50)),
        "step_p99_ms": float(np.percentile(step, 99)),
        "model_p50_ms": float(np.percentile(model, 50)),
        "model_p99_ms": float(np.percentile(model, 99)),
        "outside_share_p50": float(np.percentile(outside, 50)),
        "outside_share_of_p50s": float(1 - np.percentile(model, 50) / np.percentile(step, 50)),
    }


async def bench_embedded(iters: int, blocks: bool = True) -> dict[str, float]:
    comp, ctx = build(component_config(f"onnx://{REPO}", "s1_mlp", single_input=False), blocks)
    backend = comp.pool.get(f"onnx://{REPO}")
    await backend.session("s1_mlp", "1")

    def instrument() -> Timed:
        sess = backend._sessions[("s1_mlp", "1")]
        timer = Timed(sess.run)
        backend._sessions[("s1_mlp", "1")] = _SessionProxy(sess, timer)
        return timer

    return await measure(comp, ctx, iters, 200, instrument)


def start_mlserver(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    model_dir = workdir / "s1_mlp"
    model_dir.mkdir()
    subprocess.run(
        [str(Path(MLSERVER).with_name("python")), "-c", TRAIN, str(model_dir)], check=True, timeout=300
    )
    settings = {
        "name": "s1_mlp",
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "1"},
    }
    (model_dir / "model-settings.json").write_text(json.dumps(settings))
    grpc_port, http_port = pick_free_port(), pick_free_port()
    server = {
        "host": "127.0.0.1",
        "http_port": http_port,
        "grpc_port": grpc_port,
        "metrics_port": pick_free_port(),
        "parallel_workers": 0,
    }
    (workdir / "settings.json").write_text(json.dumps(server))
    log = open(workdir / "mlserver.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [MLSERVER, "start", str(workdir)], stdout=log, stderr=subprocess.STDOUT, cwd=workdir
    )
    end = time.monotonic() + 60
    while time.monotonic() < end and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/v2/models/s1_mlp/ready", timeout=1):
                return proc, grpc_port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("MLServer did not become ready; see " + str(workdir / "mlserver.log"))


async def bench_remote(iters: int, endpoint: str) -> dict[str, float]:
    comp, ctx = build(component_config(endpoint, "s1_mlp", single_input=True))
    client = comp.pool.get(endpoint)

    def instrument() -> Timed:
        timer = TimedAsync(client.stub.ModelInfer)
        client.stub.ModelInfer = timer
        return timer

    try:
        return await measure(comp, ctx, iters, 100, instrument)
    finally:
        await comp.pool.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description="S1 ranker step: embedded ONNX vs KServe v2 on loopback")
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--remote-iters", type=int, default=1000)
    parser.add_argument("--no-remote", action="store_true")
    args = parser.parse_args()
    results = {
        "embedded": asyncio.run(bench_embedded(args.iters)),
        "embedded_columns": asyncio.run(bench_embedded(args.iters, blocks=False)),
    }
    if not args.no_remote:
        with tempfile.TemporaryDirectory() as tmp:
            proc, port = start_mlserver(Path(tmp))
            try:
                results["remote_mlserver"] = asyncio.run(bench_remote(args.remote_iters, f"127.0.0.1:{port}"))
            finally:
                proc.terminate()
                proc.wait(10)
    print(json.dumps(results, indent=2))
    print(f"{'mode':<16}{'step p50':>10}{'step p99':>10}{'model p50':>11}{'model p99':>11}{'outside':>9}")
    for mode, r in results.items():
        print(
            f"{mode:<16}{r['step_p50_ms']:>9.3f} {r['step_p99_ms']:>9.3f} {r['model_p50_ms']:>10.3f} "
            f"{r['model_p99_ms']:>10.3f} {r['outside_share_p50']:>8.1%}"
        )


if __name__ == "__main__":
    main()
