"""Generate the S1 ranker example: an ONNX MLP in a Triton-layout repository.

    python examples/models/make_mlp.py     # writes inferflow_core/example/models/s1_mlp/1/model.onnx

Inputs ``dense`` [N, 96] FP32 and ``emb`` [N, 32] FP32 are concatenated and go through
128 -> ReLU -> 64 -> ReLU -> 1 -> sigmoid, output ``prob`` [N, 1] FP32. Weights are fixed random
(seeded), so the file is reproducible. The same file runs in Triton and in the embedded backend.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
MODEL_NAME = "s1_mlp"


def weights(seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def layer(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
        w = rng.normal(0.0, (2.0 / n_in) ** 0.5, size=(n_in, n_out)).astype(np.float32)
        return w, rng.normal(0.0, 0.05, size=n_out).astype(np.float32)

    w1, b1 = layer(128, 128)
    w2, b2 = layer(128, 64)
    w3, b3 = layer(64, 1)
    return {"w1": w1, "b1": b1, "w2": w2, "b2": b2, "w3": w3, "b3": b3}


def build(seed: int = 7) -> onnx.ModelProto:
    w = weights(seed)
    nodes = [
        helper.make_node("Concat", ["dense", "emb"], ["x"], axis=1),
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["a1"]),
        helper.make_node("Gemm", ["a1", "w2", "b2"], ["h2"]),
        helper.make_node("Relu", ["h2"], ["a2"]),
        helper.make_node("Gemm", ["a2", "w3", "b3"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["prob"]),
    ]
    graph = helper.make_graph(
        nodes,
        MODEL_NAME,
        [
            helper.make_tensor_value_info("dense", TensorProto.FLOAT, ["N", 96]),
            helper.make_tensor_value_info("emb", TensorProto.FLOAT, ["N", 32]),
        ],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", 1])],
        initializer=[numpy_helper.from_array(v, k) for k, v in w.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="inferflow")
    model.ir_version = 8  # loadable by older Triton / ONNX Runtime releases
    onnx.checker.check_model(model)
    return model


def reference(dense: np.ndarray, emb: np.ndarray, seed: int = 7) -> np.ndarray:
    """The same computation in numpy (float32), for tests."""
    w = weights(seed)
    x = np.concatenate([dense, emb], axis=1).astype(np.float32)
    a1 = np.maximum(x @ w["w1"] + w["b1"], 0)
    a2 = np.maximum(a1 @ w["w2"] + w["b2"], 0)
    return 1.0 / (1.0 + np.exp(-(a2 @ w["w3"] + w["b3"])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shipped = HERE.parents[1] / "inferflow_core" / "example" / "models"
    parser.add_argument("--repo", type=Path, default=shipped)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    out = args.repo / MODEL_NAME / "1" / "model.onnx"
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(build(args.seed), str(out))
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
