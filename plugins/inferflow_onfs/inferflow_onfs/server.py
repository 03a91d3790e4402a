"""An OnFS-protocol server over the embedded store: ``RetrieveFeatures`` and ``RetrieveDecodedResult``.

For remote-mode benchmarks, for tests of the client, and for teams without OnFS. Cells use the encodings of
go-compatibility §4.4 in the store's own types (a ``name@DataTypeX`` feature is converted to X);
one row per requested key, in query order, carrying its keys; an unknown entity is a row of empty cells.
``INFERFLOW_ONFS_SERVE_TEST_SLEEP_MS`` (tests only) delays every answer.

Per query shape (entity, key schema, feature groups) the resolved columns, the response header and the row
templates are computed once; a call is then key lookup, one ``take`` and one numpy scatter of the values into
serialized rows (protobuf only for rows with missing cells or string features).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
from collections.abc import Sequence

import grpc
import numpy as np

from inferflow_core.api import DataType, DataTypeError, codecs, net
from inferflow_core.api import features as fs

from ._proto import retrieve_pb2 as pb
from .codec import encode_columns
from .store import LabelTable, LocalStore, StoreError
from .wire import RowTemplate, cell_widths, key_bytes, varint

log = logging.getLogger("inferflow.onfs.server")
SERVICE = "retrieve.FeatureService"
SLEEP_ENV = "INFERFLOW_ONFS_SERVE_TEST_SLEEP_MS"


class _Plan:
    """What a query shape (entity, key schema, feature groups) resolves to, computed once per shape."""

    __slots__ = ("dtypes", "frame", "head", "schemas", "table", "templates")

    def __init__(
        self, table: LabelTable, frame: fs.FeatureFrame, dtypes: list[DataType], schemas: list, head: bytes
    ):
        self.table, self.frame, self.schemas, self.head = table, frame, schemas, head
        self.dtypes = tuple(dtypes)
        self.templates: dict[tuple[int, ...], RowTemplate] = {}


def _same(sent: object, expected: str) -> bool:
    """Constant-time token comparison (a missing or binary value never matches)."""
    return isinstance(sent, str) and hmac.compare_digest(sent.encode(), expected.encode())


class FeatureService:
    """The two RPCs over one :class:`LocalStore`; optional caller-id / token check."""

    def __init__(self, store: LocalStore, caller_id: str = "", auth_token: str = "") -> None:
        self.store = store
        self.caller_id = caller_id
        self.auth_token = auth_token
        self.sleep_s = float(os.environ.get(SLEEP_ENV, "0") or 0) / 1000
        self._plans: dict[tuple, _Plan] = {}

    async def _check(self, context: grpc.aio.ServicerContext) -> None:
        if not (self.auth_token or self.caller_id):
            return
        meta = dict(context.invocation_metadata() or ())
        sent = meta.get("online-feature-store-auth-token")
        if self.auth_token and not _same(sent, self.auth_token):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid online-feature-store-auth-token")
        if self.caller_id and meta.get("online-feature-store-caller-id") != self.caller_id:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "unknown online-feature-store-caller-id")

    async def _plan(self, query: pb.Query, context: grpc.aio.ServicerContext) -> _Plan:
        shape = (
            query.entity_label,
            tuple(query.keys_schema),
            tuple((g.label, tuple(g.feature_labels)) for g in query.feature_groups),
        )
        got = self._plans.get(shape)
        if got is not None:
            return got
        columns: list[tuple[str, DataType | None]] = []
        schemas = []
        for group in query.feature_groups:
            feats = []
            for label in group.feature_labels:
                try:
                    name, typed = fs.split_typed_feature(label)
                except ValueError as exc:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
                columns.append((f"{group.label}:{name}", typed))
                feats.append(pb.Feature(label=label, column_idx=len(columns) - 1))
            schemas.append(pb.FeatureSchema(feature_group_label=group.label, features=feats))
        try:
            table = self.store.table(query.entity_label, list(query.keys_schema))
            prepared = self.store.prepared(query.entity_label, list(query.keys_schema), columns)
            dtypes = [dt or table.dtype(name) for name, dt in columns]
        except (StoreError, DataTypeError) as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        head = pb.Result(
            entity_label=query.entity_label, keys_schema=query.keys_schema, feature_schemas=schemas
        ).SerializeToString()
        plan = self._plans[shape] = _Plan(table, prepared, dtypes, schemas, head)
        return plan

    async def _lookup(
        self, query: pb.Query, context: grpc.aio.ServicerContext
    ) -> tuple[list[tuple[str, ...]], fs.FeatureFrame, _Plan]:
        await self._check(context)
        if self.sleep_s:
            await asyncio.sleep(self.sleep_s)
        keys = [tuple(k.cols) for k in query.keys]
        width = len(query.keys_schema)
        if any(len(k) != width for k in keys):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"every key must have {width} columns")
        plan = await self._plan(query, context)
        return keys, plan.frame.take(plan.table.positions(keys)), plan

    async def retrieve_features(self, query: pb.Query, context: grpc.aio.ServicerContext) -> bytes:
        keys, frame, plan = await self._lookup(query, context)
        return plan.head + b"".join(encode_rows(keys, frame, plan.dtypes, plan.templates))

    async def retrieve_decoded(self, query: pb.Query, context: grpc.aio.ServicerContext) -> pb.DecodedResult:
        keys, frame, plan = await self._lookup(query, context)
        texts = [codecs.format_column(*frame.column(j), dt) for j, dt in enumerate(plan.dtypes)]
        rows = [
            pb.DecodedRow(keys=k, columns=list(c)) for k, c in zip(keys, _rows(texts, len(keys)), strict=True)
        ]
        return pb.DecodedResult(keys_schema=query.keys_schema, feature_schemas=plan.schemas, rows=rows)

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "RetrieveFeatures": grpc.unary_unary_rpc_method_handler(
                    self.retrieve_features, pb.Query.FromString, None
                ),
                "RetrieveDecodedResult": grpc.unary_unary_rpc_method_handler(
                    self.retrieve_decoded, pb.Query.FromString, pb.DecodedResult.SerializeToString
                ),
            },
        )


def _fixed_bytes(frame: fs.FeatureFrame, dtypes: Sequence[DataType]) -> tuple[np.ndarray, list[int]] | None:
    """All values of an all-fixed-width frame as ``(n, bytes)`` uint8 in feature order, and cell widths."""
    if not all(b.fixed for b in frame.blocks):
        return None
    n = frame.n
    widths = cell_widths(tuple(dtypes), frame.slots)
    parts = [
        np.ascontiguousarray(fs.to_raw(b.values, b.dtype)).view(np.uint8).reshape(n, -1) for b in frame.blocks
    ]
    raw = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
    if raw.shape[1] != sum(widths):
        return None
    return raw, widths


def encode_rows(
    keys: Sequence[tuple[str, ...]],
    frame: fs.FeatureFrame,
    dtypes: Sequence[DataType],
    templates: dict[tuple[int, ...], RowTemplate] | None = None,
) -> list[bytes]:
    """Serialized ``rows`` fields (tag, length, ``Row``). Rows whose cells are all present are written from
    one numpy scatter of the frame's blocks (:class:`RowTemplate`); the others go through protobuf."""
    n = frame.n
    out: list[bytes] = []
    fixed = _fixed_bytes(frame, dtypes) if n else None
    complete = np.zeros(n, dtype=bool)
    blob, size = b"", 0
    if fixed is not None and RowTemplate.usable(dtypes, fixed[1]):
        raw, widths = fixed
        key = tuple(widths)
        template = templates.get(key) if templates is not None else None
        if template is None:
            template = RowTemplate(dtypes, widths)
            if templates is not None:
                templates[key] = template
        complete[:] = True
        for block in frame.blocks:
            complete &= block.valid.all(axis=1)
        blob, size = template.encode(raw).tobytes(), template.size
    cells = None
    for i, key_ in enumerate(keys):
        if complete[i]:
            kb = key_bytes(key_)
            out.append(b"\x22" + varint(len(kb) + size) + kb + blob[i * size : (i + 1) * size])
            continue
        if cells is None:
            cells = encode_columns(frame, dtypes)
        row = pb.Row(keys=key_, columns=[c[i] for c in cells]).SerializeToString()
        out.append(b"\x22" + varint(len(row)) + row)
    return out


def _rows(columns: Sequence[Sequence[str]], n: int) -> list[tuple[str, ...]]:
    return list(zip(*columns, strict=True)) if columns else [() for _ in range(n)]


async def serve(
    data: str,
    port: int,
    host: str = "127.0.0.1",
    caller_id: str = "",
    auth_token: str = "",
    tls: net.ServerTls | None = None,
    metrics_port: int | None = None,
    grace: float = 5.0,
) -> None:
    """Run until SIGTERM / SIGINT / cancellation (graceful: health NOT_SERVING, in-flight calls get
    ``grace`` s); over TLS (mTLS with a client CA) when ``tls`` is given. grpc.health.v1, reflection and
    ``/metrics`` (on ``metrics_port``) come from the core's :func:`net.serve_grpc_service`."""
    service = FeatureService(LocalStore(data), caller_id, auth_token)

    def ready(bound: int, metrics_bound: int | None) -> None:
        extra = f", metrics on {host}:{metrics_bound}" if metrics_bound is not None else ""
        print(f"inferflow-onfs serving {data} on {host}:{bound}{extra}", flush=True)

    await net.serve_grpc_service(
        lambda server: server.add_generic_rpc_handlers((service.handler(),)),
        [SERVICE],
        port=port,
        host=host,
        tls=tls,
        metrics_port=metrics_port,
        grace=grace,
        options=[("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)],
        on_ready=ready,
    )
