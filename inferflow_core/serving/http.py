"""The HTTP side port (asyncio streams, no web framework): health and Prometheus metrics.

* ``GET /health/self``  -> 200 ``true`` (the Go version's body) while the process is up;
* ``GET /health/ready`` -> 200 once configs are loaded and plugins are up, 503 otherwise; the JSON body
  gives the details (config version, models, rejected models with their errors, plugin failures);
* ``GET /metrics``      -> the Prometheus exposition of this worker.

Optional TLS (``tls``: a callable giving the current server ``SSLContext``, so rotated certificates apply
to new connections) and access rules: ``/metrics`` and the ready details can be ``open``, need a bearer
token (``Authorization: Bearer <token>`` scoped for ``metrics`` / ``ready``), or be ``off`` (``/metrics``
404; ``/health/ready`` keeps its status code with a ``{"ready": ...}`` body). ``/health/self`` is always open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import Callable
from typing import Any

log = logging.getLogger("inferflow.http")

_REASONS = {
    200: "OK",
    401: "Unauthorized",
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
        tls: Callable[[], ssl.SSLContext] | None = None,
        allows: Callable[[str, str | None], bool] | None = None,
        metrics_access: str = "open",
        ready_details: str = "open",
    ) -> None:
        self.ready = ready
        self.metrics = metrics
        self.host = host
        self.port = port
        self.reuse_port = reuse_port
        self.tls = tls
        self.allows = allows or (lambda _scope, _authorization: False)
        self.metrics_access = metrics_access
        self.ready_details = ready_details
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

    def _granted(self, access: str, scope: str, authorization: str | None) -> bool:
        return access == "open" or (access == "token" and self.allows(scope, authorization))

    def route(self, method: str, path: str, authorization: str | None = None) -> tuple[int, str, bytes]:
        path = path.split("?", 1)[0]
        if path == "/health/self":
            return 200, "text/plain; charset=utf-8", b"true"
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"method not allowed"
        if path == "/health/ready":
            ok, details = self.ready()
            if not self._granted(self.ready_details, "ready", authorization):
                details = {"ready": ok}
            return (200 if ok else 503), "application/json", json.dumps(details).encode()
        if path == "/metrics" and self.metrics_access != "off":
            if not self._granted(self.metrics_access, "metrics", authorization):
                return 401, "text/plain", b"unauthorized: send Authorization: Bearer <token>"
            return 200, "text/plain; version=0.0.4; charset=utf-8", self.metrics()
        return 404, "text/plain", b"404 page not found"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self.tls is not None:
                await writer.start_tls(self.tls(), ssl_handshake_timeout=5.0)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split()
            if len(parts) < 2:
                status, ctype, body = 400, "text/plain", b"bad request"
                method = "GET"
            else:
                method = parts[0].upper()
                status, ctype, body = self.route(method, parts[1], _header(lines[1:], "authorization"))
            header = (
                f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode()
            writer.write(header + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
            ssl.SSLError,
        ):
            pass
        except Exception:
            log.exception("http side port: request failed")
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


def _header(lines: list[str], name: str) -> str | None:
    for line in lines:
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == name:
            return value.strip()
    return None
