"""``inferflow validate --check-backends`` asks a real KServe v2 server (MLServer) about each model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from predator_support import inferflow

from inferflow_core.testing import write_config_dir

pytestmark = pytest.mark.integration
PREFIX = "inferflow/services/inferflow/model-config/config-map/"


def _model(endpoint: str, model_name: str) -> str:
    features = [f"f{i}" for i in range(8)]
    comp = {
        "component": "clf",
        "component_id": "id",
        "model_name": model_name,
        "model_end_point": endpoint,
        "inputs": [{"name": "x", "features": features, "shape": [8], "data_type": "FP32"}],
        "outputs": [
            {"name": "predict", "model_scores": ["label"], "model_scores_dims": [[1]], "data_type": "INT64"}
        ],
    }
    return json.dumps(
        {
            "dag_execution_config": {"component_dependency": {"clf": ["feature_initializer"]}},
            "component_config": {"predator_components": [comp]},
            "response_config": {"features": ["id", "label"]},
            "request_features": features,
        }
    )


def test_check_backends_reports_a_model_the_server_does_not_have(
    mlserver: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXTERNAL_SERVICE_PREDATOR_GRPC_PLAIN_TEXT", "true")
    write_config_dir(
        tmp_path,
        {
            PREFIX + "good": _model(mlserver.endpoint, "clf"),
            PREFIX + "typo": _model(mlserver.endpoint, "clff"),
        },
    )
    offline = inferflow("validate", str(tmp_path))
    assert offline.returncode == 0, offline.stdout + offline.stderr  # offline: both look fine
    checked = inferflow("validate", str(tmp_path), "--check-backends", "--json")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    doc = json.loads(checked.stdout)
    by_model = {m["model"]: m for m in doc["models"]}
    assert by_model["good"]["valid"], by_model["good"]
    (problem,) = by_model["typo"]["errors"]
    assert problem["path"] == "component_config.predator_components[0].model_end_point"
    assert mlserver.endpoint in problem["message"], problem
    assert "'clff'" in problem["message"], problem
