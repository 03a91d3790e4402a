"""The predator against a real Triton (tritonserver 2.51 from nvidia-pytriton, CPU-only, Python backend) run
as its own process from .venv-triton: the example MLP computed in numpy behind Triton's KServe v2 gRPC API."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import predator_support as cf
import pytest
from inferflow_predator._proto import grpc_predict_v2_pb2 as pb
from inferflow_predator._proto import grpc_predict_v2_pb2_grpc as pb_grpc
from predator_support import inferflow

from inferflow_core.api import DataType, InitialData, RequestInfo, Runtime, TypedValues
from inferflow_core.testing import write_config_dir

pytestmark = pytest.mark.integration
DENSE = [f"d{i}" for i in range(96)]
# Triton and the test compute the same float32 numpy graph; ONNX Runtime sums in another order.
F32_TOL = {"rtol": 1e-5, "atol": 1e-6}


def ranker(endpoint: str = "", model: str = "s1_mlp", **extra: Any) -> dict[str, Any]:
    """The example's ranker entry (inputs dense[96] + emb[32], output prob) on these test columns."""
    return {
        "component": extra.pop("component", "ranker"),
        "component_id": "id",
        "model_name": model,
        "model_end_point": endpoint,
        "deadline": extra.pop("deadline", 3000),
        "batch_size": extra.pop("batch_size", 16),
        "inputs": [
            {"name": "dense", "shape": [96], "data_type": "FP32", "features": DENSE},
            {"name": "emb", "shape": [32], "data_type": "FP32", "features": ["emb"]},
        ],
        "outputs": [
            {"name": "prob", "model_scores": [extra.pop("score", "pctr")], "model_scores_dims": [[1]],
             "data_type": "DataTypeFP32"},
        ],
        **extra,
    }  # fmt: skip


def features(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, 96)).astype(np.float32), rng.normal(size=(rows, 32)).astype(np.float32)


async def execute(rt: Runtime, dense: np.ndarray, emb: np.ndarray, deadline_s: float | None = None) -> Any:
    rows = len(dense)
    ok = np.ones(rows, dtype=bool)
    typed = {f: TypedValues(DataType.FP32, dense[:, i].copy(), ok) for i, f in enumerate(DENSE)}
    typed["emb"] = TypedValues(DataType.FP32_VECTOR, emb, ok)
    initial = InitialData(rows=rows, texts={"id": [str(i) for i in range(rows)]}, typed=typed)
    deadline = asyncio.get_running_loop().time() + deadline_s if deadline_s else None
    return await rt.execute("m", initial, RequestInfo(api="pointwise"), deadline=deadline)


async def test_scores_equal_the_local_computation_in_offset_safe_batches(
    triton: Any, make_runtime: Any
) -> None:
    rt = make_runtime([ranker(triton.endpoint, batch_size=16)])
    dense, emb = features(200)
    ctx = await execute(rt, dense, emb)
    assert not ctx.failures, ctx.failures
    pctr, ok = ctx.matrix.read("pctr")
    assert ok.all()
    assert pctr.dtype == np.float32
    np.testing.assert_allclose(pctr, triton.local(dense, emb), **F32_TOL)
    labels = {"model_id": "m", "component": "ranker", "endpoint": triton.endpoint}
    assert rt.metrics.value("external_requests", **labels) == 13  # 200 rows in batches of 16
    # each batch wrote its own rows: reversing the rows reverses the scores (to float32 precision: a row's
    # sums may be blocked differently in another batch)
    again = await execute(rt, dense[::-1].copy(), emb[::-1].copy())
    np.testing.assert_allclose(again.matrix.read("pctr")[0], pctr[::-1], **F32_TOL)


async def test_triton_agrees_with_the_embedded_onnx_backend(triton: Any, make_runtime: Any) -> None:
    rt = make_runtime(
        [
            ranker(triton.endpoint, component="served", score="served"),
            ranker(f"onnx://{cf.EXAMPLE_REPO}", component="embedded", score="embedded"),
        ]
    )
    dense, emb = features(50, seed=1)
    ctx = await execute(rt, dense, emb)
    assert not ctx.failures, ctx.failures
    np.testing.assert_allclose(ctx.matrix.read("served")[0], ctx.matrix.read("embedded")[0], **F32_TOL)


async def test_percentage_routing_between_triton_and_embedded(triton: Any, make_runtime: Any) -> None:
    onnx_ep = f"onnx://{cf.EXAMPLE_REPO}"
    comp = ranker(
        model_end_points=[
            {"endpoint": triton.endpoint, "percentage": 70},
            {"endpoint": onnx_ep, "percentage": 30},
        ],
        batch_size=8,
    )
    rt = make_runtime([comp])
    dense, emb = features(4, seed=2)
    want = triton.local(dense, emb)
    ctxs = []
    for _ in range(10):  # 400 requests, 40 in flight at a time
        ctxs += await asyncio.gather(*(execute(rt, dense, emb) for _ in range(40)))
    for ctx in ctxs:
        assert not ctx.failures, ctx.failures
        np.testing.assert_allclose(ctx.matrix.read("pctr")[0], want, **F32_TOL)
    calls = {
        ep: rt.metrics.value("external_requests", model_id="m", component="ranker", endpoint=ep)
        for ep in (triton.endpoint, onnx_ep)
    }
    assert sum(calls.values()) == 400
    # Binomial(400, 0.3): mean 120, sd 9.2; +-5 sd
    assert 74 <= calls[onnx_ep] <= 166, calls


async def test_model_metadata_and_readiness(triton: Any) -> None:
    async with grpc.aio.insecure_channel(triton.endpoint) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        assert (await stub.ServerReady(pb.ServerReadyRequest(), timeout=5)).ready
        assert (await stub.ModelReady(pb.ModelReadyRequest(name="s1_mlp", version="1"), timeout=5)).ready
        meta = await stub.ModelMetadata(pb.ModelMetadataRequest(name="s1_mlp"), timeout=5)
        assert meta.platform == "python"
        assert "1" in list(meta.versions)
        shapes = {t.name: (t.datatype, list(t.shape)) for t in [*meta.inputs, *meta.outputs]}
        assert shapes == {"dense": ("FP32", [-1, 96]), "emb": ("FP32", [-1, 32]), "prob": ("FP32", [-1, 1])}
        refused: grpc.aio.AioRpcError | None = None
        try:
            absent = await stub.ModelReady(pb.ModelReadyRequest(name="not_loaded", version="1"), timeout=5)
        except grpc.aio.AioRpcError as exc:
            refused = exc
        if refused is None:
            assert not absent.ready
        else:
            assert refused.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE), refused


async def test_a_model_that_is_not_loaded_fails_only_its_component(triton: Any, make_runtime: Any) -> None:
    rt = make_runtime(
        [ranker(triton.endpoint), ranker(triton.endpoint, model="not_loaded", component="gone", score="gone")]
    )
    dense, emb = features(10, seed=3)
    ctx = await execute(rt, dense, emb)
    assert ctx.matrix.read("pctr")[1].all()
    assert not ctx.matrix.read("gone")[1].any()
    [failure] = ctx.failures
    assert failure.component == "gone", failure
    assert failure.kind.startswith("predator-"), failure
    assert "not_loaded" in failure.message


async def test_a_slow_model_is_bounded_by_the_deadline(triton: Any, make_runtime: Any) -> None:
    rt = make_runtime([ranker(triton.endpoint), ranker(triton.endpoint, model="s1_mlp_slow", component="slow",
                                                       score="slow", deadline=200)])  # fmt: skip
    dense, emb = features(10, seed=4)
    await execute(rt, dense, emb)  # readiness checks once, outside the timed call
    started = time.monotonic()
    ctx = await execute(rt, dense, emb, deadline_s=3.0)
    assert time.monotonic() - started < 0.9  # the slow model sleeps 1 s; its deadline is 200 ms
    assert ctx.matrix.read("pctr")[1].all()
    assert not ctx.matrix.read("slow")[1].any()
    assert [(f.component, f.kind) for f in ctx.failures] == [("slow", "predator-api-timeout")]


def test_validate_check_backends_accepts_the_kserve_model_config(
    triton: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """deploy/kserve's ranker entry, pointed at this Triton: ModelReady and ModelMetadata match it; the
    same entry with a wrong input shape is reported against the server's metadata."""
    monkeypatch.setenv("EXTERNAL_SERVICE_PREDATOR_GRPC_PLAIN_TEXT", "true")
    prefix = "inferflow/services/inferflow/model-config/config-map/"
    source = cf.ROOT / "deploy" / "kserve" / "config" / prefix / "bench_ctr.json"
    [ranker] = json.loads(source.read_text())["component_config"]["predator_components"]
    ranker["model_end_point"] = triton.endpoint
    good = {  # the ranker alone (its features come with the request here)
        "dag_execution_config": {"component_dependency": {"ranker": ["feature_initializer"]}},
        "component_config": {"predator_components": [ranker]},
        "response_config": {"features": ["catalog_id", "pctr"]},
        "request_features": [f for inp in ranker["inputs"] for f in inp["features"]],
    }
    bad = json.loads(json.dumps(good))
    bad["component_config"]["predator_components"][0]["inputs"][1]["shape"] = [16]
    write_config_dir(tmp_path, {prefix + "good": json.dumps(good), prefix + "bad": json.dumps(bad)})
    checked = inferflow("validate", str(tmp_path), "--check-backends", "--json")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    models = {m["model"]: m for m in json.loads(checked.stdout)["models"]}
    assert models["good"]["valid"], models["good"]
    assert not models["good"]["errors"], models["good"]
    assert models["bad"]["errors"], models["bad"]
    assert any("emb" in e["message"] for e in models["bad"]["errors"]), models["bad"]["errors"]
