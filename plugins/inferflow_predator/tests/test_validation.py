"""Issue 12: an embedded predator model is checked against its config at load (file, input/output names,
dtypes, shapes), and a typo in an input feature is named at load and in the response, never scored as 0."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from inferflow_core.api import InitialData, RequestInfo, Runtime

PREFIX = "component_config.predator_components[0]"


def save(repo: Path, name: str, nodes: list, inputs: list, outputs: list) -> None:
    model = helper.make_model(
        helper.make_graph(nodes, name, inputs, outputs), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    path = repo / name / "1" / "model.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def predator(name: str, endpoint: str, inputs: list, outputs: list, model: str) -> dict[str, Any]:
    return {
        "component": name,
        "component_id": "id",
        "model_name": model,
        "model_end_point": endpoint,
        "inputs": inputs,
        "outputs": outputs,
    }


def _model(repo: Path) -> None:
    """x: [N, 2] float -> y = x (identity)."""
    save(
        repo,
        "two",
        [helper.make_node("Identity", ["x"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
    )


def _config(repo: Path, **change: Any) -> dict[str, Any]:
    comp = predator(
        "ranker",
        f"onnx://{repo}",
        [{"name": "x", "features": ["a", "b"], "shape": [2], "data_type": "FP32"}],
        [
            {
                "name": "y",
                "model_scores": ["score", "b_out"],
                "model_scores_dims": [[1], [1]],
                "data_type": "FP32",
            }
        ],
        model="two",
    )
    for key, value in change.items():
        comp[key] = value
    return comp


def _model_json(comp: dict[str, Any], request_features: list[str] | None = None) -> str:
    return json.dumps(
        {
            "dag_execution_config": {"component_dependency": {"ranker": ["feature_initializer"]}},
            "component_config": {"predator_components": [comp]},
            "response_config": {"features": ["id", "score"]},
            "request_features": ["a", "b"] if request_features is None else request_features,
        }
    )


def _load(raw: str, strict: bool = False) -> Runtime:
    rt = Runtime()
    rt.compiler.strict = strict
    rt.apply_tree({rt.settings.config_map_prefix + "m": raw})
    return rt


def _problems(comp: dict[str, Any]) -> list[tuple[str, str]]:
    rt = _load(_model_json(comp))
    assert "m" not in rt.store.current.models
    return rt.store.current.errors["m"].problems


def test_a_matching_embedded_model_loads_clean(tmp_path: Path) -> None:
    _model(tmp_path)
    rt = _load(_model_json(_config(tmp_path)))
    assert not rt.store.current.errors, rt.store.current.errors
    assert rt.store.current.models["m"].warnings == ()


def test_missing_model_file(tmp_path: Path) -> None:
    probs = _problems(_config(tmp_path / "empty"))
    assert any(p == f"{PREFIX}.model_end_point" and "model.onnx does not exist" in m for p, m in probs), probs


@pytest.mark.parametrize(
    ("change", "path", "needle"),
    [
        ({"name": "xx"}, "inputs[0].name", "has no input 'xx'"),
        ({"data_type": "INT64"}, "inputs[0].data_type", "is FP32"),
        ({"shape": [3]}, "inputs[0].shape", "per-row shape [2]"),
        ({"shape": [2, 1]}, "inputs[0].shape", "per-row shape [2]"),
    ],
)
def test_input_mismatches(tmp_path: Path, change: dict[str, Any], path: str, needle: str) -> None:
    _model(tmp_path)
    comp = _config(tmp_path)
    comp["inputs"][0].update(change)
    probs = _problems(comp)
    assert any(p == f"{PREFIX}.{path}" and needle in m for p, m in probs), probs


def test_output_mismatches(tmp_path: Path) -> None:
    _model(tmp_path)
    comp = _config(tmp_path)
    comp["outputs"][0]["name"] = "z"
    probs = _problems(comp)
    assert any(p == f"{PREFIX}.outputs[0].name" and "no output 'z'" in m for p, m in probs), probs
    comp = _config(tmp_path)
    comp["outputs"][0] = {
        "name": "y",
        "model_scores": ["a1"],
        "model_scores_dims": [[1]],
        "data_type": "FP32",
    }
    probs = _problems(comp)
    assert any(p == f"{PREFIX}.outputs[0].model_scores_dims" and "2 value(s) per row" in m for p, m in probs)


def test_unfed_model_input(tmp_path: Path) -> None:
    save(
        tmp_path,
        "two",
        [helper.make_node("Add", ["x", "w"], ["y"])],
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2]),
            helper.make_tensor_value_info("w", TensorProto.FLOAT, ["N", 2]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
    )
    comp = _config(tmp_path)
    probs = _problems(comp)
    assert any("model input 'w'" in m and "fed by no inputs[] entry" in m for _, m in probs), probs


async def test_a_typo_in_an_input_feature_is_named_at_load_and_in_the_request(tmp_path: Path) -> None:
    """The issue's first case: "item:g:nope" validated ok and served a different score silently."""
    _model(tmp_path)
    comp = _config(tmp_path)
    comp["inputs"][0]["features"] = ["a", "item:g:nope"]
    raw = _model_json(comp, request_features=["a", "item:g:none"])
    rt = _load(raw)
    (warning,) = rt.store.current.models["m"].warnings
    assert warning[0] == f"{PREFIX}.inputs[0].features[1]"
    assert "'item:g:nope'" in warning[1]
    assert "did you mean 'item:g:none'?" in warning[1]
    assert "m" in _load(raw, strict=True).store.current.errors
    initial = InitialData(rows=2, texts={"id": ["1", "2"], "a": ["1", "2"], "item:g:none": ["3", "4"]})
    ctx = await rt.execute("m", initial, RequestInfo(api="pointwise"))
    assert any("'item:g:nope'" in n and "neither produced" in n for n in ctx.notes), ctx.notes
    assert np.allclose(ctx.matrix.read("score")[0], [1, 2])  # scored, but the request is told why
