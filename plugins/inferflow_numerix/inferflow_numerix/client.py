"""gRPC client of a remote Numerix (``/numerix.Numerix/Compute``).

Rows over ``batch_size`` are split into batches sent in parallel. Each call carries the metadata
``numerix-caller-id`` (this service's APP_NAME) and ``numerix-auth-token`` (Go Inferflow validates the
token but never sends it; we send it when set). Channels are bound to an event loop, so the client keeps
one channel per running loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
import numpy as np

from inferflow_core.api import DataType, external_span, net

from ._proto import numerix_pb2_grpc as pb_grpc
from .settings import NumerixSettings
from .wire import (
    BYTE,
    WireError,
    decode_response,
    decode_response_bytes,
    encode_request,
    encode_request_bytes,
)

COMPUTE_METHOD = "/numerix.Numerix/Compute"
CALLER_ID_HEADER = "numerix-caller-id"
AUTH_TOKEN_HEADER = "numerix-auth-token"


@dataclass
class BatchFailure:
    start: int
    stop: int
    kind: str  # "numerix-error" (error response / bad answer) | "timeout" | "numerix-api-error"
    message: str


class NumerixClient:
    def __init__(self, settings: NumerixSettings) -> None:
        self.settings = settings
        self.metadata: tuple[tuple[str, str], ...] = ((CALLER_ID_HEADER, settings.caller_id),)
        if settings.auth_token:
            self.metadata += ((AUTH_TOKEN_HEADER, settings.auth_token),)
        self._credentials = None if settings.plaintext else settings.tls.credentials()  # files read once
        self._loop: asyncio.AbstractEventLoop | None = None
        self._channel: grpc.aio.Channel | None = None
        self._stub: pb_grpc.NumerixStub | None = None
        self._raw_compute: grpc.aio.UnaryUnaryMultiCallable | None = None

    def _get_stub(self) -> pb_grpc.NumerixStub:
        loop = asyncio.get_running_loop()
        if self._stub is None or self._loop is not loop:
            opts: list[tuple[str, int]] = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
            opts += net.reconnect_options(self.settings.reconnect_min_ms, self.settings.reconnect_max_ms)
            self._channel = net.open_channel(
                self.settings.target, self.settings.plaintext, self.settings.tls, opts, self._credentials
            )
            self._stub = pb_grpc.NumerixStub(self._channel)
            self._raw_compute = self._channel.unary_unary(COMPUTE_METHOD)  # bytes in, bytes out
            self._loop = loop
        return self._stub

    async def close(self) -> None:
        if self._channel is not None and self._loop is asyncio.get_running_loop():
            await self._channel.close()
        self._channel = self._stub = self._loop = self._raw_compute = None

    async def compute(
        self,
        compute_id: str,
        schema: Sequence[str],
        ids: Sequence[str],
        columns: Sequence[np.ndarray],
        dtype: DataType,
        timeout: float | None,
        fmt: str = BYTE,
    ) -> np.ndarray:
        """One call for all given rows. Raises WireError (error response) or grpc.aio.AioRpcError."""
        with external_span("numerix", "Compute", compute_id=compute_id, rows=len(ids)) as span:
            metadata = self.metadata + span.metadata  # W3C traceparent/tracestate when tracing is on
            if fmt == BYTE:  # the hot path: serialized directly (see wire.encode_request_bytes)
                raw = encode_request_bytes(compute_id, schema, ids, columns, dtype)
                self._get_stub()
                assert self._raw_compute is not None
                reply = await self._raw_compute(raw, timeout=timeout, metadata=metadata)
                return decode_response_bytes(reply, len(ids), dtype)
            request = encode_request(compute_id, schema, ids, columns, dtype, fmt)
            response = await self._get_stub().Compute(request, timeout=timeout, metadata=metadata)
            return decode_response(response, len(ids), dtype)

    async def compute_batched(
        self,
        compute_id: str,
        schema: Sequence[str],
        ids: Sequence[str],
        columns: Sequence[np.ndarray],
        dtype: DataType,
        timeout: float | None,
    ) -> tuple[np.ndarray, np.ndarray, list[BatchFailure]]:
        """All rows in parallel batches -> ``(scores, valid, failures)``; failed batches stay invalid."""
        rows, size = len(ids), self.settings.batch_size
        spans = [(a, min(a + size, rows)) for a in range(0, rows, size)]
        results = await net.gather_calls(
            [
                self.compute(compute_id, schema, ids[a:b], [c[a:b] for c in columns], dtype, timeout)
                for a, b in spans
            ]
        )
        scores = np.zeros(rows, dtype=dtype.numpy_dtype)
        valid = np.zeros(rows, dtype=bool)
        failures: list[BatchFailure] = []
        for (a, b), got in zip(spans, results, strict=True):
            if isinstance(got, np.ndarray):
                scores[a:b], valid[a:b] = got, True
            elif isinstance(got, WireError):
                failures.append(BatchFailure(a, b, "numerix-error", str(got)))
            elif isinstance(got, grpc.aio.AioRpcError):
                kind = "timeout" if got.code() == grpc.StatusCode.DEADLINE_EXCEEDED else "numerix-api-error"
                failures.append(BatchFailure(a, b, kind, f"{got.code().name}: {got.details()}"))
            elif isinstance(got, BaseException):
                raise got
        return scores, valid, failures
