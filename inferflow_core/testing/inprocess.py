"""The request handling of ``inferflow serve``, called with request bytes in process instead of over gRPC.

For benchmarks and profiles of what a request costs inside the server (parse, decode, the DAG, the
response bytes, the request observers) without the network and the gRPC runtime::

    from inferflow_core.api import Runtime, read_config_dir
    from inferflow_core.testing.inprocess import InProcessService
    from inferflow_core.testing.protos import predict_pb2

    runtime = Runtime()
    runtime.apply_tree(read_config_dir(config_dir, runtime.prefixes))
    service = InProcessService(runtime)
    raw = await service.call("pointwise", request.SerializeToString())
    reply = predict_pb2.PointWiseResponse.FromString(raw)

A request the server would refuse raises :class:`CallAborted` with the gRPC status and message a client
would have received.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import grpc

from ..runtime import Runtime
from ..serving.service import InferflowService

__all__ = ["CallAborted", "InProcessService"]


class CallAborted(Exception):
    """The server ended the call with a status other than OK (``code``, ``message``)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


class _Call:
    """What the handlers read from a gRPC servicer context."""

    transport = "in-process"
    __slots__ = ("deadline", "metadata")

    def __init__(self, metadata: Sequence[tuple[str, str]], timeout: float | None) -> None:
        self.metadata = tuple(metadata)
        self.deadline = None if timeout is None else time.monotonic() + timeout

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self.metadata

    def time_remaining(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    async def abort(self, code: grpc.StatusCode, message: str) -> None:
        raise CallAborted(code, message)


_PLAIN = _Call((), None)


class InProcessService:
    """The handlers ``inferflow serve`` runs for ``runtime``'s APIs, one per name in ``apis``."""

    apis = ("pointwise", "pairwise", "slatewise", "retrieve_model_score")

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._service = InferflowService(runtime)
        self._handlers = self._service.api_handlers()

    async def call(
        self,
        api: str,
        request: bytes,
        *,
        metadata: Sequence[tuple[str, str]] = (),
        client_deadline_s: float | None = None,
    ) -> bytes:
        """Handle one serialized request of ``api``; returns the serialized response.

        ``metadata`` are the request's gRPC metadata (e.g. ``("user-id", "42")``), ``client_deadline_s``
        the deadline the client sends, in seconds (None: the server's ``INFERFLOW_DEFAULT_DEADLINE_MS``).
        """
        handler = self._handlers.get(api)
        if handler is None:
            raise ValueError(f"unknown api {api!r}: one of {', '.join(self.apis)}")
        call = _PLAIN if not metadata and client_deadline_s is None else _Call(metadata, client_deadline_s)
        return await handler(request, call)

    async def drain(self, grace_s: float = 5.0) -> None:
        """Let the jobs requests left to run after their response (e.g. inference logging) finish within
        ``grace_s`` seconds; cancel the rest."""
        await self._service.drain_deferred(grace_s)
