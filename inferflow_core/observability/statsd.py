"""A DogStatsD client over plain UDP: fire-and-forget, never blocking the request path.

Lines (``name:value|c|@rate|#tag:v,...``) are appended to a buffer; a datagram of several lines
(newline-separated, as DogStatsD accepts) is sent when the buffer would exceed ~1.4 KB, and a daemon
thread flushes whatever is buffered every ``flush_interval`` seconds. The socket is non-blocking: a
full socket buffer or an unreachable agent drops the datagram (counted in ``dropped``), never raises.

Configured from Go's env vars (go-compatibility §8.1): ``TELEGRAF_HOST``, ``TELEGRAF_PORT`` (default 8125),
``METRIC_SAMPLING_RATE`` (default 1), global tags ``env:<APP_ENV>``, ``service:<APP_NAME>``.
"""

from __future__ import annotations

import os
import random
import socket
import threading
from collections.abc import Mapping, Sequence

MAX_DATAGRAM = 1432  # fits a 1500-byte MTU with IP/UDP headers


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"


def _resolve(host: str, port: int) -> tuple[socket.AddressFamily, tuple]:
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        return info[0], info[4]
    except OSError:  # unresolvable now: datagrams to it are dropped (the service keeps running)
        return socket.AF_INET, ("0.0.0.0", 0)


class StatsdClient:
    def __init__(
        self,
        host: str,
        port: int = 8125,
        global_tags: Sequence[str] = (),
        sample_rate: float = 1.0,
        flush_interval: float = 0.2,
    ) -> None:
        family, self.address = _resolve(host, int(port))  # once: sendto must never wait on DNS
        self.global_tags = ",".join(global_tags)
        self.sample_rate = float(sample_rate)
        self._rate_suffix = "" if self.sample_rate >= 1.0 else f"|@{_fmt(self.sample_rate)}"
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._lock = threading.Lock()
        self._buf: list[str] = []
        self._size = 0
        self.dropped = 0
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._flusher, args=(flush_interval,), daemon=True)
        self._thread.start()

    ENV_VARS = ("TELEGRAF_HOST", "TELEGRAF_PORT", "METRIC_SAMPLING_RATE")  # what from_env reads

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StatsdClient | None:
        """A client when ``TELEGRAF_HOST`` is set, else None."""
        env = os.environ if env is None else env
        host = env.get("TELEGRAF_HOST", "").strip()
        if not host:
            return None
        tags = [f"env:{env.get('APP_ENV', '')}", f"service:{env.get('APP_NAME', 'inferflow')}"]
        try:
            rate = float(env.get("METRIC_SAMPLING_RATE") or 1.0)
        except ValueError:
            rate = 1.0
        return cls(host, int(env.get("TELEGRAF_PORT") or 8125), tags, rate)

    # -- metric kinds -------------------------------------------------------------------------------
    def count(self, name: str, value: float, tags: Sequence[str] = ()) -> None:
        self._emit(name, value, "c", tags)

    def timing(self, name: str, ms: float, tags: Sequence[str] = ()) -> None:
        self._emit(name, ms, "ms", tags)

    def histogram(self, name: str, value: float, tags: Sequence[str] = ()) -> None:
        self._emit(name, value, "h", tags)

    def gauge(self, name: str, value: float, tags: Sequence[str] = ()) -> None:
        self._emit(name, value, "g", tags)

    def _emit(self, name: str, value: float, kind: str, tags: Sequence[str]) -> None:
        if self.sample_rate < 1.0 and random.random() >= self.sample_rate:
            return
        tag_text = ",".join(tags)
        if self.global_tags:
            tag_text = f"{tag_text},{self.global_tags}" if tag_text else self.global_tags
        line = f"{name}:{_fmt(value)}|{kind}{self._rate_suffix}" + (f"|#{tag_text}" if tag_text else "")
        with self._lock:
            if self._size + len(line) + 1 > MAX_DATAGRAM and self._buf:
                payload = "\n".join(self._buf)
                self._buf, self._size = [], 0
            else:
                payload = ""
            self._buf.append(line)
            self._size += len(line) + 1
        if payload:
            self._send(payload)

    # -- sending --------------------------------------------------------------------------------------
    def flush(self) -> None:
        with self._lock:
            if not self._buf:
                return
            payload = "\n".join(self._buf)
            self._buf, self._size = [], 0
        self._send(payload)

    def _send(self, payload: str) -> None:
        try:
            self._sock.sendto(payload.encode("utf-8"), self.address)
        except OSError:  # BlockingIOError, unreachable, DNS failure: drop, never block or raise
            self.dropped += 1

    def _flusher(self, interval: float) -> None:
        while not self._closed.wait(interval):
            self.flush()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self.flush()
        self._sock.close()
