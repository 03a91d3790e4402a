"""The four APIs over HTTP, served on the HTTP side port next to /health and /metrics (issue 20).

``POST /v1/models/{model_config_id}/{pointwise|pairwise|slatewise|retrieve}`` with

* ``Content-Type: application/x-protobuf``: the gRPC method's request bytes, answered with the very bytes
  the gRPC method answers (the same handler makes them);
* ``Content-Type: application/json``: the JSON form (``json_api``), answered with decoded JSON.

A call runs through the same handler as gRPC (admission, budgets, the DAG, the response builder, metrics
with ``transport="http"``, request observers / inference logging) with an :class:`HttpCall` in place of the
gRPC context: headers are the metadata (``user-id``, ``authorization`` ...), the deadline comes from
``X-Request-Timeout-Ms`` or ``grpc-timeout`` (gRPC's format, e.g. ``250m``), the caller auth of
``INFERFLOW_AUTH_APIS`` applies per API (bearer token, or the client certificate on an mTLS side port).
A failure answers ``{"code": "<gRPC status name>", "message": ...}`` with the HTTP status that the one
mapping in ``service`` gives (INVALID_ARGUMENT 400, UNAUTHENTICATED 401, PERMISSION_DENIED 403,
RESOURCE_EXHAUSTED 429, UNAVAILABLE 503, DEADLINE_EXCEEDED 504 ...). ``GET /openapi.json`` documents it.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

import grpc

from ..errors import RequestError, clip
from . import json_api
from .auth import CallerAuth, UnaryFn
from .budget import Budget
from .openapi import openapi_document
from .service import InferflowService, _status_of, http_status

PATH = re.compile(r"^/v1/models/([^/]+)/(pointwise|pairwise|slatewise|retrieve)$")
API_OF_KIND = {
    "pointwise": "pointwise",
    "pairwise": "pairwise",
    "slatewise": "slatewise",
    "retrieve": "retrieve_model_score",
}
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_PROTOBUF_TYPES = {PROTOBUF, "application/protobuf", "application/octet-stream"}
_GRPC_TIMEOUT = re.compile(r"^(\d{1,8})([HMSmun])$")
_UNIT_S = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}

Response = tuple[int, str, bytes]


class CallAborted(Exception):
    """``HttpCall.abort``: the handler ended the call with a gRPC status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class HttpCall:
    """What the API handlers read from a gRPC context, for one HTTP request."""

    transport = "http"
    __slots__ = ("deadline", "headers", "peer")

    def __init__(
        self, headers: list[tuple[str, str]], deadline: float | None, peer: Mapping[str, Sequence[bytes]]
    ) -> None:
        self.headers = headers
        self.deadline = deadline
        self.peer = peer

    def time_remaining(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return self.headers

    def auth_context(self) -> Mapping[str, Sequence[bytes]]:
        return self.peer

    async def abort(self, code: grpc.StatusCode, message: str) -> None:
        raise CallAborted(code, message)


def request_timeout(headers: list[tuple[str, str]]) -> float | None:
    """Seconds from ``X-Request-Timeout-Ms`` (first) or ``grpc-timeout``; None when neither is sent."""
    for key, value in headers:
        if key == "x-request-timeout-ms":
            try:
                ms = float(value)
            except ValueError:
                ms = -1.0
            if not 0 < ms < 1e9:
                raise RequestError(f"X-Request-Timeout-Ms: {clip(value)} is not a positive number of ms")
            return ms / 1000.0
    for key, value in headers:
        if key == "grpc-timeout":
            m = _GRPC_TIMEOUT.match(value.strip())
            if m is None:
                raise RequestError(f"grpc-timeout: {clip(value)} is not like 250m (digits + H/M/S/m/u/n)")
            return int(m.group(1)) * _UNIT_S[m.group(2)]
    return None


def error_body(code: grpc.StatusCode, message: str) -> Response:
    body = json.dumps({"code": code.name, "message": message}, ensure_ascii=False).encode()
    return http_status(code), JSON, body


class HttpApi:
    """Routes ``/v1/models/...`` to the service's handlers; ``/openapi.json``."""

    def __init__(self, service: InferflowService, auth: CallerAuth) -> None:
        self.service = service
        self.settings = service.settings
        self.metrics = service.runtime.metrics
        raw = service.api_handlers()
        self.protobuf: dict[str, UnaryFn] = {api: auth.guard(api, fn) for api, fn in raw.items()}
        self.json: dict[str, UnaryFn] = {api: auth.guard(api, self._json(api, fn)) for api, fn in raw.items()}
        self._openapi: bytes | None = None

    def openapi(self) -> bytes:
        if self._openapi is None:
            self._openapi = json.dumps(openapi_document(), indent=1).encode()
        return self._openapi

    def _json(self, api: str, fn: UnaryFn) -> UnaryFn:
        encoding = self.settings.request_value_encoding

        async def handler(body: bytes, call: Any) -> bytes:
            model_id = call.model_id
            raw = await self.service._offload(
                len(body), json_api.request_bytes, api, model_id, body, encoding, Budget(self.settings)
            )
            if api != "retrieve_model_score":  # the Predict handlers write the JSON answer themselves
                call.answer_json = True
                return await fn(raw, call)
            answer = await fn(raw, call)
            return await self.service._offload(len(answer), json_api.retrieve_json, model_id, answer)

        return handler

    def _failed(self, api: str, start: float, exc: BaseException) -> Response:
        code, message = _status_of(exc)
        self.metrics.api_request(
            api, code.name, code.value[0], time.perf_counter() - start, 0, "", HttpCall.transport
        )
        return error_body(code, message)

    async def handle(
        self,
        path: str,
        headers: list[tuple[str, str]],
        body: bytes,
        peer: Mapping[str, Sequence[bytes]],
    ) -> Response:
        """One ``POST /v1/models/...``; ``headers`` are lower-cased (name, value) pairs."""
        start = time.perf_counter()
        m = PATH.match(path.split("?", 1)[0])
        if m is None:
            return 404, "text/plain", b"404 page not found"
        model_id, api = urllib.parse.unquote(m.group(1)), API_OF_KIND[m.group(2)]
        ctype = next((v for k, v in headers if k == "content-type"), "").split(";", 1)[0].strip().lower()
        if ctype == JSON:
            table, answer_type = self.json, JSON
        elif ctype in _PROTOBUF_TYPES:
            table, answer_type = self.protobuf, PROTOBUF
        else:
            message = f"Content-Type must be {JSON} or {PROTOBUF}, not {clip(ctype or 'none')}"
            return 415, JSON, json.dumps({"code": "INVALID_ARGUMENT", "message": message}).encode()
        try:
            timeout = request_timeout(headers)
        except RequestError as exc:
            return self._failed(api, start, exc)
        call = _ModelCall(headers, None if timeout is None else time.monotonic() + timeout, peer, model_id)
        try:
            if timeout is None:
                answer = await table[api](body, call)
            else:
                answer = await asyncio.wait_for(table[api](body, call), timeout)
        except CallAborted as exc:  # the handler's own answer (metrics already recorded)
            return error_body(exc.code, exc.message)
        except TimeoutError:
            return error_body(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded")
        except Exception as exc:  # before the handler ran (JSON form, auth) or building the JSON answer
            return self._failed(api, start, exc)
        return 200, answer_type, answer


class _ModelCall(HttpCall):
    """An :class:`HttpCall` that also carries the URL's model id (the JSON form needs it) and whether the
    handler answers JSON."""

    __slots__ = ("answer_json", "model_id")

    def __init__(
        self,
        headers: list[tuple[str, str]],
        deadline: float | None,
        peer: Mapping[str, Sequence[bytes]],
        model_id: str,
    ) -> None:
        super().__init__(headers, deadline, peer)
        self.model_id = model_id
        self.answer_json = False
