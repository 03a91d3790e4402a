"""gRPC channel options shared by the plugins' backend clients."""

from __future__ import annotations


def reconnect_options(min_ms: int, max_ms: int) -> list[tuple[str, int]]:
    """Channel options for a reconnect backoff between ``min_ms`` and ``max_ms``.

    gRPC's defaults (1 s initial, x1.6, up to 120 s) leave answers degraded for seconds after a backend
    returns; a short bounded backoff reconnects within ``max_ms`` of its return.
    """
    low = max(1, min(min_ms, max_ms))
    return [
        ("grpc.initial_reconnect_backoff_ms", low),
        ("grpc.min_reconnect_backoff_ms", low),
        ("grpc.max_reconnect_backoff_ms", max(low, max_ms)),
    ]
