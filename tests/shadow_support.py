"""Shared by the shadow and replay tests: two linear ONNX models with other weights, a served model config
whose predator reads request features, and a runtime with the predator and logging plugins."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from inferflow_core.runtime import Runtime

PREFIX = "inferflow/services/inferflow/model-config/"
FEATURES = ["f0", "f1", "f2", "f3"]


def weights(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(4, 1)).astype(np.float32), rng.normal(size=1).astype(np.float32)


def linear_model(repo: Path, name: str, seed: int) -> None:
    """``prob`` [N, 1] = sigmoid(x [N, 4] @ w + b), weights from ``seed``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w, b = weights(seed)
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "w", "b"], ["z"]),
            helper.make_node("Sigmoid", ["z"], ["prob"]),
        ],
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", 1])],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (repo / name / "1").mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(repo / name / "1" / "model.onnx"))


def reference(x: np.ndarray, seed: int) -> np.ndarray:
    w, b = weights(seed)
    return (1.0 / (1.0 + np.exp(-(x.astype(np.float32) @ w + b))))[:, 0].astype(np.float32)


def model_config(endpoint: str, model_name: str, shadows: list[dict[str, Any]] | None = None) -> str:
    ranker: dict[str, Any] = {
        "component": "ranker",
        "component_id": "catalog_id",
        "model_name": model_name,
        "model_end_point": endpoint,
        "inputs": [{"name": "x", "features": FEATURES, "shape": [4], "data_type": "FP32"}],
        "outputs": [
            {"name": "prob", "model_scores": ["score"], "model_scores_dims": [[1]], "data_type": "FP32"}
        ],
    }
    if shadows:
        ranker["shadow_end_points"] = shadows
    return json.dumps(
        {
            "dag_execution_config": {"component_dependency": {"ranker": ["feature_initializer"]}},
            "component_config": {"predator_components": [ranker]},
            "request_features": FEATURES,
            "response_config": {
                "features": ["catalog_id", "score", *FEATURES],
                "log_features": True,  # the request features are logged: the log is replayable
                "logging_perc": 100,
                "model_schema_features_perc": 0,
            },
        }
    )


def tree(model: str, model_id: str = "m") -> dict[str, str]:
    return {
        PREFIX + "config-map/" + model_id: model,
        PREFIX + "service-config": json.dumps({"v2-logging-type": "proto"}),
    }


def make_runtime(monkeypatch: Any, log_dir: Path, **env: str) -> Runtime:
    monkeypatch.setenv("INFERFLOW_LOG_SINK", "file")
    monkeypatch.setenv("INFERFLOW_LOG_DIR", str(log_dir))
    monkeypatch.setenv("INFERFLOW_LOG_ENCODER", "thread")
    monkeypatch.setenv("EXTERNAL_SERVICE_PREDATOR_GRPC_PLAIN_TEXT", "true")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Runtime()  # entry points: the predator and logging plugins (and the others installed)
