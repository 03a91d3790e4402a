"""Embedded backend for endpoints ``onnx://PATH``: ONNX Runtime in process, same tensors as the wire path.

``PATH`` is a Triton-layout model repository (``PATH/<model_name>/<version>/model.onnx``), so the file that
runs here is the file Triton serves in production. A session is created once per (model, version), lazily,
and ``run`` executes in an explicitly sized thread pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from inferflow_core.api import ComponentError

from .tensors import Tensor, datatype_of


class OnnxBackend:
    def __init__(self, repository: str, executor: ThreadPoolExecutor, intra_op_threads: int) -> None:
        self.repository = Path(repository)
        self.target = f"onnx://{repository}"
        self.executor = executor
        self.intra_op_threads = intra_op_threads
        self._sessions: dict[tuple[str, str], Any] = {}
        self._lock = asyncio.Lock()

    def _create(self, path: Path) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.intra_op_threads
        opts.inter_op_num_threads = 1
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])

    async def session(self, model: str, version: str) -> Any:
        key = (model, version)
        sess = self._sessions.get(key)
        if sess is not None:
            return sess
        async with self._lock:
            sess = self._sessions.get(key)
            if sess is None:
                path = self.repository / model / version / "model.onnx"
                loop = asyncio.get_running_loop()
                try:
                    sess = await loop.run_in_executor(self.executor, self._create, path)
                except Exception as exc:
                    raise ComponentError(
                        f"{self.target}: cannot load {model!r} version {version!r} from {path}: {exc}",
                        "predator-model-not-found",
                    ) from None
                self._sessions[key] = sess
        return sess

    async def check_ready(self, model: str, version: str, timeout: float | None) -> None:
        await self.session(model, version)

    async def infer(
        self,
        model: str,
        version: str,
        inputs: Sequence[Tensor],
        outputs: Sequence[str],
        timeout: float | None,
    ) -> dict[str, Tensor]:
        sess = await self.session(model, version)
        feeds = {t.name: _feed(t) for t in inputs}
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.executor, sess.run, list(outputs), feeds)
        try:
            async with asyncio.timeout(timeout):
                results = await future
        except TimeoutError:
            raise ComponentError(f"{self.target} {model!r}: timed out", "predator-api-timeout") from None
        except ComponentError:
            raise
        except Exception as exc:
            raise ComponentError(
                f"{self.target} {model!r}: {type(exc).__name__}: {exc}", "predator-api-error"
            ) from None
        return {name: Tensor(name, datatype_of(arr), arr) for name, arr in zip(outputs, results, strict=True)}

    async def close(self) -> None:
        self._sessions.clear()


def _feed(tensor: Tensor) -> np.ndarray:
    if tensor.datatype == "BYTES":
        return np.vectorize(_text, otypes=[object])(tensor.array) if tensor.array.size else tensor.array
    return tensor.array


def _text(value: object) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)
