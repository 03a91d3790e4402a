"""``transport="http"``: the same protobuf requests and responses, POSTed to the server's HTTP API
(``/v1/models/{model_config_id}/{pointwise|pairwise|slatewise|retrieve}``, ``application/x-protobuf``).

One kept-alive connection per calling thread (the async client calls it from worker threads, so
concurrent calls use several connections). The deadline travels as ``X-Request-Timeout-Ms``, metadata as
headers; a non-200 answer raises :class:`RPCError` with the gRPC status the server names.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import tempfile
import threading
from typing import Any

import grpc

from .._proto import inferflow_pb2, predict_pb2
from ._result import RPCError

KIND_OF_METHOD: dict[str, tuple[str, Any]] = {
    "InferPointWise": ("pointwise", predict_pb2.PointWiseResponse),
    "InferPairWise": ("pairwise", predict_pb2.PairWiseResponse),
    "InferSlateWise": ("slatewise", predict_pb2.SlateWiseResponse),
    "RetrieveModelScore": ("retrieve", inferflow_pb2.InferflowResponseProto),
}


def _ssl_context(tls: Any) -> ssl.SSLContext:
    if tls.server_name:
        raise ValueError("TLS.server_name is not supported with transport='http'")
    ctx = ssl.create_default_context(cadata=tls.root_certificates.decode() if tls.root_certificates else None)
    if tls.certificate_chain and tls.private_key:  # ssl loads a client certificate from files only
        with tempfile.TemporaryDirectory(prefix="inferflow-client-") as tmp:
            cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
            with open(cert, "wb") as fh:
                fh.write(tls.certificate_chain)
            with open(key, "wb") as fh:
                fh.write(tls.private_key)
            ctx.load_cert_chain(cert, key)
    return ctx


class HttpTransport:
    """Blocking calls over HTTP/1.1 keep-alive connections (one per thread)."""

    def __init__(self, target: str, tls: Any = None, max_message_bytes: int = 64 * 1024 * 1024) -> None:
        host, _, port = target.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"target must be HOST:PORT, not {target!r}")
        self.host, self.port = host.strip("[]"), int(port)
        self.ssl = _ssl_context(tls) if tls is not None else None
        self.max_message_bytes = max_message_bytes
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self.ssl is not None:
                conn = http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.ssl)
            else:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def call(self, method: str, request: Any, timeout: float | None, metadata: list[tuple[str, str]]) -> Any:
        kind, response_cls = KIND_OF_METHOD[method]
        body = request.SerializeToString()
        headers = {"Content-Type": "application/x-protobuf", **dict(metadata)}
        if timeout is not None:
            headers["X-Request-Timeout-Ms"] = f"{timeout * 1000:.0f}"
        path = f"/v1/models/{_quote(request.model_config_id)}/{kind}"
        for attempt in (0, 1):  # a kept-alive connection the server closed meanwhile: retry once
            conn = self._connection(timeout)
            fresh = conn.sock is None
            try:
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                if (resp.length or 0) > self.max_message_bytes:
                    self._drop()
                    raise RPCError(
                        method,
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"response of {resp.length} bytes is too large",
                    )
                data = resp.read()
                if resp.will_close:
                    self._drop()
                break
            except TimeoutError:
                self._drop()
                raise RPCError(method, grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded") from None
            except (http.client.HTTPException, ConnectionError, OSError) as exc:
                self._drop()
                if attempt or fresh:
                    raise RPCError(
                        method, grpc.StatusCode.UNAVAILABLE, f"{type(exc).__name__}: {exc}"
                    ) from None
        if resp.status != 200:
            raise _error(method, resp.status, data)
        return response_cls.FromString(data)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()


def _quote(model_id: str) -> str:
    from urllib.parse import quote

    return quote(model_id, safe="")


def _error(method: str, status: int, data: bytes) -> RPCError:
    try:
        doc = json.loads(data)
        code = grpc.StatusCode[doc["code"]]
        return RPCError(method, code, str(doc.get("message", "")))
    except (ValueError, KeyError, TypeError):
        text = data[:500].decode("utf-8", "replace")
        return RPCError(method, grpc.StatusCode.UNKNOWN, f"HTTP {status}: {text}")


class HttpStub:
    """Stub-like callables (``stub.InferPointWise(request, timeout=..., metadata=...)``) over HTTP."""

    def __init__(self, transport: HttpTransport) -> None:
        self.transport = transport

    def __getattr__(self, method: str) -> Any:
        if method not in KIND_OF_METHOD:
            raise AttributeError(method)

        def invoke(request: Any, timeout: float | None = None, metadata: Any = ()) -> Any:
            return self.transport.call(method, request, timeout, list(metadata or ()))

        return invoke


class AsyncHttpStub(HttpStub):
    """The same, awaited: each call runs in a worker thread on that thread's connection."""

    def __getattr__(self, method: str) -> Any:
        sync = super().__getattr__(method)

        async def invoke(request: Any, timeout: float | None = None, metadata: Any = ()) -> Any:
            import asyncio

            return await asyncio.to_thread(sync, request, timeout, metadata)

        return invoke
