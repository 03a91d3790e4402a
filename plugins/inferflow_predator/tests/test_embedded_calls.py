"""Embedded model calls: one hand-off per request (all batches in one job), small calls inline on the loop,
and the same scores either way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import predator_support as cf
import pytest
from inferflow_predator import PredatorSettings, PredatorType
from inferflow_predator.embedded import OnnxBackend, OnnxWorkers, _run_all
from inferflow_predator.tensors import Tensor
from predator_support import gather_model, predator, run, typed

from inferflow_core.api import ComponentError, DataType

HERE = Path(__file__).parent

DENSE = {"name": "dense", "features": [f"c{i}" for i in range(96)], "shape": [96], "data_type": "FP32"}
EMB = {"name": "emb", "features": ["e"], "shape": [32], "data_type": "FP32"}
PROB = {"name": "prob", "model_scores": ["pctr"], "model_scores_dims": [[1]], "data_type": "DataTypeFP32"}


@pytest.fixture
def jobs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Batches per model-call job handed to an ONNX thread (session loads are not counted)."""
    seen: list[int] = []
    submit = OnnxWorkers.submit

    def counting(self: OnnxWorkers, fn: Any, *args: Any) -> Any:
        if fn is _run_all:
            seen.append(len(args[2]))
        return submit(self, fn, *args)

    monkeypatch.setattr(OnnxWorkers, "submit", counting)
    return seen


def _columns(rows: int) -> dict[str, Any]:
    rng = np.random.default_rng(3)
    cols: dict[str, Any] = {
        f"c{i}": typed(DataType.FP32, rng.normal(size=rows).astype(np.float32)) for i in range(96)
    }
    cols["e"] = typed(DataType.FP32_VECTOR, rng.normal(size=(rows, 32)).astype(np.float32))
    return cols


async def _scores(
    make_runtime: Any,
    monkeypatch: pytest.MonkeyPatch,
    inline_us: str,
    requests: int,
    idle_inline_us: str = "0",
    batch_size: int = 64,
    busy: int = 0,
) -> list[bytes]:
    """pctr of ``requests`` requests (200 rows), with ``busy`` other requests counted as executing."""
    monkeypatch.setenv("INFERFLOW_PREDATOR_ONNX_INLINE_US", inline_us)
    monkeypatch.setenv("INFERFLOW_PREDATOR_ONNX_IDLE_INLINE_US", idle_inline_us)
    ranker = predator(
        "ranker", f"onnx://{cf.EXAMPLE_REPO}", [DENSE, EMB], [PROB], model="s1_mlp", batch_size=batch_size
    )
    rt = make_runtime([ranker])
    rt.executing.count += busy
    out = []
    for _ in range(requests):
        ctx = await run(rt, 200, **_columns(200))
        assert not ctx.failures, ctx.failures
        values, ok = ctx.matrix.read("pctr")
        assert ok.all()
        out.append(values.tobytes())
    labels = {"model_id": "m", "component": "ranker", "endpoint": f"onnx://{cf.EXAMPLE_REPO}"}
    batches = -(-200 // batch_size) if batch_size else 1
    assert rt.metrics.value("external_requests", **labels) == batches * requests  # counted per batch
    return out


async def test_one_job_per_request_and_inline_scores_are_identical(
    make_runtime: Any, monkeypatch: pytest.MonkeyPatch, jobs: list[int]
) -> None:
    threaded = await _scores(make_runtime, monkeypatch, "0", 3)
    assert jobs == [4, 4, 4]  # 200 rows in batches of 64: one hand-off each, never inline
    jobs.clear()
    inline = await _scores(make_runtime, monkeypatch, "1e9", 3)
    assert jobs == [4]  # the first call measures the session on its thread, the next ones run inline
    assert threaded == inline
    assert len(set(inline)) == 1
    jobs.clear()
    whole = await _scores(make_runtime, monkeypatch, "1e9", 2, batch_size=0)
    assert whole[0] == inline[0]  # batches joined into one write give what one call over all rows gives


async def test_idle_process_runs_calls_inline_and_a_busy_one_hands_them_off(
    make_runtime: Any, monkeypatch: pytest.MonkeyPatch, jobs: list[int]
) -> None:
    alone = await _scores(make_runtime, monkeypatch, "0", 3, idle_inline_us="1e9")
    assert jobs == [4]  # measured on the thread once, then inline: no other request executes
    jobs.clear()
    busy = await _scores(make_runtime, monkeypatch, "0", 3, idle_inline_us="1e9", busy=1)
    assert jobs == [4, 4, 4]  # another request executes: every call goes to the thread
    assert alone == busy


async def test_failed_batch_leaves_its_rows_missing_inline_too(
    make_runtime: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, jobs: list[int]
) -> None:
    monkeypatch.setenv("INFERFLOW_PREDATOR_ONNX_INLINE_US", "1e9")
    gather_model(tmp_path)
    idx = {"name": "idx", "features": ["i"], "shape": [1], "data_type": "INT64"}
    score = {"name": "score", "model_scores": ["s"], "model_scores_dims": [[1]], "data_type": "FP32"}
    rt = make_runtime([predator("lookup", f"onnx://{tmp_path}", [idx], [score], batch_size=2)])
    for _ in range(2):  # on the thread, then inline
        ctx = await run(rt, 7, i=typed(DataType.INT64, np.array([0, 1, 2, 99, 4, 5, 6])))
        got, ok = ctx.matrix.read("s")
        assert ok.tolist() == [True, True, False, False, True, True, True]
        assert got[ok].tolist() == [0, 10, 40, 50, 60]
        assert [(f.component, f.kind) for f in ctx.failures] == [("lookup", "predator-api-error")]
        assert "1/4 batches failed" in ctx.failures[0].message
    assert jobs == [4]


async def test_inline_call_past_its_deadline_times_out_and_shadows_never_inline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    gather_model(tmp_path)
    workers = OnnxWorkers(1)
    try:
        backend = OnnxBackend(str(tmp_path), workers, 1, inline_us=1e9)
        batch = [Tensor("idx", "INT64", np.array([[1], [2]], dtype=np.int64))]
        first = await backend.infer_many("lookup", "1", [batch], ["score"], None)
        assert isinstance(first[0], dict)
        assert first[0]["score"].array.ravel().tolist() == [10, 20]
        with pytest.raises(ComponentError) as err:
            await backend.infer_many("lookup", "1", [batch], ["score"], 0.0)
        assert err.value.kind == "predator-api-timeout"
    finally:
        workers.shutdown()
    monkeypatch.setenv("INFERFLOW_PREDATOR_ONNX_INLINE_US", "1e9")
    pool = PredatorType(PredatorSettings()).pool
    assert pool.get(f"onnx://{tmp_path}").inline_us == 1e9  # type: ignore[attr-defined]
    assert pool.get(f"onnx://{tmp_path}", shadow=True).inline_us == 0  # type: ignore[attr-defined]
    await pool.aclose()


def test_batches_are_joined_only_when_each_answered_its_own_rows_alike() -> None:
    from inferflow_predator.component import _concatenated
    from inferflow_predator.embedded import _joined

    def out(*shape: int, dtype: Any = np.float32) -> list[np.ndarray]:  # ONNX Runtime's outputs of a batch
        return [np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)]

    bounds = [(0, 2), (2, 5)]
    joined = _joined(["prob"], [out(2, 1), out(3, 1)], bounds)
    assert joined is not None
    assert joined["prob"].datatype == "FP32"
    assert joined["prob"].array.ravel().tolist() == [0, 1, 0, 1, 2]
    assert _joined(["prob"], [out(2, 1), out(2, 1)], bounds) is None  # a batch answered other rows
    assert _joined(["prob"], [out(2, 1), out(3, 2)], bounds) is None  # another row shape
    assert _joined(["prob"], [out(2, 1), out(3, 1, dtype=np.float64)], bounds) is None  # another type
    assert _joined(["prob"], [out(2, 1), RuntimeError("boom")], bounds) is None  # a failed batch
    assert _joined(["prob"], [out(2, 1), []], bounds) is None  # an output missing
    assert _joined(["prob"], [out(2, 1), [np.float32(1)]], bounds) is None  # not an array of rows

    a, b = np.array([1.0, 2.0]), np.array([3.0])
    assert [[v.tolist() for v in s] for s in _concatenated([[[a]], [[b]]])] == [[[1.0, 2.0, 3.0]]]
    assert _concatenated([[[a]], ComponentError("boom")]) is None


async def test_an_output_every_batch_answers_wrong_fails_each_batch_with_its_reason(
    make_runtime: Any, tmp_path: Path
) -> None:
    from onnx import TensorProto, helper, numpy_helper
    from predator_support import save

    # score = table[idx] with idx [N, M]: the score's width is the input's, known only when it runs (1 here,
    # not the 2 configured)
    table = numpy_helper.from_array(np.arange(10, dtype=np.float32) * 10, "table")
    save(
        tmp_path,
        "dynamic",
        [helper.make_node("Gather", ["table", "idx"], ["score"], axis=0)],
        [helper.make_tensor_value_info("idx", TensorProto.INT64, ["N", "M"])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N", "M"])],
        [table],
    )
    idx = {"name": "idx", "features": ["i"], "shape": [1], "data_type": "INT64"}
    score = {"name": "score", "model_scores": ["s"], "model_scores_dims": [[2]], "data_type": "FP32"}
    rt = make_runtime([predator("dyn", f"onnx://{tmp_path}", [idx], [score], model="dynamic", batch_size=2)])
    ctx = await run(rt, 7, i=typed(DataType.INT64, np.array([0, 1, 2, 3, 4, 5, 6])))
    assert [(f.component, f.kind) for f in ctx.failures] == [("dyn", "error")]
    message = ctx.failures[0].message
    assert "4/4 batches failed" in message  # 7 rows in batches of 2, each with its reason
    assert "model returned 1 values per row, model_scores_dims need 2" in message
    assert not ctx.matrix.read("s")[1].any()
