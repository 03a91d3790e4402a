"""OnFS gRPC client backend: ``/retrieve.FeatureService/RetrieveFeatures`` (ref. 5.2/7).

One long-lived ``grpc.aio`` channel per target (and event loop); unique keys are split into batches of
``EXTERNAL_SERVICE_ONFS_FS_BATCH_SIZE`` sent in parallel, each bounded by
``EXTERNAL_SERVICE_ONFS_FS_DEAD_LINE``
and by the request's remaining budget. Results are matched to keys by the keys each row carries (positional
only when a store sends none); a short or malformed batch is a contained failure of that batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import grpc
import numpy as np

from inferflow_core.api import external_span, features, net

from ._proto import retrieve_pb2 as pb
from .backends import FetchOutcome, FetchRequest
from .codec import decode_rows
from .settings import OnfsSettings
from .wire import RowTemplate, cell_widths, encode_keys, rows_region

METHOD = "/retrieve.FeatureService/RetrieveFeatures"
CALLER_ID_HEADER = "online-feature-store-caller-id"
AUTH_TOKEN_HEADER = "online-feature-store-auth-token"
KIND_TIMEOUT = "featurestore-api-request-timeout"
KIND_CANCELLED = "featurestore-api-request-cancelled"
KIND_ERROR = "featurestore-api-error"
KIND_MALFORMED = "featurestore-malformed-response"
KIND_SHORT = "featurestore-short-response"
_OPTIONS = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]


class MalformedResponse(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def classify(exc: BaseException) -> tuple[str, str]:
    """Error kind (Go Inferflow's metric error types) and message of a failed batch."""
    if isinstance(exc, MalformedResponse):
        return exc.kind, str(exc)
    if isinstance(exc, grpc.aio.AioRpcError):
        code = exc.code()
        kind = {grpc.StatusCode.DEADLINE_EXCEEDED: KIND_TIMEOUT, grpc.StatusCode.CANCELLED: KIND_CANCELLED}
        return kind.get(code, KIND_ERROR), f"{code.name}: {exc.details()}"
    if isinstance(exc, TimeoutError):
        return KIND_TIMEOUT, "deadline exceeded before the call was made"
    return KIND_ERROR, f"{type(exc).__name__}: {exc}"


class OnfsClient:
    """The remote backend. Safe to share between components; channels are created lazily per loop."""

    name = "onfs"

    def __init__(self, settings: OnfsSettings) -> None:
        self.target = settings.target
        self.plaintext = settings.fs_plaintext
        self.tls = settings.tls
        self._credentials = None if self.plaintext else self.tls.credentials()  # files read once
        self.deadline_s = settings.deadline_ms / 1000
        self.batch_size = settings.batch_size
        self.options = _OPTIONS + net.reconnect_options(settings.reconnect_min_ms, settings.reconnect_max_ms)
        self.metadata = ((CALLER_ID_HEADER, settings.caller_id), (AUTH_TOKEN_HEADER, settings.caller_token))
        self._channels: dict[int, tuple[asyncio.AbstractEventLoop, grpc.aio.Channel, object]] = {}
        self._templates: dict[FetchRequest, bytes] = {}
        self._rows: dict[FetchRequest, RowTemplate] = {}

    def check(self, request: FetchRequest) -> None:
        if self.batch_size <= 0:
            raise ValueError(f"EXTERNAL_SERVICE_ONFS_FS_BATCH_SIZE must be > 0, got {self.batch_size}")

    def _method(self):
        loop = asyncio.get_running_loop()
        got = self._channels.get(id(loop))
        if got is not None and got[0] is loop:
            return got[2]
        channel = net.open_channel(self.target, self.plaintext, self.tls, self.options, self._credentials)
        # raw bytes both ways: the query is assembled from a cached prefix, the answer is decoded by
        # RowTemplate when it has the expected shape (protobuf parsing only as the general path)
        method = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        self._channels = {k: v for k, v in self._channels.items() if not v[0].is_closed()}
        self._channels[id(loop)] = (loop, channel, method)
        return method

    async def close(self) -> None:
        for loop, channel, _ in list(self._channels.values()):
            if loop is asyncio.get_running_loop():
                await channel.close()
        self._channels.clear()

    def _template(self, request: FetchRequest) -> bytes:
        """The serialized query without keys; each batch appends its keys (protobuf messages concatenate)."""
        got = self._templates.get(request)
        if got is None:
            groups = [pb.FeatureGroup(label=g, feature_labels=f) for g, f in request.groups]
            query = pb.Query(
                entity_label=request.label, feature_groups=groups, keys_schema=request.keys_schema
            )
            got = self._templates[request] = query.SerializeToString()
        return got

    async def fetch(
        self, request: FetchRequest, keys: list[tuple[str, ...]], timeout: float | None
    ) -> FetchOutcome:
        size = self.batch_size
        if size <= 0:
            raise ValueError(f"EXTERNAL_SERVICE_ONFS_FS_BATCH_SIZE must be > 0, got {size}")
        bound = self.deadline_s if timeout is None else min(self.deadline_s, timeout)
        starts = list(range(0, len(keys), size))
        calls = [self._call(request, keys[s : s + size], bound) for s in starts]
        results = await net.gather_calls(calls)
        parts: list[tuple[np.ndarray, features.FeatureFrame]] = []
        failures: list[tuple[str, str]] = []
        for start, res in zip(starts, results, strict=True):
            if isinstance(res, asyncio.CancelledError):
                raise res
            if isinstance(res, BaseException):
                failures.append(classify(res))
                continue
            pos, frame, problem = res
            parts.append((pos + start, frame))
            if problem:
                failures.append(problem)
        frame = features.assemble(request.dtypes, len(keys), parts)
        failed_all = bool(starts) and not parts
        return FetchOutcome(frame, failures, failed_all, calls=len(starts))

    async def _call(
        self, request: FetchRequest, batch: list[tuple[str, ...]], timeout: float
    ) -> tuple[np.ndarray, features.FeatureFrame, tuple[str, str] | None]:
        if timeout <= 0:
            raise TimeoutError("no time left for the OnFS call")
        keys = encode_keys(batch)
        body = self._template(request) + keys.body
        with external_span("featurestore", "RetrieveFeatures", keys=len(batch)) as span:
            metadata = self.metadata + span.metadata  # W3C traceparent/tracestate when tracing is on
            raw: bytes = await self._method()(body, timeout=timeout, metadata=metadata)
        template = self._rows.get(request)
        if template is not None:
            start = rows_region(raw)
            if start is not None:
                frame = template.decode(memoryview(raw)[start:], keys)
                if frame is not None:
                    return np.arange(len(batch), dtype=np.intp), frame, None
        pos, frame, problem = match_rows(request, batch, pb.Result.FromString(raw))
        if problem is None and len(pos) == len(batch):
            self._learn(request, frame)
        return pos, frame, problem

    def _learn(self, request: FetchRequest, frame: features.FeatureFrame) -> None:
        """Remember the cell widths of a fully answered batch: later batches try the template first."""
        dtypes = request.dtypes
        if not all(b.fixed and b.valid.all() for b in frame.blocks):
            return
        widths = cell_widths(dtypes, frame.slots)
        if RowTemplate.usable(dtypes, widths):
            current = self._rows.get(request)
            if current is None or current.widths != tuple(widths):
                self._rows[request] = RowTemplate(dtypes, widths)


def match_rows(
    request: FetchRequest, batch: Sequence[tuple[str, ...]], result: pb.Result
) -> tuple[np.ndarray, features.FeatureFrame, tuple[str, str] | None]:
    """Rows -> (positions in ``batch``, decoded frame, contained problem or None)."""
    rows = result.rows
    nfeat = len(request.specs)
    cols_per_row = [r.columns for r in rows]
    bad = [len(c) for c in cols_per_row if len(c) != nfeat]
    if bad:
        raise MalformedResponse(
            KIND_MALFORMED, f"a row has {bad[0]} columns, {nfeat} features were asked for"
        )
    problem = None
    if rows and all(len(r.keys) for r in rows):
        want = {k: i for i, k in enumerate(batch)}
        pos = np.fromiter((want.get(tuple(r.keys), -1) for r in rows), dtype=np.intp, count=len(rows))
        known = pos >= 0
        if not known.all():
            problem = (KIND_MALFORMED, f"{int((~known).sum())} rows carry keys that were not asked for")
            cols_per_row = [c for c, k in zip(cols_per_row, known.tolist(), strict=True) if k]
            pos = pos[known]
        if len(np.unique(pos)) < len(batch):
            problem = problem or (
                KIND_SHORT,
                f"{len(batch) - len(np.unique(pos))} of {len(batch)} keys unanswered",
            )
    elif len(rows) != len(batch):
        raise MalformedResponse(KIND_SHORT, f"got {len(rows)} rows without keys for {len(batch)} keys")
    else:
        pos = np.arange(len(rows), dtype=np.intp)
    return pos, decode_rows(cols_per_row, request.dtypes), problem
