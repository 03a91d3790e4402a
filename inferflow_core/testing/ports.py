"""Loopback ports for test servers: a free one, and one that accepts connections and never answers."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator


def pick_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A loopback port that accepts TCP connections and never answers (no HTTP/2, no bytes): a backend
    whose calls hang until their deadline, e.g. the "slow" mode of ``ComponentConformance``. (An
    unroutable address is no substitute: some networks answer it at once.)"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield int(s.getsockname()[1])
