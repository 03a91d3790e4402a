"""The HTTP side port (asyncio streams, no web framework): health and Prometheus metrics.

* ``GET /health/self``  -> 200 ``true`` (the Go version's body) while the process is up;
* ``GET /health/ready`` -> 200 once configs are loaded and plugins are up, 503 otherwise; the JSON body
  gives the details (config version, models, rejected models with their errors, plugin failures);
* ``GET /metrics``      -> the Prometheus exposition of this worker;
* ``POST /v1/models/{model_config_id}/{pointwise|pairwise|slatewise|retrieve}`` and ``GET /openapi.json``
  -> the HTTP API (``http_api.py``) when the server passes one.

HTTP/1.1 with keep-alive (HTTP/1.0 and ``Connection: close`` close after the answer); a body needs
``Content-Length`` (no chunked uploads: 411), at most ``max_body`` bytes (INFERFLOW_MAX_MESSAGE_BYTES, else
413 without reading it); headers at most 16 KiB; an idle connection is closed after ``IDLE_S``; beyond
``max_connections`` open connections a new one is answered 503 and closed.

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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .http_api import HttpApi

log = logging.getLogger("inferflow.http")

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    411: "Length Required",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    499: "Client Closed Request",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
HEAD_TIMEOUT_S = 5.0  # the first request's head, and a body once its head is in
IDLE_S = 60.0  # between requests on a kept-alive connection


_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 39\r\n"
    b"Connection: close\r\n\r\ntoo many connections to the HTTP port\r\n"
)


class _Reject(Exception):
    """A request the port answers at once and then closes the connection on."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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
        api: HttpApi | None = None,
        max_body: int = 16 * 1024 * 1024,
        max_connections: int = 1024,
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
        self.api = api
        self.max_body = max_body
        self.max_connections = max_connections
        self.connections = 0
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
        if path == "/openapi.json" and self.api is not None:
            return 200, "application/json", self.api.openapi()
        return 404, "text/plain", b"404 page not found"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            if self.connections > self.max_connections:
                with contextlib.suppress(
                    TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError
                ):
                    async with asyncio.timeout(
                        1.0
                    ):  # read the head: closing on unread data resets the answer
                        await reader.readuntil(b"\r\n\r\n")
                writer.write(_BUSY)
                await writer.drain()
                return
            if self.tls is not None:
                await writer.start_tls(self.tls(), ssl_handshake_timeout=5.0)
            peer = _peer_identities(writer)
            timeout = HEAD_TIMEOUT_S
            while await self._one(reader, writer, peer, timeout):
                timeout = IDLE_S
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
            self.connections -= 1
            writer.close()
            with contextlib.suppress(ConnectionError, OSError, ssl.SSLError):
                await writer.wait_closed()

    async def _one(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: dict, timeout: float
    ) -> bool:
        """Read and answer one request; True when the connection stays open for the next."""
        try:
            async with asyncio.timeout(timeout):  # cheaper than wait_for (no task per read)
                head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                raise
            return False  # the client closed between requests
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split()
        method = parts[0].upper() if parts else "GET"
        keep = len(parts) == 3 and parts[2] == "HTTP/1.1"
        try:
            if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                raise _Reject(400, "bad request")
            headers = _headers(lines[1:-2])
            if any(v.lower() == "close" for k, v in headers if k == "connection"):
                keep = False
            body = await self._body(reader, writer, headers)
            if method == "POST" and self.api is not None and parts[1].startswith("/v1/"):
                status, ctype, payload = await self.api.handle(parts[1], headers, body, peer)
            else:
                authorization = next((v for k, v in headers if k == "authorization"), None)
                status, ctype, payload = self.route(method, parts[1], authorization)
        except _Reject as exc:
            status, ctype, payload = exc.status, "text/plain; charset=utf-8", exc.message.encode()
            keep = False
        extra = b"" if keep else b"Connection: close\r\n"
        header = (
            f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(payload)}\r\n"
        ).encode()
        writer.write(header + extra + b"\r\n" + (b"" if method == "HEAD" else payload))
        await writer.drain()
        return keep

    async def _body(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, headers: list[tuple[str, str]]
    ) -> bytes:
        if any(k == "transfer-encoding" for k, _ in headers):
            raise _Reject(411, "send the body with Content-Length (chunked uploads are not accepted)")
        lengths = {v.strip() for k, v in headers if k == "content-length"}
        if not lengths:
            return b""
        if len(lengths) > 1 or not next(iter(lengths)).isdigit():
            raise _Reject(400, "bad Content-Length")
        size = int(next(iter(lengths)))
        if size > self.max_body:
            raise _Reject(
                413,
                f"request: body of {size} bytes exceeds the limit of {self.max_body} bytes "
                "(INFERFLOW_MAX_MESSAGE_BYTES)",
            )
        if not size:
            return b""
        if any(k == "expect" and v.lower() == "100-continue" for k, v in headers):
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # curl waits 1 s for it before a body > 1 KiB
        async with asyncio.timeout(HEAD_TIMEOUT_S + size / 1e6):
            return await reader.readexactly(size)


def _headers(lines: list[str]) -> list[tuple[str, str]]:
    """(lower-cased name, value) pairs; a line without a colon is a bad request."""
    out = []
    for line in lines:
        key, sep, value = line.partition(":")
        if not sep or not key or key != key.strip():
            raise _Reject(400, "bad header line")
        out.append((key.lower(), value.strip()))
    return out


def _peer_identities(writer: asyncio.StreamWriter) -> dict[str, list[bytes]]:
    """The verified client certificate's common name and SANs, as gRPC's auth context names them."""
    cert = writer.get_extra_info("peercert") or {}
    names: dict[str, list[bytes]] = {}
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                names.setdefault("x509_common_name", []).append(value.encode())
    for _kind, value in cert.get("subjectAltName", ()):
        names.setdefault("x509_subject_alternative_name", []).append(str(value).encode())
    return names
