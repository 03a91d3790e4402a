"""Issue 18's measurements: the S1 feature step through Feast next to the embedded Parquet store and a
remote ``inferflow-onfs serve``, and the S1 ranker step through Triton next to MLServer (and the embedded
ONNX model).

    .venv/bin/python benchmarks/feast_triton/run.py [--requests 500] [--only features|ranker]

Needs .venv, .venv-feast, .venv-triton and .venv-mlserver (``make test`` creates them). Every number comes
from a worker process started here (the servers are further processes), never from a timed test:

* features: the two S1 feature components of the example config (user: 1 x 32 FP32; catalog: 200 x
  (64 FP32 + price + FP32Vector[32])) over the full example data (10,000 users, 100,000 catalogs), cache
  off so every request reaches the store, both components concurrently as in the DAG, through
  ``Runtime.execute`` (the engine, not the gRPC front). Feast: the SQLite online store, materialized from
  the same Parquet files (``examples/feast``), 200 entities per get_online_features call.
* ranker: the S1 ranker (dense[96] + emb[32] -> prob) for 200 targets in one batch, the same numpy MLP
  behind Triton 2.51 (PyTriton, Python backend) and behind MLServer 1.7.1 (custom runtime), and the ONNX
  model in process.

Prints one table; ``--json`` writes the raw results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from inferflow_core.testing import pick_free_port

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
MAP = "inferflow/services/inferflow/model-config/config-map"
TARGETS = 200


# ------------------------------------------------------------------------------------------ workers
def _timed(run: Any, requests: int, warmup: int) -> dict[str, float]:
    import numpy as np

    async def go() -> list[float]:
        for i in range(warmup):
            await run(i)
        out = []
        for i in range(requests):
            started = time.perf_counter()
            await run(warmup + i)
            out.append((time.perf_counter() - started) * 1000)
        return out

    ms = np.array(asyncio.run(go()))
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "requests": requests,
    }


def feature_model(feast: bool) -> str:
    """The example model reduced to its two feature components (cache off)."""
    model = json.loads((ROOT / "inferflow_core" / "example" / "config" / MAP / "bench_ctr.json").read_text())
    cc = model["component_config"]
    cc["cache_enabled"] = False
    for key in ("predator_components", "numerix_components"):
        cc.pop(key, None)
    model["dag_execution_config"]["component_dependency"] = {
        "user_features": ["feature_initializer"],
        "catalog_features": ["feature_initializer"],
    }
    model["response_config"] = {"features": ["catalog_id"]}
    if feast:
        sys.path.insert(0, str(ROOT / "examples" / "feast"))
        from feast_example import to_feast

        model = to_feast(model)
    return json.dumps(model)


def worker_features(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from inferflow_core.api import InitialData, RequestInfo, Runtime

    rt = Runtime()
    rt.apply_tree({rt.settings.config_map_prefix + "f": feature_model(args.backend == "feast")})
    assert not rt.store.current.errors, rt.store.current.errors
    rng = np.random.default_rng(1)
    users = rng.integers(0, 10_000, 10_000).astype(str).tolist()
    catalogs = rng.integers(0, 100_000, (500, TARGETS)).astype(str).tolist()

    async def run(i: int) -> None:
        initial = InitialData(
            rows=TARGETS,
            texts={"user_id": [users[i % len(users)]] * TARGETS, "catalog_id": catalogs[i % len(catalogs)]},
        )
        ctx = await rt.execute("f", initial, RequestInfo(api="pointwise"))
        assert not ctx.failures, ctx.failures
        assert ctx.matrix.read("catalog:B:emb")[1].all()

    return _timed(run, args.requests, warmup=30)


def worker_ranker(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from inferflow_core.api import DataType, InitialData, RequestInfo, Runtime, TypedValues

    model = json.loads((ROOT / "inferflow_core" / "example" / "config" / MAP / "bench_ctr.json").read_text())
    [ranker] = model["component_config"]["predator_components"]
    ranker["model_end_point"] = args.endpoint
    ranker["deadline"] = 2000
    config = {
        "dag_execution_config": {"component_dependency": {"ranker": ["feature_initializer"]}},
        "component_config": {"predator_components": [ranker]},
        "response_config": {"features": ["catalog_id"]},
    }
    rt = Runtime()
    rt.apply_tree({rt.settings.config_map_prefix + "r": json.dumps(config)})
    assert not rt.store.current.errors, rt.store.current.errors
    rng = np.random.default_rng(2)
    ok = np.ones(TARGETS, dtype=bool)
    dense = ranker["inputs"][0]["features"]
    typed = {f: TypedValues(DataType.FP32, rng.normal(size=TARGETS).astype(np.float32), ok) for f in dense}
    typed["catalog:B:emb"] = TypedValues(
        DataType.FP32_VECTOR, rng.normal(size=(TARGETS, 32)).astype(np.float32), ok
    )
    ids = [str(i) for i in range(TARGETS)]

    async def run(i: int) -> None:
        initial = InitialData(rows=TARGETS, texts={"catalog_id": ids}, typed=typed)
        ctx = await rt.execute("r", initial, RequestInfo(api="pointwise"))
        assert not ctx.failures, ctx.failures

    return _timed(run, args.requests, warmup=30)


# ------------------------------------------------------------------------------------------ driver
def wait_http(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    import urllib.request

    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        try:
            if urllib.request.urlopen(url, timeout=1).status == 200:
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} not ready")


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    import socket

    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"port {port} not listening")


def run_worker(python: str, kind: str, requests: int, env: dict[str, str], **opts: str) -> dict[str, Any]:
    cmd = [python, __file__, "--worker", kind, "--requests", str(requests)]
    for key, value in opts.items():
        cmd += [f"--{key}", value]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, timeout=1800)
    if out.returncode:
        raise RuntimeError(f"{kind} {opts}: {out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def features(requests: int, tmp: Path, feast_repo: str | None) -> dict[str, dict[str, Any]]:
    sys.path.insert(0, str(ROOT))
    from inferflow_core.testing import example

    data = example.ensure_data()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("EXTERNAL_SERVICE_ONFS", "INFERFLOW_"))}
    base["APP_LOG_LEVEL"] = "WARNING"
    main_py, feast_py = str(ROOT / ".venv/bin/python"), str(ROOT / ".venv-feast/bin/python")
    out: dict[str, dict[str, Any]] = {}
    env = {**base, "INFERFLOW_ONFS_LOCAL_DIR": str(data / "features")}
    out["embedded Parquet store"] = run_worker(main_py, "features", requests, env, backend="embedded")
    port = pick_free_port()
    server = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/inferflow-onfs"),
            "serve",
            "--data",
            str(data / "features"),
            "--port",
            str(port),
        ],
        env=base,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_port(port, server)
        env = {
            **base,
            "EXTERNAL_SERVICE_ONFS_FS_HOST": "127.0.0.1",
            "EXTERNAL_SERVICE_ONFS_FS_PORT": str(port),
            "EXTERNAL_SERVICE_ONFS_FS_GRPC_PLAIN_TEXT": "true",
            "EXTERNAL_SERVICE_ONFS_FS_BATCH_SIZE": "200",
            "EXTERNAL_SERVICE_ONFS_FS_DEAD_LINE": "2000",
        }
        out["remote inferflow-onfs serve"] = run_worker(main_py, "features", requests, env, backend="remote")
    finally:
        stop(server)
    repo = Path(feast_repo) if feast_repo else tmp / "feast-repo"
    if not (repo / "feature_store.yaml").exists():  # full S1 data: ~2 min and ~4.5 GB RSS to materialize
        started = time.perf_counter()
        build = (
            "import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
            "from feast_example import build_example_repo; "
            "build_example_repo(Path(sys.argv[2]), Path(sys.argv[3]))"
        )
        subprocess.run(
            [feast_py, "-c", build, str(ROOT / "examples" / "feast"), str(data / "features"), str(repo)],
            env=base,
            check=True,
            capture_output=True,
        )
        took = time.perf_counter() - started
        print(f"feast repo {repo} built and materialized in {took:.0f}s", file=sys.stderr)
    env = {
        **base,
        "INFERFLOW_FEAST_REPO": str(repo),
        "INFERFLOW_FEAST_BATCH_SIZE": "200",
        "INFERFLOW_FEAST_DEADLINE_MS": "5000",
    }
    out["Feast SQLite online store"] = run_worker(feast_py, "features", requests, env, backend="feast")
    return out


def ranker(requests: int, tmp: Path) -> dict[str, dict[str, Any]]:
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(ROOT / "inferflow_core" / "example" / "models" / "s1_mlp" / "1" / "model.onnx"))
    weights = tmp / "weights.npz"
    np.savez(weights, **{t.name: numpy_helper.to_array(t) for t in model.graph.initializer})
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("EXTERNAL_SERVICE_PREDATOR", "INFERFLOW_"))
    }
    base.update(APP_LOG_LEVEL="WARNING", EXTERNAL_SERVICE_PREDATOR_GRPC_PLAIN_TEXT="true")
    main_py = str(ROOT / ".venv/bin/python")
    out: dict[str, dict[str, Any]] = {}
    grpc_port, http_port, metrics_port = pick_free_port(), pick_free_port(), pick_free_port()
    triton = subprocess.Popen(
        [
            str(ROOT / ".venv-triton/bin/python"),
            str(ROOT / "plugins/inferflow_predator/tests/triton_server.py"),
            str(weights),
            str(grpc_port),
            str(http_port),
            str(metrics_port),
        ],
        stdout=(tmp / "triton.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        for name in ("s1_mlp", "s1_mlp_slow"):  # the server is ready only once every bound model is
            wait_http(f"http://127.0.0.1:{http_port}/v2/models/{name}/ready", triton)
        out["Triton 2.51 (PyTriton, numpy)"] = run_worker(
            main_py, "ranker", requests, base, endpoint=f"127.0.0.1:{grpc_port}"
        )
    finally:
        stop(triton)
        time.sleep(1)
    mdir = tmp / "mlserver"
    (mdir / "s1_mlp").mkdir(parents=True)
    (mdir / "s1_mlp" / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "s1_mlp",
                "implementation": "mlserver_mlp.NumpyMLP",
                "parameters": {"uri": str(weights), "version": "1"},
            }
        )
    )
    (mdir / "s1_mlp" / "mlserver_mlp.py").write_text((HERE / "mlserver_mlp.py").read_text())
    grpc_port, http_port, metrics_port = pick_free_port(), pick_free_port(), pick_free_port()
    (mdir / "settings.json").write_text(
        json.dumps(
            {
                "host": "127.0.0.1",
                "http_port": http_port,
                "grpc_port": grpc_port,
                "metrics_port": metrics_port,
                "parallel_workers": 0,
            }
        )
    )
    mlserver = subprocess.Popen(
        [str(ROOT / ".venv-mlserver/bin/mlserver"), "start", str(mdir)],
        cwd=mdir,
        stdout=(tmp / "mlserver.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_http(f"http://127.0.0.1:{http_port}/v2/models/s1_mlp/ready", mlserver)
        out["MLServer 1.7.1 (custom runtime, numpy)"] = run_worker(
            main_py, "ranker", requests, base, endpoint=f"127.0.0.1:{grpc_port}"
        )
    finally:
        stop(mlserver)
    repo = f"onnx://{ROOT / 'inferflow_core' / 'example' / 'models'}"
    out["embedded ONNX Runtime"] = run_worker(main_py, "ranker", requests, base, endpoint=repo)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--only", choices=["features", "ranker"])
    parser.add_argument("--json", help="write the raw results here")
    parser.add_argument("--feast-repo", help="reuse (or build once into) this Feast repo of the full S1 data")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = worker_features(args) if args.worker == "features" else worker_ranker(args)
        print(json.dumps(result))
        return 0
    results: dict[str, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="inferflow-bench18-") as tmp:
        if args.only in (None, "features"):
            results["S1 feature step (200 targets, 2 components)"] = features(
                args.requests, Path(tmp), args.feast_repo
            )
        if args.only in (None, "ranker"):
            results["S1 ranker step (200 targets, 1 batch)"] = ranker(args.requests, Path(tmp))
    for step, rows in results.items():
        print(f"\n{step}, {args.requests} sequential requests")
        print(f"  {'backend':<42} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
        for name, r in rows.items():
            print(f"  {name:<42} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['mean_ms']:8.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
