"""An OnFS-protocol server over the embedded store: ``RetrieveFeatures`` and ``RetrieveDecodedResult``.

For remote-mode benchmarks, for tests of the client, and for teams without OnFS. Cells use the encodings of
reference 4.4 in the store's own types (a ``name@DataTypeX`` feature is converted to X, as OnFS quantises);
one row per requested key, in query order, carrying its keys; an unknown entity is a row of empty cells.
``INFERFLOW_ONFS_SERVE_TEST_SLEEP_MS`` (tests only) delays every answer.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence

import grpc
import numpy as np

from inferflow_core.api import DataType, DataTypeError, format_column, parse_dtype

from ._proto import retrieve_pb2 as pb
from .codec import encode_columns
from .frame import FeatureFrame, to_raw
from .store import LocalStore, StoreError

log = logging.getLogger("inferflow.onfs.server")
SERVICE = "retrieve.FeatureService"
SLEEP_ENV = "INFERFLOW_ONFS_SERVE_TEST_SLEEP_MS"


class FeatureService:
    """The two RPCs over one :class:`LocalStore`; optional caller-id / token check."""

    def __init__(self, store: LocalStore, caller_id: str = "", auth_token: str = "") -> None:
        self.store = store
        self.caller_id = caller_id
        self.auth_token = auth_token
        self.sleep_s = float(os.environ.get(SLEEP_ENV, "0") or 0) / 1000

    async def _lookup(
        self, query: pb.Query, context: grpc.aio.ServicerContext
    ) -> tuple[list[tuple[str, ...]], FeatureFrame, list[DataType], list[pb.FeatureSchema]]:
        meta = dict(context.invocation_metadata() or ())
        if self.auth_token and meta.get("online-feature-store-auth-token") != self.auth_token:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid online-feature-store-auth-token")
        if self.caller_id and meta.get("online-feature-store-caller-id") != self.caller_id:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "unknown online-feature-store-caller-id")
        if self.sleep_s:
            await asyncio.sleep(self.sleep_s)
        keys = [tuple(k.cols) for k in query.keys]
        width = len(query.keys_schema)
        if any(len(k) != width for k in keys):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"every key must have {width} columns")
        columns: list[tuple[str, DataType | None]] = []
        schemas = []
        for group in query.feature_groups:
            feats = []
            for label in group.feature_labels:
                name, _, suffix = label.rpartition("@") if "@" in label else (label, "", "")
                try:
                    columns.append((f"{group.label}:{name}", parse_dtype(suffix) if suffix else None))
                except DataTypeError as exc:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
                feats.append(pb.Feature(label=label, column_idx=len(columns) - 1))
            schemas.append(pb.FeatureSchema(feature_group_label=group.label, features=feats))
        try:
            table = self.store.table(query.entity_label, list(query.keys_schema))
            prepared = self.store.prepared(query.entity_label, list(query.keys_schema), columns)
            dtypes = [dt or table.dtype(name) for name, dt in columns]
        except (StoreError, DataTypeError) as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        return keys, prepared.take(table.positions(keys)), dtypes, schemas

    async def retrieve_features(self, query: pb.Query, context: grpc.aio.ServicerContext) -> bytes:
        keys, frame, dtypes, schemas = await self._lookup(query, context)
        head = pb.Result(
            entity_label=query.entity_label, keys_schema=query.keys_schema, feature_schemas=schemas
        )
        rows = encode_rows(keys, frame, dtypes)
        return head.SerializeToString() + b"".join(b"\x22" + _varint(len(r)) + r for r in rows)

    async def retrieve_decoded(self, query: pb.Query, context: grpc.aio.ServicerContext) -> pb.DecodedResult:
        keys, frame, dtypes, schemas = await self._lookup(query, context)
        texts = [format_column(*frame.column(j), dt) for j, dt in enumerate(dtypes)]
        rows = [
            pb.DecodedRow(keys=k, columns=list(c)) for k, c in zip(keys, _rows(texts, len(keys)), strict=True)
        ]
        return pb.DecodedResult(keys_schema=query.keys_schema, feature_schemas=schemas, rows=rows)

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


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if not value:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


def _key_bytes(key: tuple[str, ...]) -> bytes:
    parts = [k.encode() for k in key]
    return b"".join(b"\x0a" + _varint(len(p)) + p for p in parts)


def encode_rows(
    keys: Sequence[tuple[str, ...]], frame: FeatureFrame, dtypes: Sequence[DataType]
) -> list[bytes]:
    """Serialized ``Row`` messages. Rows whose fixed-width cells are all present are written straight from
    the numpy blocks (field headers are the same for every such row); the others go through protobuf."""
    n = frame.n
    cells = None
    complete = np.zeros(n, dtype=bool)
    blob, width = b"", 0
    if n and all(dt.is_fixed_width for dt in dtypes):
        pieces = []
        complete[:] = True
        for j, dt in enumerate(dtypes):
            values, valid = frame.column(j)
            raw = np.ascontiguousarray(to_raw(values, dt)).view(np.uint8).reshape(n, -1)
            header = np.frombuffer(b"\x12" + _varint(raw.shape[1]), dtype=np.uint8)
            pieces += [np.broadcast_to(header, (n, header.size)), raw]
            complete &= valid & (raw.shape[1] > 0)
        matrix = np.concatenate(pieces, axis=1)
        blob, width = matrix.tobytes(), matrix.shape[1]
    out = []
    for i, key in enumerate(keys):
        if complete[i]:
            out.append(_key_bytes(key) + blob[i * width : (i + 1) * width])
            continue
        if cells is None:
            cells = encode_columns(frame, dtypes)
        out.append(pb.Row(keys=key, columns=[c[i] for c in cells]).SerializeToString())
    return out


def _rows(columns: Sequence[Sequence[str]], n: int) -> list[tuple[str, ...]]:
    return list(zip(*columns, strict=True)) if columns else [() for _ in range(n)]


async def serve(
    data: str, port: int, host: str = "127.0.0.1", caller_id: str = "", auth_token: str = ""
) -> None:
    """Run until SIGTERM / SIGINT / cancellation."""
    import signal

    service = FeatureService(LocalStore(data), caller_id, auth_token)
    server = grpc.aio.server(
        options=[("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
    )
    server.add_generic_rpc_handlers((service.handler(),))
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    print(f"inferflow-onfs serving {data} on {host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop(1.0)
