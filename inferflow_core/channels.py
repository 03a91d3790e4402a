"""gRPC channel options shared by the plugins' backend clients."""

from __future__ import annotations


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
