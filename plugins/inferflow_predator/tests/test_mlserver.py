"""The predator against a real KServe v2 server: MLServer 1.7.1 (sklearn runtime) as its own process."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np
import predator_support as cf
import pytest
from onnx import TensorProto, helper, numpy_helper

from inferflow_core.api import DataType, InitialData, RequestInfo, Runtime, TypedValues
from inferflow_core.testing import pick_free_port

pytestmark = pytest.mark.integration
FEATURES = [f"f{i}" for i in range(cf.N_FEATURES)]
# The model sees FP32 inputs, so scikit-learn may compute in float32 (whether it does depends on its
# version): the served probabilities and the ones computed beside the model agree to float32 precision,
# not float64. A few float32 ulp is the meaningful bound; a wrong row or a wrong batch offset is far off.
F32_RTOL = 4 * float(np.finfo(np.float32).eps)


def clf_component(name: str, endpoint: str = "", **extra: Any) -> dict[str, Any]:
    outputs = [
        {
            "name": "predict_proba",
            "model_scores": [f"{name}_p0", f"{name}_p1"],
            "model_scores_dims": [[1], [1]],
            "data_type": "FP64",
        },
        {
            "name": "predict",
            "model_scores": [f"{name}_label"],
            "model_scores_dims": [[1]],
            "data_type": "INT64",
        },
    ]
    return {
        "component": name,
        "component_id": "id",
        "model_name": "clf",
        "model_end_point": endpoint,
        "deadline": extra.pop("deadline", 3000),
        "batch_size": extra.pop("batch_size", 10),
        "inputs": [{"name": "x", "features": FEATURES, "shape": [cf.N_FEATURES], "data_type": "FP32"}],
        "outputs": extra.pop("outputs", outputs),
        **extra,
    }


async def execute(rt: Runtime, x: np.ndarray, deadline_s: float | None = None) -> Any:
    rows = len(x)
    typed = {
        f: TypedValues(DataType.FP32, x[:, i].copy(), np.ones(rows, dtype=bool))
        for i, f in enumerate(FEATURES)
    }
    initial = InitialData(rows=rows, texts={"id": [str(i) for i in range(rows)]}, typed=typed)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s if deadline_s else None
    return await rt.execute("m", initial, RequestInfo(api="pointwise"), deadline=deadline)


async def test_dag_scores_match_the_model_computed_locally(mlserver: Any, make_runtime: Any) -> None:
    rt = make_runtime([clf_component("clf", mlserver.endpoint, batch_size=10)])
    exp = mlserver.expected
    ctx = await execute(rt, exp["X"])
    assert not ctx.failures, ctx.failures
    p1, ok = ctx.matrix.read("clf_p1")
    assert ok.all()
    assert p1.dtype == np.float64
    np.testing.assert_allclose(p1, exp["proba"][:, 1], rtol=F32_RTOL)
    np.testing.assert_allclose(ctx.matrix.read("clf_p0")[0], exp["proba"][:, 0], rtol=F32_RTOL)
    local = 1 / (1 + np.exp(-(exp["X"].astype(np.float64) @ exp["coef"][0] + exp["intercept"][0])))
    np.testing.assert_allclose(p1, local, rtol=1e-6)
    labels, ok = ctx.matrix.read("clf_label")
    assert ok.all()
    assert labels.dtype == np.int64
    assert labels.tolist() == exp["label"].tolist()
    labels = {"model_id": "m", "component": "clf", "endpoint": mlserver.endpoint}
    assert rt.metrics.value("external_requests", **labels) == 7  # 64 rows in batches of 10


async def test_failed_batch_leaves_only_its_rows_missing(mlserver: Any, make_runtime: Any) -> None:
    rt = make_runtime([clf_component("clf", mlserver.endpoint, batch_size=10)])
    x = mlserver.expected["X"][:30].copy()
    x[15, 3] = np.nan  # sklearn rejects NaN: MLServer fails the batch of rows 10..19 only
    ctx = await execute(rt, x)
    p1, ok = ctx.matrix.read("clf_p1")
    assert ok.tolist() == [True] * 10 + [False] * 10 + [True] * 10
    np.testing.assert_allclose(p1[ok], mlserver.expected["proba"][:30, 1][ok], rtol=F32_RTOL)
    assert [f.kind for f in ctx.failures] == ["predator-api-error"]
    assert "1/3 batches failed" in ctx.failures[0].message
    labels = {"model_id": "m", "component": "clf", "endpoint": mlserver.endpoint}
    assert rt.metrics.value("external_errors", kind="predator-api-error", **labels) == 1


def constant_clf(repo: Path) -> None:
    """An ONNX 'clf' with other weights (all zero): predict_proba is exactly [0.5, 0.5] for every row."""
    import onnx

    w = numpy_helper.from_array(np.zeros((cf.N_FEATURES, 2), dtype=np.float32), "w")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["z"]),
            helper.make_node("Sigmoid", ["z"], ["p"]),
            helper.make_node("Cast", ["p"], ["predict_proba"], to=TensorProto.DOUBLE),
        ],
        "clf",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", cf.N_FEATURES])],
        [helper.make_tensor_value_info("predict_proba", TensorProto.DOUBLE, ["N", 2])],
        initializer=[w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (repo / "clf" / "1").mkdir(parents=True)
    onnx.save(model, str(repo / "clf" / "1" / "model.onnx"))


async def test_percentage_routing_80_20_over_2000_calls(
    mlserver: Any, make_runtime: Any, tmp_path: Path
) -> None:
    constant_clf(tmp_path)
    onnx_ep = f"onnx://{tmp_path}"
    outputs = [
        {
            "name": "predict_proba",
            "model_scores": ["p0", "p1"],
            "model_scores_dims": [[1], [1]],
            "data_type": "FP64",
        }
    ]
    comp = clf_component(
        "clf",
        outputs=outputs,
        model_end_points=[
            {"endpoint": mlserver.endpoint, "percentage": 80},
            {"endpoint": onnx_ep, "percentage": 20},
        ],
    )
    rt = make_runtime([comp])
    x = mlserver.expected["X"][:1]
    embedded = served = 0
    for _ in range(40):  # 2,000 calls, 50 in flight at a time
        ctxs = await asyncio.gather(*(execute(rt, x) for _ in range(50)))
        for ctx in ctxs:
            assert not ctx.failures, ctx.failures
            p1 = float(ctx.matrix.read("p1")[0][0])
            served += 1
            embedded += p1 == 0.5
            assert p1 == 0.5 or p1 == pytest.approx(mlserver.expected["proba"][0, 1], rel=1e-12)
    assert served == 2000
    # Binomial(2000, 0.2): mean 400, sd 17.9; +-5 sd
    assert 310 <= embedded <= 490, embedded
    calls = {
        ep: rt.metrics.value("external_requests", model_id="m", component="clf", endpoint=ep)
        for ep in (mlserver.endpoint, onnx_ep)
    }
    assert calls == {mlserver.endpoint: 2000 - embedded, onnx_ep: embedded}


async def test_down_and_slow_endpoints_are_contained_and_counted(
    mlserver: Any, make_runtime: Any, blackhole: str
) -> None:
    down = f"127.0.0.1:{pick_free_port()}"
    rt = make_runtime(
        [
            clf_component("good", mlserver.endpoint),
            clf_component("down", down),
            clf_component("slow", blackhole, deadline=150),
        ]
    )
    x = mlserver.expected["X"][:20]
    started = time.monotonic()
    ctx = await execute(rt, x, deadline_s=3.0)
    assert time.monotonic() - started < 1.5
    assert ctx.matrix.read("good_p1")[1].all()
    assert not ctx.matrix.read("down_p1")[1].any()
    assert not ctx.matrix.read("slow_p1")[1].any()
    kinds = {f.component: f.kind for f in ctx.failures}
    assert kinds == {"down": "predator-api-unavailable", "slow": "predator-api-timeout"}
    for name, endpoint, kind in (
        ("down", down, "predator-api-unavailable"),
        ("slow", blackhole, "predator-api-timeout"),
    ):
        labels = {"model_id": "m", "component": name, "endpoint": endpoint}
        assert rt.metrics.value("external_errors", kind=kind, **labels) == 2  # two batches of 10


async def test_routing_to_a_down_endpoint_only_loses_those_requests(mlserver: Any, make_runtime: Any) -> None:
    down = f"127.0.0.1:{pick_free_port()}"
    comp = clf_component(
        "clf",
        model_end_points=[
            {"endpoint": mlserver.endpoint, "percentage": 50},
            {"endpoint": down, "percentage": 50},
        ],
    )
    rt = make_runtime([comp])
    x = mlserver.expected["X"][:5]
    ctxs = await asyncio.gather(*(execute(rt, x) for _ in range(40)))
    lost = [c for c in ctxs if not c.matrix.read("clf_p1")[1].any()]
    kept = [c for c in ctxs if c.matrix.read("clf_p1")[1].all()]
    assert len(lost) + len(kept) == 40
    assert lost
    assert kept
    assert all(c.failures and not k.failures for c in lost for k in kept)
    labels = {"model_id": "m", "component": "clf", "endpoint": down}
    assert rt.metrics.value("external_errors", kind="predator-api-unavailable", **labels) == len(lost)


async def test_mlserver_as_the_shadow_of_an_embedded_primary(
    mlserver: Any, make_runtime: Any, tmp_path: Path
) -> None:
    """Primary: the constant ONNX 'clf' (p1 = 0.5); shadow: the real sklearn model behind MLServer. The
    shadow call is deferred (RunContext.after_response): nothing of it is in the matrix until it runs."""
    constant_clf(tmp_path)
    outputs = [
        {
            "name": "predict_proba",
            "model_scores": ["p0", "p1"],
            "model_scores_dims": [[1], [1]],
            "data_type": "FP64",
        }
    ]
    shadow = {"endpoint": mlserver.endpoint, "percentage": 100, "label": "sk"}
    rt = make_runtime(
        [clf_component("clf", f"onnx://{tmp_path}", outputs=outputs, shadow_end_points=[shadow])]
    )
    x = mlserver.expected["X"][:24]
    ctx = await execute(rt, x)
    assert not ctx.failures, ctx.failures
    assert ctx.matrix.read("p1")[0].tolist() == [0.5] * 24
    assert ctx.deferred
    assert len(ctx.deferred) == 1
    assert not ctx.matrix.read("shadow:sk:p1")[1].any()  # declared, still empty: nothing ran yet
    await asyncio.gather(*(job() for job in ctx.deferred))
    got, ok = ctx.matrix.read("shadow:sk:p1")
    assert ok.all()
    np.testing.assert_allclose(got, mlserver.expected["proba"][:24, 1], rtol=F32_RTOL)
    labels = {"model_id": "m", "component": "clf", "shadow": "sk", "endpoint": mlserver.endpoint}
    assert rt.metrics.value("predator.shadow.calls", outcome="ok", **labels) == 1
