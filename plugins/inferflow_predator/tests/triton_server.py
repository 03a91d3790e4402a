"""A real Triton server for the predator tests, run by ``.venv-triton``'s python (not imported by pytest).

PyTriton 0.7.0 starts tritonserver 2.51 (CPU-only, Python backend) as its own process and binds these
models to it; their Python functions run here, in numpy:

* ``s1_mlp``      the example ranker (dense[96] + emb[32] -> 128 -> 64 -> prob[1]) from the ONNX model's
                  weights (an .npz written by the fixture), computed in float32;
* ``s1_mlp_slow`` the same after sleeping ``--slow-ms`` (a model slower than the caller's deadline).

Usage: python triton_server.py WEIGHTS.npz GRPC_PORT HTTP_PORT METRICS_PORT [SLOW_MS]

The Python backend stub is linked against ``libpython3.11.so.1.0`` and finds the system's (Debian 12: 3.11.2)
before this interpreter's: with a newer interpreter (pyenv 3.11.7) the stub then runs 3.11.2 against 3.11.7's
standard library and fails (``RLock._recursion_count``). The interpreter's own libpython, when it has one,
is put first on ``LD_LIBRARY_PATH`` before tritonserver starts.
"""

from __future__ import annotations

import os
import signal
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np
from pytriton.decorators import batch
from pytriton.model_config import ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def use_own_libpython() -> None:
    libdir, name = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("LDLIBRARY")
    if libdir and name and (Path(libdir) / name).exists():
        rest = os.environ.get("LD_LIBRARY_PATH", "")
        os.environ["LD_LIBRARY_PATH"] = libdir + (":" + rest if rest else "")


def main() -> None:
    use_own_libpython()
    weights_path, grpc_port, http_port, metrics_port = sys.argv[1], *map(int, sys.argv[2:5])
    slow_s = (int(sys.argv[5]) if len(sys.argv) > 5 else 1000) / 1000.0
    w = {k: v.astype(np.float32) for k, v in np.load(weights_path).items()}

    def forward(dense: np.ndarray, emb: np.ndarray) -> np.ndarray:
        x = np.concatenate([dense, emb], axis=1).astype(np.float32)
        h1 = np.maximum(x @ w["w1"] + w["b1"], 0)
        h2 = np.maximum(h1 @ w["w2"] + w["b2"], 0)
        logit = h2 @ w["w3"] + w["b3"]
        return (1.0 / (1.0 + np.exp(-logit))).astype(np.float32)

    @batch
    def mlp(dense: np.ndarray, emb: np.ndarray) -> dict[str, np.ndarray]:
        return {"prob": forward(dense, emb)}

    @batch
    def mlp_slow(dense: np.ndarray, emb: np.ndarray) -> dict[str, np.ndarray]:
        time.sleep(slow_s)
        return {"prob": forward(dense, emb)}

    inputs = [
        Tensor(name="dense", dtype=np.float32, shape=(96,)),
        Tensor(name="emb", dtype=np.float32, shape=(32,)),
    ]
    outputs = [Tensor(name="prob", dtype=np.float32, shape=(1,))]
    config = TritonConfig(
        grpc_address="127.0.0.1", grpc_port=grpc_port, http_address="127.0.0.1", http_port=http_port,
        metrics_address="127.0.0.1", metrics_port=metrics_port, allow_gpu_metrics=False, log_verbose=0,
        exit_timeout_secs=3,
    )  # fmt: skip
    # SIGTERM (the fixture's stop) ends serve() like Ctrl-C does, so ``with Triton`` stops tritonserver
    signal.signal(signal.SIGTERM, _interrupt)
    with Triton(config=config) as triton:
        for name, func in (("s1_mlp", mlp), ("s1_mlp_slow", mlp_slow)):
            triton.bind(name, func, inputs=inputs, outputs=outputs, config=ModelConfig(max_batch_size=256))
        triton.serve()


if __name__ == "__main__":
    main()
