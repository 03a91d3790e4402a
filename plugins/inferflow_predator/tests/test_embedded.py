"""The predator over the embedded ONNX backend, run as a DAG by the core Runtime (entry points loaded)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import predator_support as cf
import pytest
from onnx import TensorProto, helper, numpy_helper
from predator_support import gather_model, predator, run, save, typed

from inferflow_core.api import DataType, InitialData, RequestInfo, Runtime

mlp_spec = importlib.util.spec_from_file_location("make_mlp", cf.ROOT / "examples" / "models" / "make_mlp.py")
assert mlp_spec
assert mlp_spec.loader
make_mlp = importlib.util.module_from_spec(mlp_spec)
mlp_spec.loader.exec_module(make_mlp)

ONNX_TYPES = {
    DataType.FP16: TensorProto.FLOAT16,
    DataType.FP32: TensorProto.FLOAT,
    DataType.FP64: TensorProto.DOUBLE,
    DataType.INT8: TensorProto.INT8,
    DataType.INT16: TensorProto.INT16,
    DataType.INT32: TensorProto.INT32,
    DataType.INT64: TensorProto.INT64,
    DataType.UINT8: TensorProto.UINT8,
    DataType.UINT16: TensorProto.UINT16,
    DataType.UINT32: TensorProto.UINT32,
    DataType.UINT64: TensorProto.UINT64,
    DataType.BOOL: TensorProto.BOOL,
    DataType.STRING: TensorProto.STRING,
}


def identity(repo: Path, name: str, elem: int, width: Any) -> None:
    save(
        repo,
        name,
        [helper.make_node("Identity", ["x"], ["y"])],
        [helper.make_tensor_value_info("x", elem, ["N", width])],
        [helper.make_tensor_value_info("y", elem, ["N", width])],
    )


# ------------------------------------------------------------------------------------------- S1 MLP
async def test_example_mlp_scores_like_numpy(make_runtime: Any) -> None:
    rows = 200
    rng = np.random.default_rng(1)
    user = rng.normal(size=(rows, 32)).astype(np.float32)
    cat = rng.normal(size=(rows, 64)).astype(np.float32)
    emb = rng.normal(size=(rows, 32)).astype(np.float32)
    valid = np.ones(rows, dtype=bool)
    valid[::7] = False  # missing cells of c5 take the default 0
    cols: dict[str, Any] = {f"c{i}": typed(DataType.FP32, cat[:, i]) for i in range(64)}
    cols["c5"] = typed(DataType.FP32, cat[:, 5], valid)
    cols["user_emb"] = typed(DataType.FP32_VECTOR, user)
    cols["cat_emb"] = typed(DataType.FP32_VECTOR, emb)
    rt = make_runtime(
        [
            predator(
                "ranker",
                f"onnx://{cf.EXAMPLE_REPO}",
                [
                    {
                        "name": "dense",
                        "features": ["user_emb"] + [f"c{i}" for i in range(64)],
                        "shape": [96],
                        "data_type": "FP32",
                    },
                    {"name": "emb", "features": ["cat_emb"], "shape": [32], "data_type": "FP32"},
                ],
                [
                    {
                        "name": "prob",
                        "model_scores": ["pctr"],
                        "model_scores_dims": [[1]],
                        "data_type": "DataTypeFP32",
                    }
                ],
                model="s1_mlp",
                batch_size=64,
                calibration="ctr",
            )
        ]
    )
    # the model's input columns (RetrieveModelScore's model_schema_features_perc), in config order
    want_inputs = ("user_emb", *(f"c{i}" for i in range(64)), "cat_emb")
    assert rt.store.current.models["m"].model_inputs == want_inputs
    ctx = await run(rt, rows, **cols)
    assert not ctx.failures, ctx.failures
    got, ok = ctx.matrix.read("pctr")
    cat[~valid, 5] = 0
    want = make_mlp.reference(np.concatenate([user, cat], axis=1), emb)[:, 0]
    assert ok.all()
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert ctx.matrix.texts("ctr_model") == ["s1_mlp"] * rows
    assert ctx.matrix.texts("inferflow_config_id") == ["m"] * rows
    calls = rt.metrics.value(
        "external_requests", model_id="m", component="ranker", endpoint=f"onnx://{cf.EXAMPLE_REPO}"
    )
    assert calls == 4  # 200 rows in batches of 64


# ------------------------------------------------------------------------------------------- dtypes
SCALARS = [dt for dt in ONNX_TYPES if dt is not DataType.STRING]


def _values(dt: DataType, shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(int(dt))
    if dt is DataType.BOOL:
        return rng.integers(0, 2, size=shape).astype(bool)
    if dt.numpy_dtype.kind == "f":
        return rng.normal(scale=10, size=shape).astype(dt.numpy_dtype)
    info = np.iinfo(dt.numpy_dtype)
    return rng.integers(info.min, info.max, size=shape, dtype=dt.numpy_dtype, endpoint=True)


async def test_every_fixed_width_dtype_and_vector_outputs(make_runtime: Any, tmp_path: Path) -> None:
    rows, comps, cols = 5, [], {}
    for dt in SCALARS:
        name = dt.kserve_name.lower()
        identity(tmp_path, name, ONNX_TYPES[dt], 3)
        cols[f"{name}_s"] = typed(dt, _values(dt, (rows,)))
        cols[f"{name}_v"] = typed(dt.vector, _values(dt, (rows, 2))[::-1].copy())
        comps.append(
            predator(
                name,
                f"onnx://{tmp_path}",
                [
                    {
                        "name": "x",
                        "features": [f"{name}_s", f"{name}_v"],
                        "shape": [3],
                        "data_type": dt.kserve_name,
                    }
                ],
                [
                    {
                        "name": "y",
                        "model_scores": [f"{name}_out_s", f"{name}_out_v"],
                        "model_scores_dims": [[1], [2]],
                        "data_type": dt.wire_name,
                    }
                ],
                batch_size=2,
            )
        )
    rt = make_runtime(comps)
    ctx = await run(rt, rows, **cols)
    assert not ctx.failures, ctx.failures
    for dt in SCALARS:
        name = dt.kserve_name.lower()
        got_s, ok_s = ctx.matrix.read(f"{name}_out_s")
        got_v, ok_v = ctx.matrix.read(f"{name}_out_v")
        assert ctx.matrix.column(f"{name}_out_v").dtype is dt.vector
        assert ok_s.all(), name
        assert ok_v.all(), name
        assert got_s.dtype == dt.numpy_dtype, name
        assert got_v.shape == (rows, 2), name
        np.testing.assert_array_equal(got_s, cols[f"{name}_s"].values, err_msg=name)
        np.testing.assert_array_equal(got_v, cols[f"{name}_v"].values, err_msg=name)


async def test_output_converted_to_configured_type(make_runtime: Any, tmp_path: Path) -> None:
    identity(tmp_path, "f64", TensorProto.DOUBLE, 1)
    rt = make_runtime(
        [
            predator(
                "f64",
                f"onnx://{tmp_path}",
                [{"name": "x", "features": ["a"], "shape": [1], "data_type": "FP64"}],
                [{"name": "y", "model_scores": ["as_i32"], "model_scores_dims": [[1]], "data_type": "int32"}],
            )
        ]
    )
    ctx = await run(rt, 3, a=typed(DataType.FP64, np.array([1.9, -2.7, 40.0])))
    got, ok = ctx.matrix.read("as_i32")
    assert ok.all()
    assert got.dtype == np.int32
    assert got.tolist() == [1, -2, 40]


async def test_bytes_inputs_and_outputs(make_runtime: Any, tmp_path: Path) -> None:
    identity(tmp_path, "strs", TensorProto.STRING, 3)
    rt = make_runtime(
        [
            predator(
                "strs",
                f"onnx://{tmp_path}",
                [{"name": "x", "features": ["word", "num", "absent"], "shape": [3], "data_type": "BYTES"}],
                [
                    {
                        "name": "y",
                        "model_scores": ["word_out", "num_out", "absent_out"],
                        "model_scores_dims": [[1], [1], [1]],
                        "data_type": "DataTypeString",
                    }
                ],
            )
        ]
    )
    ctx = await run(
        rt,
        3,
        word=["héllo", "", "x y"],
        num=typed(DataType.FP32, np.array([0.25, 1e6, -3], dtype=np.float32)),
    )
    assert not ctx.failures, ctx.failures
    assert ctx.matrix.texts("word_out") == ["héllo", "0.0", "x y"]  # missing cell -> text 0.0 (4.5)
    assert ctx.matrix.texts("num_out") == ["0.25", "1e+06", "-3"]
    assert ctx.matrix.texts("absent_out") == ["0.0"] * 3


async def test_bytes_output_parsed_into_numeric_column(make_runtime: Any, tmp_path: Path) -> None:
    identity(tmp_path, "strs", TensorProto.STRING, 1)
    rt = make_runtime(
        [
            predator(
                "strs",
                f"onnx://{tmp_path}",
                [{"name": "x", "features": ["t"], "shape": [1], "data_type": "BYTES"}],
                [{"name": "y", "model_scores": ["v"], "model_scores_dims": [[1]], "data_type": "FP32"}],
            )
        ]
    )
    ctx = await run(rt, 2, t=["1.5", "-2"])
    got, ok = ctx.matrix.read("v")
    assert ok.all()
    assert got.tolist() == [1.5, -2.0]


async def test_minus_one_shapes(make_runtime: Any, tmp_path: Path) -> None:
    save(
        tmp_path,
        "dyn",
        [
            helper.make_node("Identity", ["x"], ["y"]),
            helper.make_node("ReduceSum", ["x", "axes"], ["s"], keepdims=1),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "K"])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "K"]),
            helper.make_tensor_value_info("s", TensorProto.FLOAT, ["N", 1]),
        ],
        [numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")],
    )
    vec = np.arange(15, dtype=np.float32).reshape(3, 5)
    rt = make_runtime(
        [
            predator(
                "dyn",
                f"onnx://{tmp_path}",
                [{"name": "x", "features": ["v"], "shape": [-1], "data_type": "FP32"}],
                [
                    {
                        "name": "y",
                        "model_scores": ["y_all"],
                        "model_scores_dims": [[-1]],
                        "data_type": "FP32",
                    },
                    {"name": "s", "model_scores": ["total"], "model_scores_dims": [[1]], "data_type": "FP32"},
                ],
            )
        ]
    )
    ctx = await run(rt, 3, v=typed(DataType.FP32_VECTOR, vec))
    assert not ctx.failures, ctx.failures
    np.testing.assert_array_equal(ctx.matrix.read("y_all")[0], vec)
    np.testing.assert_array_equal(ctx.matrix.read("total")[0], vec.sum(axis=1))


# ------------------------------------------------------------------------------------------- batches
async def test_failed_batch_leaves_exactly_its_rows_missing(make_runtime: Any, tmp_path: Path) -> None:
    gather_model(tmp_path)
    rt = make_runtime(
        [
            predator(
                "lookup",
                f"onnx://{tmp_path}",
                [{"name": "idx", "features": ["i"], "shape": [1], "data_type": "INT64"}],
                [{"name": "score", "model_scores": ["s"], "model_scores_dims": [[1]], "data_type": "FP32"}],
                batch_size=2,
            )
        ]
    )
    ctx = await run(rt, 7, i=typed(DataType.INT64, np.array([0, 1, 2, 99, 4, 5, 6])))
    got, ok = ctx.matrix.read("s")
    assert ok.tolist() == [True, True, False, False, True, True, True]
    assert got[ok].tolist() == [0, 10, 40, 50, 60]
    assert [(f.component, f.kind) for f in ctx.failures] == [("lookup", "predator-api-error")]
    assert "1/4 batches failed" in ctx.failures[0].message
    endpoint = f"onnx://{tmp_path}"
    labels = {"model_id": "m", "component": "lookup", "endpoint": endpoint}
    assert rt.metrics.value("external_errors", kind="predator-api-error", **labels) == 1
    assert rt.metrics.value("external_requests", **labels) == 4


async def test_slate_mode(make_runtime: Any, tmp_path: Path) -> None:
    gather_model(tmp_path)
    rt = make_runtime(
        [
            predator(
                "lookup",
                f"onnx://{tmp_path}",
                [{"name": "idx", "features": ["i"], "shape": [1], "data_type": "INT64"}],
                [
                    {
                        "name": "score",
                        "model_scores": ["slate_s"],
                        "model_scores_dims": [[1]],
                        "data_type": "FP32",
                    }
                ],
                slate_component=True,
            )
        ]
    )
    slates = [np.array([2, 0]), np.array([1]), np.array([], dtype=int), np.array([7, 3]), np.array([4, 0])]
    ctx = await run(rt, 5, slates=slates, i=typed(DataType.INT64, np.array([0, 1, 2, 3, 99])))
    got, ok = ctx.slate_matrix.read("slate_s")
    # slate 2 is empty (skipped), slate 3's index 7 is out of range (dropped), slate 4 fails in the model
    assert ok.tolist() == [True, True, False, True, False]
    assert got[ok].tolist() == [20, 10, 30]
    assert [f.kind for f in ctx.failures] == ["predator-api-error"]
    assert "1/4 slates" in ctx.failures[0].message
    assert not ctx.matrix.has("slate_s")
    # PointWise (no slate matrix): a slate component does not call the model
    calls = rt.metrics.value(
        "external_requests", model_id="m", component="lookup", endpoint=f"onnx://{tmp_path}"
    )
    ctx = await run(rt, 5, i=typed(DataType.INT64, np.arange(5)))
    assert not ctx.failures
    assert (
        rt.metrics.value("external_requests", model_id="m", component="lookup", endpoint=f"onnx://{tmp_path}")
        == calls
    )


async def test_slate_component_reads_pair_slate_request_features(make_runtime: Any, tmp_path: Path) -> None:
    """A pair/slate request feature mapped by a slate predator component reaches the model (not 0)."""
    gather_model(tmp_path)
    rt = make_runtime(
        [
            predator(
                "lookup",
                f"onnx://{tmp_path}",
                [{"name": "idx", "features": ["slate_i"], "shape": [1], "data_type": "INT64"}],
                [
                    {
                        "name": "score",
                        "model_scores": ["slate_s"],
                        "model_scores_dims": [[1]],
                        "data_type": "FP32",
                    }
                ],
                slate_component=True,
            )
        ]
    )
    initial = InitialData(rows=3, texts={"id": ["0", "1", "2"]}, slate_texts={"slate_i": ["4", "6"]})
    ctx = await rt.execute(
        "m", initial, RequestInfo(api="slatewise"), slates=[np.array([0, 1]), np.array([2])]
    )
    assert not ctx.failures, ctx.failures
    got, ok = ctx.slate_matrix.read("slate_s")
    assert ok.tolist() == [True, True]
    assert got.tolist() == [40, 60]


# ------------------------------------------------------------------------------------------- config
def _errors(components: list[dict[str, Any]]) -> str:
    rt = Runtime()
    rt.apply_tree({rt.settings.config_map_prefix + "bad": cf.model_json(components)})
    return str(rt.store.current.errors["bad"])


def test_config_errors_name_the_json_path() -> None:
    base = predator(
        "p",
        "h",
        [{"name": "x", "features": ["a"], "shape": [1], "data_type": "FP32"}],
        [{"name": "y", "model_scores": ["s"], "model_scores_dims": [[1]], "data_type": "FP32"}],
    )
    prefix = "component_config.predator_components[0]"
    bad = json.loads(json.dumps(base))
    bad["model_end_points"] = [{"endpoint": "a", "percentage": 50}, {"endpoint": "b", "percentage": 40}]
    assert f"{prefix}: " in _errors([bad])
    assert "sum to 90" in _errors([bad])
    bad = json.loads(json.dumps(base))
    bad["outputs"][0]["model_scores_dims"] = [[1], [1]]
    assert f"{prefix}.outputs[0]" in _errors([bad])
    assert "must match" in _errors([bad])
    bad = json.loads(json.dumps(base))
    bad["inputs"][0]["data_type"] = "FP8E4M3"
    assert f"{prefix}.inputs[0].data_type" in _errors([bad])
    bad = json.loads(json.dumps(base))
    bad["inputs"][0]["shape"] = []
    assert f"{prefix}.inputs[0].shape" in _errors([bad])
    bad = json.loads(json.dumps(base))
    bad["outputs"][0]["data_type"] = "complex"
    assert f"{prefix}.outputs[0].data_type" in _errors([bad])
    bad = json.loads(json.dumps(base))
    bad["route_config"] = [{"model_name": "p", "model_endpoint": "a", "routing_percentage": 33.3}]
    assert "route_config" in _errors([bad])


async def test_hot_reload_to_a_new_endpoint_works_at_once(make_runtime: Any, tmp_path: Path) -> None:
    gather_model(tmp_path / "a")
    gather_model(tmp_path / "b")
    comp = predator(
        "lookup",
        f"onnx://{tmp_path / 'a'}",
        [{"name": "idx", "features": ["i"], "shape": [1], "data_type": "INT64"}],
        [{"name": "score", "model_scores": ["s"], "model_scores_dims": [[1]], "data_type": "FP32"}],
    )
    rt = make_runtime([comp])
    assert (await run(rt, 2, i=typed(DataType.INT64, np.array([1, 2])))).matrix.read("s")[1].all()
    comp["model_end_point"] = f"onnx://{tmp_path / 'b'}"
    rt.apply_tree({rt.settings.config_map_prefix + "m": cf.model_json([comp])})
    assert not rt.store.current.errors
    ctx = await run(rt, 2, i=typed(DataType.INT64, np.array([1, 2])))
    assert ctx.matrix.read("s")[1].all()
    assert not ctx.failures
    labels = {"model_id": "m", "component": "lookup", "endpoint": f"onnx://{tmp_path / 'b'}"}
    assert rt.metrics.value("external_requests", **labels) == 1


@pytest.mark.parametrize("routing", ["model_end_points", "route_config", "horizon_top_level"])
def test_routing_shapes(routing: str, make_runtime: Any) -> None:
    from inferflow_predator import PredatorConfig, PredatorSettings
    from inferflow_predator.component import PredatorComponent
    from inferflow_predator.pool import BackendPool

    raw = predator(
        "p",
        "",
        [{"name": "x", "features": ["a"], "shape": [1], "data_type": "FP32"}],
        [{"name": "y", "model_scores": ["s"], "model_scores_dims": [[1]], "data_type": "FP32"}],
    )
    top: Any = None
    if routing == "model_end_points":
        raw["model_end_points"] = [{"endpoint": "a", "percentage": 70}, {"endpoint": "b:9", "percentage": 30}]
    elif routing == "route_config":
        raw["route_config"] = [
            {"model_name": "p", "model_endpoint": "a", "routing_percentage": 70.0},
            {"model_name": "p", "model_endpoint": "b:9", "routing_percentage": 30.0},
        ]
    else:
        raw["model_end_point"] = "fallback"
        top = [
            {"model_name": "p", "model_endpoint": "a", "routing_percentage": 70.0},
            {"model_name": "p", "model_endpoint": "b:9", "routing_percentage": 30.0},
            {"model_name": "other", "model_endpoint": "zzz", "routing_percentage": 100.0},
        ]
    import random

    pool = BackendPool(PredatorSettings(port=7777))
    comp = PredatorComponent(PredatorConfig.model_validate(raw), "m", pool, None, top, random.Random(5))  # type: ignore[arg-type]
    picks = [comp.pick_endpoint() for _ in range(4000)]
    assert set(picks) == {"a:7777", "b:9"}
    assert abs(picks.count("a:7777") / 4000 - 0.7) < 0.035


def test_committed_example_model_is_what_make_mlp_builds() -> None:
    """The demo copies the committed model instead of rebuilding it: it must not drift from the script."""
    root = Path(__file__).resolve().parents[3] / "examples" / "models"
    spec = importlib.util.spec_from_file_location("make_mlp_check", root / "make_mlp.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = onnx.load(str(cf.EXAMPLE_REPO / module.MODEL_NAME / "1" / "model.onnx"))
    assert committed.graph.SerializeToString() == module.build(7).graph.SerializeToString()
