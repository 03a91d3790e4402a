"""deploy/kserve: the Triton model config matches the example ONNX model, and the Inferflow model config that
points at the InferenceService is the example's with only the ranker's endpoint changed (and validates)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from inferflow_core.api import sources
from inferflow_core.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]
KSERVE = ROOT / "deploy" / "kserve"
MAP = "inferflow/services/inferflow/model-config/config-map"
ENDPOINT = "s1-mlp-predictor.models.svc.cluster.local:80"


def test_model_config_is_the_example_pointed_at_triton(monkeypatch: pytest.MonkeyPatch) -> None:
    example = json.loads(
        (ROOT / "inferflow_core" / "example" / "config" / MAP / "bench_ctr.json").read_text()
    )
    served = json.loads((KSERVE / "config" / MAP / "bench_ctr.json").read_text())
    [ranker] = served["component_config"]["predator_components"]
    assert ranker["model_end_point"] == ENDPOINT
    assert ranker["model_name"] == "s1_mlp"
    ranker["model_end_point"] = example["component_config"]["predator_components"][0]["model_end_point"]
    assert served == example
    # as deployed (deploy/configmap.yaml): a remote OnFS and the example's Numerix expressions beside it
    monkeypatch.setenv("EXTERNAL_SERVICE_ONFS_FS_HOST", "onfs-api-server.onfs.svc.cluster.local")
    monkeypatch.setenv("EXTERNAL_SERVICE_ONFS_FS_GRPC_PLAIN_TEXT", "true")
    tree = sources.read_config_dir(ROOT / "inferflow_core" / "example" / "config")
    tree.update(sources.read_config_dir(KSERVE / "config"))
    rt = Runtime()
    rt.apply_tree({k: v for k, v in tree.items() if "bench_ctr_" not in k})
    assert not rt.store.current.errors, rt.store.current.errors


def test_triton_config_matches_the_onnx_model() -> None:
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(ROOT / "inferflow_core" / "example" / "models" / "s1_mlp" / "1" / "model.onnx"))
    want = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim[1:]]
        for v in [*model.graph.input, *model.graph.output]
    }
    text = (KSERVE / "model-repository" / "s1_mlp" / "config.pbtxt").read_text()
    got = {
        name: [int(d) for d in dims.split(",")]
        for name, dims in re.findall(r'name: "(\w+)", data_type: TYPE_FP32, dims: \[ ([\d, ]+) \]', text)
    }
    assert got == want == {"dense": [96], "emb": [32], "prob": [1]}
    assert 'name: "s1_mlp"' in text
    assert 'platform: "onnxruntime_onnx"' in text
