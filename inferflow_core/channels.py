"""gRPC channel options and call fan-out shared by the plugins' backend clients."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import TypeVar

T = TypeVar("T")


def reconnect_options(min_ms: int, max_ms: int) -> list[tuple[str, int]]:
    """Channel options for a reconnect backoff starting at ``min_ms`` and growing to at most ``max_ms``.

    gRPC's defaults (1 s initial, x1.6, up to 120 s) leave answers degraded for seconds after a backend
    returns; a short bounded backoff reconnects within ``max_ms`` of its return. (``grpc.min_reconnect_
    backoff_ms`` is left alone: in gRPC core it is the connect timeout, and 100 ms would fail slow TLS
    handshakes.)
    """
    low = max(1, min(min_ms, max_ms))
    return [
        ("grpc.initial_reconnect_backoff_ms", low),
        ("grpc.max_reconnect_backoff_ms", max(low, max_ms)),
    ]


async def gather_calls(calls: Sequence[Awaitable[T]]) -> list[T | BaseException]:
    """Each call's result or exception, in order: several calls in parallel (``asyncio.gather`` with
    ``return_exceptions=True``), a single one awaited in the caller's task (no task and no event-loop
    round trip: a backend that answers in one batch, the usual case). The caller's own cancellation is
    raised, not returned."""
    if len(calls) != 1:
        return list(await asyncio.gather(*calls, return_exceptions=True))
    try:
        return [await calls[0]]
    except Exception as exc:
        return [exc]
