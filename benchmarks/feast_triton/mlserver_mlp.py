"""MLServer custom runtime for the benchmark: the example MLP in numpy (the same computation Triton's Python
backend runs in plugins/inferflow_predator/tests/triton_server.py), weights from ``weights.npz``."""

from __future__ import annotations

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class NumpyMLP(MLModel):
    async def load(self) -> bool:
        path = self.settings.parameters.uri if self.settings.parameters else "weights.npz"
        self.w = {k: v.astype(np.float32) for k, v in np.load(path).items()}
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        inputs = {i.name: NumpyCodec.decode_input(i) for i in payload.inputs}
        w = self.w
        x = np.concatenate([inputs["dense"], inputs["emb"]], axis=1).astype(np.float32)
        h1 = np.maximum(x @ w["w1"] + w["b1"], 0)
        h2 = np.maximum(h1 @ w["w2"] + w["b2"], 0)
        prob = (1.0 / (1.0 + np.exp(-(h2 @ w["w3"] + w["b3"])))).astype(np.float32)
        return InferenceResponse(model_name=self.name, outputs=[NumpyCodec.encode_output("prob", prob)])
