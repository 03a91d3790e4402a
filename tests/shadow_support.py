"""Shared by the shadow and replay tests: two linear ONNX models with other weights, a served model config
whose predator reads request features, a runtime with the predator and logging plugins, the requests
sent, and what a replay of them against the other model reports, computed directly."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np

from inferflow_core._proto import predict_pb2
from inferflow_core.runtime import Runtime
from inferflow_core.testing import write_config_dir

PREFIX = "inferflow/services/inferflow/model-config/"
FEATURES = ["f0", "f1", "f2", "f3"]
FP32 = predict_pb2.DataTypeFP32
N_REQUESTS = 6


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


def features(i: int, rows: int = 20) -> np.ndarray:
    return np.random.default_rng(100 + i).normal(size=(rows, 4)).astype(np.float32)


def request(i: int, tracking_id: str) -> Any:
    x = features(i)
    return predict_pb2.PointWiseRequest(
        model_config_id="m",
        tracking_id=tracking_id,
        target_input_schema=[predict_pb2.FeatureSchema(name=f, data_type=FP32) for f in FEATURES],
        targets=[
            predict_pb2.Target(id=f"c{i}-{r}", feature_values=[repr(float(v)).encode() for v in x[r]])
            for r in range(len(x))
        ],
    )


def candidate(repo: Path, where: Path) -> dict[str, str]:
    config = tree(model_config(f"onnx://{repo}", "lin_b"))
    write_config_dir(where, config)
    return config


def kendall_brute(a: np.ndarray, b: np.ndarray) -> float:
    pairs = list(itertools.combinations(range(len(a)), 2))
    s = sum(np.sign(a[i] - a[j]) * np.sign(b[i] - b[j]) for i, j in pairs)
    return float(s / len(pairs))  # no ties in continuous scores: tau-b = tau-a


def spearman_brute(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    n = len(a)
    return float(1 - 6 * ((ra - rb) ** 2).sum() / (n * (n * n - 1)))


def expected() -> dict[str, Any]:
    olds, news, rho, tau, top = [], [], [], [], []
    for i in range(N_REQUESTS):
        x = features(i)
        old, new = reference(x, 1).astype(np.float64), reference(x, 2).astype(np.float64)
        olds.append(old)
        news.append(new)
        rho.append(spearman_brute(old, new))
        tau.append(kendall_brute(old, new))
        top.append(len(set(np.argsort(-old)[:5]) & set(np.argsort(-new)[:5])) / 5)
    old, new = np.concatenate(olds), np.concatenate(news)
    return {"old": old, "new": new, "rho": rho, "tau": tau, "top": top}
