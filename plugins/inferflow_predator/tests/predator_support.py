"""What the predator tests share besides fixtures: paths, the one-model config (see conftest.py), a
predator_components entry, typed request columns and one run of model ``m`` through a runtime."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from inferflow_core.api import DataType, InitialData, RequestInfo, Runtime, TypedValues

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE_REPO = ROOT / "inferflow_core" / "example" / "models"
N_FEATURES = 8


def model_json(components: list[dict[str, Any]], features: list[str] | None = None) -> str:
    dag = {c["component"]: ["feature_initializer"] for c in components}
    return json.dumps(
        {
            "dag_execution_config": {"component_dependency": dag},
            "component_config": {"predator_components": components},
            "response_config": {"features": features or ["id"]},
        }
    )


def typed(dt: DataType, values: np.ndarray, valid: np.ndarray | None = None) -> TypedValues:
    return TypedValues(dt, values, np.ones(len(values), dtype=bool) if valid is None else valid)


async def run(rt: Runtime, rows: int, slates: list[np.ndarray] | None = None, **cols: Any) -> Any:
    initial = InitialData(
        rows=rows,
        texts={"id": [str(i) for i in range(rows)], **{k: v for k, v in cols.items() if isinstance(v, list)}},
        typed={k: v for k, v in cols.items() if isinstance(v, TypedValues)},
    )
    return await rt.execute("m", initial, RequestInfo(api="pointwise"), slates=slates)


def predator(name: str, endpoint: str, inputs: list, outputs: list, **extra: Any) -> dict[str, Any]:
    return {
        "component": name,
        "component_id": "id",
        "model_name": extra.pop("model", name),
        "model_end_point": endpoint,
        "deadline": 2000,
        "batch_size": extra.pop("batch_size", 64),
        "inputs": inputs,
        "outputs": outputs,
        **extra,
    }


def save(repo: Path, name: str, nodes: list, inputs: list, outputs: list, inits: list | None = None) -> None:
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=inits or [])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = repo / name / "1" / "model.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def gather_model(repo: Path) -> None:
    """score = table[idx]; an out-of-range idx makes ONNX Runtime fail that call."""
    table = numpy_helper.from_array(np.arange(10, dtype=np.float32) * 10, "table")
    save(
        repo,
        "lookup",
        [helper.make_node("Gather", ["table", "idx"], ["score"], axis=0)],
        [helper.make_tensor_value_info("idx", TensorProto.INT64, ["N", 1])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N", 1])],
        [table],
    )


def inferflow(*args: str) -> subprocess.CompletedProcess[str]:
    """The ``inferflow`` command line, run as a user runs it (environment inherited)."""
    cmd = [sys.executable, "-m", "inferflow_core.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
