"""Backends per endpoint, created lazily on first use (so a hot-reloaded endpoint works at once).

Endpoint forms: ``host`` (port from ``EXTERNAL_SERVICE_PREDATOR_PORT``), ``host:port``, ``[v6]:port`` and
``onnx://PATH`` (embedded ONNX Runtime over a Triton-layout repository). The pool is owned by the
registered component type, i.e. one per process runtime, and shared by every model version using it.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from inferflow_core.api import net

from .embedded import OnnxBackend, OnnxWorkers
from .kserve import KServeClient
from .settings import PredatorSettings
from .tensors import Tensor

ONNX_SCHEME = "onnx://"


class Backend(Protocol):
    target: str

    async def check_ready(self, model: str, version: str, timeout: float | None) -> None: ...

    async def infer(
        self, model: str, version: str, inputs: list[Tensor], outputs: list[str], timeout: float | None
    ) -> dict[str, Tensor]: ...

    async def close(self) -> None: ...


def normalise_endpoint(endpoint: str, default_port: int) -> str:
    """``host`` -> ``host:port``; ``host:port`` and ``onnx://PATH`` unchanged (stripped)."""
    endpoint = endpoint.strip()
    if endpoint.startswith(ONNX_SCHEME):
        return endpoint
    if endpoint.startswith("["):  # [v6]:port or [v6]
        return endpoint if "]:" in endpoint else f"{endpoint}:{default_port}"
    return endpoint if ":" in endpoint else f"{endpoint}:{default_port}"


class BackendPool:
    def __init__(self, settings: PredatorSettings) -> None:
        self.settings = settings
        self._backends: dict[str, tuple[Backend, asyncio.AbstractEventLoop]] = {}
        self._executor: OnnxWorkers | None = None
        self._shadow_executor: OnnxWorkers | None = None
        self._metadata = (
            ("predator-caller-id", settings.caller_id),
            ("predator-auth-token", settings.caller_token),
        )
        # outbound TLS: checked once; a problem rejects every model config with a remote endpoint
        self.tls = settings.tls
        self.tls_problem = ""
        self._credentials = None
        try:
            settings.tls.check(settings.plain_text)
            if not settings.plain_text:
                self._credentials = settings.tls.credentials()
        except net.TlsConfigError as exc:
            self.tls_problem = exc.message

    @property
    def executor(self) -> OnnxWorkers:
        if self._executor is None:
            self._executor = OnnxWorkers(self.settings.onnx_workers, "inferflow-onnx")
        return self._executor

    @property
    def shadow_executor(self) -> OnnxWorkers:
        """One low-priority thread (nice 19) for embedded shadow models: the OS runs it when the
        primary's work leaves a core free, so a shadow at 100% barely moves the primary's latency."""
        if self._shadow_executor is None:
            self._shadow_executor = OnnxWorkers(1, "inferflow-onnx-shadow", nice=19)
        return self._shadow_executor

    def get(self, endpoint: str, shadow: bool = False) -> Backend:
        """The backend for ``endpoint`` (already normalised), created on first use on this event loop.

        grpc.aio channels belong to the loop that made them, so a client made on another loop is replaced.
        ``shadow``: an embedded endpoint gets its own backend on :attr:`shadow_executor`.
        """
        loop = asyncio.get_running_loop()
        embedded = endpoint.startswith(ONNX_SCHEME)
        key = f"shadow|{endpoint}" if shadow and embedded else endpoint
        got = self._backends.get(key)
        if got is not None and (got[1] is loop or embedded):
            return got[0]
        backend: Backend
        if embedded:
            backend = OnnxBackend(
                endpoint[len(ONNX_SCHEME) :],
                self.shadow_executor if shadow else self.executor,
                self.settings.onnx_intra_op_threads,
                0.0 if shadow else self.settings.onnx_inline_us,
                0.0 if shadow else self.settings.onnx_idle_inline_us,
            )
        else:
            backend = KServeClient(
                endpoint,
                self.settings.plain_text,
                self._metadata,
                self.settings.max_message_bytes,
                self.tls,
                self._credentials,
                (self.settings.reconnect_min_ms, self.settings.reconnect_max_ms),
            )
        self._backends[key] = (backend, loop)
        return backend

    async def aclose(self) -> None:
        """Close every channel and the ONNX thread pool (service shutdown, tests)."""
        backends = [b for b, _ in self._backends.values()]
        self._backends.clear()
        for backend in backends:
            await backend.close()
        for executor in (self._executor, self._shadow_executor):
            if executor is not None:
                executor.shutdown(wait=False, cancel_futures=True)
        self._executor = self._shadow_executor = None
