"""Scenario S2: a second pointwise model with its own features, for the paths S1 does not take.

S1 (``s1/run.py``) has FP32 features, one-column keys, one model call and numeric response columns. S2 has:

* features of four types from the embedded store: 8 INT32 and 8 FP64 scalars, 2 STRING and one FP32 vector
  per product, 16 FP32 per user, and 4 FP32 per (user, product) pair: a two-column key;
* a ranker fed 32 + 16 values per row (INT32 and FP64 features cast to FP32) with two scores, called with
  a configured ``batch_size`` (default 25: eight calls for 200 targets);
* a Numerix expression over FP32 scores and an FP64 feature;
* a response with a text feature and an INT32 feature besides the scores.

Reported: the request in process (``InProcessService``: no gRPC) with each node's time, and the same
requests served by ``inferflow serve`` (1 worker): p50 at concurrency 1 and req/s at 16, next to a gRPC echo
server answering the same response bytes (the floor of the serving part).

    /work/venv/bin/python benchmarks/second_scenario.py [--batch 25] [--hidden 0] [--requests 1500]
        [--no-served] [--json]

Data and model are generated into a temporary directory from a seed (the model needs the ``onnx``
package of the test extras).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from serving_overhead import PATH, _echo_server, run_load  # noqa: E402

from inferflow_core.testing import example, pick_free_port, write_config_dir  # noqa: E402

PRODUCTS, USERS, PAIRS = 5000, 1000, 50000
MODEL_KEY = "inferflow/services/inferflow/model-config/config-map/s2"
EXPRESSION_KEY = "numerix/expression-config/7"


def make_data(root: Path, hidden: int, seed: int = 7) -> None:
    """Feature tables (Parquet, the embedded store's layout) and the ONNX model under ``root``."""
    import onnx
    import pyarrow as pa
    import pyarrow.parquet as pq
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    feats = root / "features"
    feats.mkdir(parents=True, exist_ok=True)
    cols: dict[str, Any] = {"product_id": pa.array([f"p{i}" for i in range(PRODUCTS)])}
    for j in range(8):
        cols[f"n:i{j}"] = pa.array(rng.integers(0, 1000, PRODUCTS).astype(np.int32))
    for j in range(8):
        cols[f"d:f{j}"] = pa.array(rng.normal(size=PRODUCTS))
    cols["s:brand"] = pa.array([f"brand-{i % 97}" for i in range(PRODUCTS)])
    cols["s:cat"] = pa.array([f"cat/{i % 13}/x" for i in range(PRODUCTS)])
    emb = rng.normal(size=(PRODUCTS, 16)).astype(np.float32)
    cols["v:emb"] = pa.array(list(emb), type=pa.list_(pa.float32()))
    pq.write_table(pa.table(cols), feats / "product.parquet")
    users: dict[str, Any] = {"user_id": pa.array([f"u{i}" for i in range(USERS)])}
    for j in range(16):
        users[f"x:x{j}"] = pa.array(rng.normal(size=USERS).astype(np.float32))
    pq.write_table(pa.table(users), feats / "user.parquet")
    pairs: dict[str, Any] = {
        "user_id": pa.array([f"u{i % USERS}" for i in range(PAIRS)]),
        "product_id": pa.array([f"p{(i * 7919) % PRODUCTS}" for i in range(PAIRS)]),
    }
    for j in range(4):
        pairs[f"a:w{j}"] = pa.array(rng.normal(size=PAIRS).astype(np.float32))
    pq.write_table(pa.table(pairs), feats / "user_product.parquet")

    def weights(name: str, shape: tuple[int, int]) -> Any:
        return numpy_helper.from_array((rng.normal(size=shape) * 0.05).astype(np.float32), name)

    nodes = [helper.make_node("Concat", ["a", "b"], ["ab"], axis=1)]
    if hidden:
        inits = [weights("w1", (48, hidden)), weights("w", (hidden, 2))]
        nodes += [
            helper.make_node("MatMul", ["ab", "w1"], ["h0"]),
            helper.make_node("Relu", ["h0"], ["h"]),
            helper.make_node("MatMul", ["h", "w"], ["z"]),
        ]
    else:
        inits = [weights("w", (48, 2))]
        nodes.append(helper.make_node("MatMul", ["ab", "w"], ["z"]))
    nodes.append(helper.make_node("Sigmoid", ["z"], ["score"]))
    graph = helper.make_graph(
        nodes,
        "s2",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 32]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 16]),
        ],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N", 2])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    target = root / "models" / "s2_mlp" / "1"
    target.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(target / "model.onnx"))


def _names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{j}" for j in range(n)]


def _group(label: str, dtype: str, features: list[str]) -> dict:
    return {"label": label, "data_type": dtype, "features": features}


def _feature(name: str, keys: list[str], label: str, groups: list[dict]) -> dict:
    return {
        "component": name,
        "component_id": "_".join(keys),
        "fs_keys": [{"schema": k, "col": k} for k in keys],
        "fs_request": {"label": label, "featureGroups": groups},
        "fs_flatten_resp_keys": keys,
    }


def model_config(models: Path, batch: int) -> dict:
    dense = [f"user:x:x{j}" for j in range(16)]
    dense += [f"product:n:i{j}" for j in range(8)] + [f"product:d:f{j}" for j in range(8)]
    return {
        "request_features": ["user_id"],
        "dag_execution_config": {
            "component_dependency": {
                "user_f": ["feature_initializer"],
                "product_f": ["feature_initializer"],
                "pair_f": ["feature_initializer"],
                "ranker": ["user_f", "product_f"],
                "final": ["ranker", "pair_f"],
            }
        },
        "component_config": {
            "cache_enabled": False,
            "feature_components": [
                _feature("user_f", ["user_id"], "user", [_group("x", "DataTypeFP32", _names("x", 16))]),
                _feature(
                    "product_f",
                    ["product_id"],
                    "product",
                    [
                        _group("n", "DataTypeInt32", [f"i{j}" for j in range(8)]),
                        _group("d", "DataTypeFP64", [f"f{j}" for j in range(8)]),
                        _group("s", "DataTypeString", ["brand", "cat"]),
                        _group("v", "DataTypeFP32Vector", ["emb"]),
                    ],
                ),
                _feature(
                    "pair_f",
                    ["user_id", "product_id"],
                    "user_product",
                    [_group("a", "DataTypeFP32", [f"w{j}" for j in range(4)])],
                ),
            ],
            "predator_components": [
                {
                    "component": "ranker",
                    "component_id": "product_id",
                    "model_name": "s2_mlp",
                    "model_end_point": f"onnx://{models}",
                    "deadline": 500,
                    "batch_size": batch,
                    "inputs": [
                        {"name": "a", "shape": [32], "data_type": "FP32", "features": dense},
                        {"name": "b", "shape": [16], "data_type": "FP32", "features": ["product:v:emb"]},
                    ],
                    "outputs": [
                        {
                            "name": "score",
                            "model_scores": ["p_click", "p_buy"],
                            "model_scores_dims": [[1], [1]],
                            "data_type": "DataTypeFP32",
                        }
                    ],
                }
            ],
            "numerix_components": [
                {
                    "component": "final",
                    "component_id": "product_id",
                    "score_col": "final",
                    "data_type": "DataTypeFP64",
                    "compute_id": "7",
                    "score_mapping": {
                        "a@DataTypeFP32": "p_click",
                        "b@DataTypeFP32": "p_buy",
                        "c@DataTypeFP64": "product:d:f0",
                    },
                }
            ],
        },
        "response_config": {
            "features": ["product_id", "p_click", "p_buy", "final", "product:s:brand", "product:n:i0"],
            "logging_perc": 0,
        },
    }


def config_tree(root: Path, batch: int) -> dict[str, str]:
    return {
        MODEL_KEY: json.dumps(model_config(root / "models", batch)),
        EXPRESSION_KEY: json.dumps({"expression": "a b * c +"}),
    }


def requests(n: int, targets: int = 200, seed: int = 1) -> list[bytes]:
    from inferflow_core.testing.protos import predict_pb2

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        user = predict_pb2.ContextFeature(name="user_id", value=f"u{rng.integers(USERS)}".encode())
        products = [predict_pb2.Target(id=f"p{k}") for k in rng.integers(0, PRODUCTS, targets)]
        msg = predict_pb2.PointWiseRequest(model_config_id="s2", context_features=[user], targets=products)
        out.append(msg.SerializeToString())
    return out


async def in_process(root: Path, batch: int, n: int) -> dict:
    """p50 of the whole request and the mean time of each node, in process."""
    from inferflow_core.api import Runtime
    from inferflow_core.testing.inprocess import InProcessService

    runtime = Runtime()
    snapshot = runtime.apply_tree(config_tree(root, batch))
    if snapshot.errors:
        raise SystemExit(f"S2 config rejected: {snapshot.errors}")
    service = InProcessService(runtime)
    reqs = requests(n + 200)
    for raw in reqs[:200]:
        await service.call("pointwise", raw)
    before = _node_seconds(runtime)
    lat = []
    for raw in reqs[200:]:
        t0 = time.perf_counter()
        await service.call("pointwise", raw)
        lat.append(time.perf_counter() - t0)
    nodes = {k: 1e6 * (v - before.get(k, 0.0)) / n for k, v in _node_seconds(runtime).items()}
    ordered = dict(sorted(nodes.items(), key=lambda kv: -kv[1]))
    return {"p50_us": 1e6 * statistics.median(lat), "nodes_us": ordered}


def _node_seconds(runtime: Any) -> dict[str, float]:
    """Each component's total run time so far, from the ``component_latency_seconds`` histogram."""
    out: dict[str, float] = defaultdict(float)
    for family in runtime.metrics.registry.collect():
        if family.name.endswith("component_latency_seconds"):
            for sample in family.samples:
                if sample.name.endswith("_sum"):
                    out[sample.labels["component"]] += sample.value
    return out


def served(root: Path, batch: int, work: Path) -> dict:
    """``inferflow serve`` (1 worker, embedded backends) against an echo of its own response bytes."""
    import grpc

    write_config_dir(work / "config", config_tree(root, batch))
    env = example.embedded_env(root)
    load = requests(900)
    port, http = pick_free_port(), pick_free_port()
    cmd = example.inferflow_serve(work / "config", port, http, 1)
    server = example.ServerProcess("s2", cmd, env, work / "server.log")
    server.start()
    try:
        server.wait_http(f"http://127.0.0.1:{http}/health/ready", 90)
        time.sleep(0.5)
        result = {"inferflow": run_load(f"127.0.0.1:{port}", load, 600, 4.0)}
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            response = channel.unary_unary(PATH)(requests(1)[0], timeout=10)
    finally:
        server.stop()
    echo_port = pick_free_port()
    spawn = mp.get_context("spawn")
    ready = spawn.Event()
    echo = spawn.Process(target=_echo_server, args=(echo_port, response, ready), daemon=True)
    echo.start()
    ready.wait(30)
    try:
        result["echo"] = run_load(f"127.0.0.1:{echo_port}", load, 600, 4.0)
    finally:
        echo.kill()
    result["response_bytes"] = len(response)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--batch", type=int, default=25, help="the ranker's batch_size (0: all rows in one call)")
    p.add_argument("--hidden", type=int, default=0, help="a hidden layer this wide in the model (0: none)")
    p.add_argument("--requests", type=int, default=1500, help="in-process requests measured")
    p.add_argument("--no-served", action="store_true", help="in process only")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="inferflow-s2-") as tmp:
        root = Path(tmp)
        make_data(root / "data", args.hidden)
        results: dict[str, Any] = {"batch": args.batch, "hidden": args.hidden, "load": os.getloadavg()[0]}
        env = example.embedded_env(root / "data")
        os.environ.clear()
        os.environ.update(env)  # the in-process runtime reads its settings from the environment
        results["in_process"] = asyncio.run(in_process(root / "data", args.batch, args.requests))
        if not args.no_served:
            results["served"] = served(root / "data", args.batch, root)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"S2, batch_size {args.batch}, hidden {args.hidden}, load average {results['load']:.2f}")
    nodes = ", ".join(f"{k} {v:.0f}" for k, v in results["in_process"]["nodes_us"].items())
    print(f"  in process: p50 {results['in_process']['p50_us']:.0f} us; per node, us: {nodes}")
    if "served" in results:
        s = results["served"]
        print(
            f"  served: c1 p50 {s['inferflow']['p50_ms']:.3f} ms, c16 {s['inferflow']['rps_c16']:.0f} req/s; "
            f"echo of the same {s['response_bytes']} B: c1 p50 {s['echo']['p50_ms']:.3f} ms, "
            f"c16 {s['echo']['rps_c16']:.0f} req/s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
