"""The HTTP side port (asyncio streams, no web framework): health and Prometheus metrics.

* ``GET /health/self``  -> 200 ``true`` (the Go version's body) while the process is up;
* ``GET /health/ready`` -> 200 once configs are loaded and plugins are up, 503 otherwise; the JSON body
  gives the details (config version, models, rejected models with their errors, plugin failures);
* ``GET /metrics``      -> the Prometheus exposition of this worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("inferflow.http")

_REASONS = {
    200: "OK",
    404: "Not Found",
    405: "Method Not Allowed",
    400: "Bad Request",
    503: "Service Unavailable",
}


class HttpSidePort:
    """A minimal HTTP/1.1 server: one request per connection, bounded reads."""

    def __init__(
        self,
        ready: Callable[[], tuple[bool, dict[str, Any]]],
        metrics: Callable[[], bytes],
        host: str = "0.0.0.0",
        port: int = 0,
        reuse_port: bool = False,
    ) -> None:
        self.ready = ready
        self.metrics = metrics
        self.host = host
        self.port = port
        self.reuse_port = reuse_port
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, reuse_port=self.reuse_port or None, limit=16 * 1024
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    def route(self, method: str, path: str) -> tuple[int, str, bytes]:
        path = path.split("?", 1)[0]
        if path == "/health/self":
            return 200, "text/plain; charset=utf-8", b"true"
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"method not allowed"
        if path == "/health/ready":
            ok, details = self.ready()
            return (200 if ok else 503), "application/json", json.dumps(details).encode()
        if path == "/metrics":
            return 200, "text/plain; version=0.0.4; charset=utf-8", self.metrics()
        return 404, "text/plain", b"404 page not found"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            if len(parts) < 2:
                status, ctype, body = 400, "text/plain", b"bad request"
                method = "GET"
            else:
                method = parts[0].upper()
                status, ctype, body = self.route(method, parts[1])
            header = (
                f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode()
            writer.write(header + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        except Exception:
            log.exception("http side port: request failed")
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
