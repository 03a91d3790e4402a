"""Numerix wire messages <-> numpy columns, shared by the client and ``inferflow-numerix serve``.

A request is ``schema = [id column, var1, var2 ...]`` plus one ``Score`` per row holding the row's cells
in schema order, either as text (``string_data``) or as little-endian bytes (``byte_data``, element type
``data_type``: ``fp32`` — Go Inferflow's only value — or ``fp64``). The response echoes each row's id and
adds its score: ``schema = [id column, "score"]``, ``computation_scores[i] = [id_i, score_i]`` in the
format of the request (text scores use the Go ``%v`` float format of the core converter).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from inferflow_core.api import DataType, DataTypeError, codecs

from ._proto import numerix_pb2 as pb

BYTE, STRING = "byte", "string"


class WireError(ValueError):
    """A message does not follow the protocol (wrong sizes, unknown data type, ragged rows ...)."""


def wire_dtype(name: str | None) -> DataType:
    """``fp32``/``fp64`` (any core spelling) -> DataType; absent means fp32 (what Go Inferflow sends)."""
    if not name:
        return DataType.FP32
    try:
        dt = codecs.parse_dtype(name)
    except DataTypeError:
        dt = DataType.UNKNOWN
    if dt not in (DataType.FP32, DataType.FP64):
        raise WireError(f"unsupported data_type {name!r}: use fp32 or fp64")
    return dt


def _wire_name(dt: DataType) -> str:
    return "fp64" if dt is DataType.FP64 else "fp32"


def _split(buf: bytes, width: int, rows: int) -> list[bytes]:
    return [buf[i : i + width] for i in range(0, rows * width, width)]


# ------------------------------------------------------------------------------------ client side
def encode_request(
    compute_id: str,
    schema: Sequence[str],
    ids: Sequence[str],
    columns: Sequence[np.ndarray],
    dtype: DataType,
    fmt: str = BYTE,
) -> pb.NumerixRequestProto:
    """Build a request; ``columns`` align with ``schema[1:]``, each a 1-D array of ``len(ids)`` values."""
    rows = len(ids)
    if fmt == BYTE:
        width = dtype.itemsize
        cells = [
            _split(np.ascontiguousarray(c, dtype=dtype.numpy_dtype).tobytes(), width, rows) for c in columns
        ]
        id_cells = [i.encode("utf-8", "surrogateescape") for i in ids]
        scores = [pb.Score(byte_data=pb.ByteList(values=row)) for row in zip(id_cells, *cells, strict=True)]
    else:
        texts = [codecs.format_column(c, np.ones(rows, dtype=bool), dtype) for c in columns]
        scores = [pb.Score(string_data=pb.StringList(values=row)) for row in zip(ids, *texts, strict=True)]
    data = pb.EntityScoreData(schema=list(schema), compute_id=compute_id, data_type=_wire_name(dtype))
    data.entity_scores.extend(scores)
    return pb.NumerixRequestProto(entity_score_data=data)


_SMALL = [codecs.varint(i) for i in range(0x80)]


def _field(tag: int, payload: bytes) -> bytes:
    return bytes((tag,)) + codecs.varint(len(payload)) + payload


def encode_request_bytes(
    compute_id: str, schema: Sequence[str], ids: Sequence[str], columns: Sequence[np.ndarray], dtype: DataType
) -> bytes:
    """The serialized ``byte_data`` request of :func:`encode_request`, written directly.

    Building 200 ``Score`` messages through the protobuf API costs ~600 us; here the fixed-width cells
    (tag, length, LE value) of all rows are laid out by numpy in one array and only the id cell and the
    three length prefixes are produced per row. Field numbers: EntityScoreData{schema 1, entity_scores 2,
    compute_id 3, data_type 4}, Score{byte_data 2}, ByteList{values 1}, NumerixRequestProto{1}.
    """
    rows, width, k = len(ids), dtype.itemsize, len(columns)
    cell = 2 + width
    cells = np.empty((rows, k, cell), dtype=np.uint8)
    cells[:, :, 0], cells[:, :, 1] = 0x0A, width
    for j, col in enumerate(columns):
        raw = np.ascontiguousarray(col, dtype=dtype.numpy_dtype).view(np.uint8)
        cells[:, j, 2:] = raw.reshape(rows, width)
    fixed, stride = cells.tobytes(), k * cell
    parts = [_field(0x0A, s.encode("utf-8")) for s in schema]
    small = _SMALL
    for i, ident in enumerate(ids):
        key = ident.encode("utf-8", "surrogateescape")
        inner = len(key) + 2 + stride  # ByteList size when the id's length fits one byte
        row = fixed[i * stride : (i + 1) * stride]
        if inner + 2 < 0x80:  # every length is one byte: write the three headers at once
            parts.append(
                b"\x12" + small[inner + 2] + b"\x12" + small[inner] + b"\x0a" + small[len(key)] + key + row
            )
        else:
            parts.append(_field(0x12, _field(0x12, _field(0x0A, key) + row)))
    if compute_id:
        parts.append(_field(0x1A, compute_id.encode("utf-8")))
    parts.append(_field(0x22, _wire_name(dtype).encode()))
    return _field(0x0A, b"".join(parts))


def decode_response(resp: pb.NumerixResponseProto, rows: int, dtype: DataType) -> np.ndarray:
    """Scores of a response, in request order. Error responses and malformed answers raise WireError."""
    which = resp.WhichOneof("response")
    if which == "error":
        raise WireError(resp.error.message or "numerix returned an error without a message")
    if which != "computation_score_data":
        raise WireError("numerix returned an empty response")
    scores = resp.computation_score_data.computation_scores
    if len(scores) != rows:
        raise WireError(f"numerix returned {len(scores)} scores for {rows} rows")
    if rows == 0:
        return np.zeros(0, dtype=dtype.numpy_dtype)
    if scores[0].WhichOneof("matrix_format") == "string_data":
        values, valid = codecs.parse_text_column([s.string_data.values[1] for s in scores], dtype)
        if not valid.all():
            raise WireError(f"numerix returned an unparsable score in row {int(np.argmin(valid))}")
        return values
    buf = b"".join(s.byte_data.values[1] for s in scores)
    if len(buf) != rows * dtype.itemsize:
        raise WireError(f"numerix returned {len(buf)} score bytes for {rows} {_wire_name(dtype)} rows")
    return np.frombuffer(buf, dtype=dtype.numpy_dtype).copy()


# ------------------------------------------------------------------------------------ server side
@dataclass
class DecodedRequest:
    compute_id: str
    id_name: str
    names: list[str]
    ids: list[Any]  # bytes (byte format) or str (string format), echoed back
    columns: dict[str, np.ndarray]
    dtype: DataType
    fmt: str
    rows: int


def decode_request(req: pb.NumerixRequestProto) -> DecodedRequest:
    data = req.entity_score_data
    schema = list(data.schema)
    if not schema:
        raise WireError("schema is empty: it must start with the id column")
    dtype = wire_dtype(data.data_type if data.HasField("data_type") else None)
    rows = len(data.entity_scores)
    formats = {s.WhichOneof("matrix_format") for s in data.entity_scores}
    if len(formats) > 1:
        raise WireError(f"rows mix matrix formats {sorted(map(str, formats))}")
    fmt = STRING if formats == {"string_data"} else BYTE
    cells = [s.string_data.values if fmt == STRING else s.byte_data.values for s in data.entity_scores]
    for i, row in enumerate(cells):
        if len(row) != len(schema):
            raise WireError(f"row {i} has {len(row)} values for a schema of {len(schema)} columns")
    by_column = list(zip(*cells, strict=True)) if rows else [() for _ in schema]
    columns: dict[str, np.ndarray] = {}
    for name, values in zip(schema[1:], by_column[1:], strict=True):
        columns[name] = _decode_column(name, values, dtype, fmt, rows)
    ids = list(by_column[0])
    return DecodedRequest(data.compute_id, schema[0], schema[1:], ids, columns, dtype, fmt, rows)


def _decode_column(name: str, values: Sequence, dtype: DataType, fmt: str, rows: int) -> np.ndarray:
    if fmt == STRING:
        parsed, valid = codecs.parse_text_column(list(values), dtype)
        if not valid.all():
            bad = int(np.argmin(valid))
            raise WireError(f"column {name!r} row {bad}: {values[bad]!r} is not a number")
        return parsed
    buf = b"".join(values)
    width = dtype.itemsize
    if len(buf) != rows * width:
        bad = next(i for i, v in enumerate(values) if len(v) != width)
        raise WireError(
            f"column {name!r} row {bad}: {len(values[bad])} bytes, "
            f"{_wire_name(dtype)} cells are {width} bytes"
        )
    return np.frombuffer(buf, dtype=dtype.numpy_dtype)


def encode_response(req: DecodedRequest, scores: np.ndarray) -> pb.NumerixResponseProto:
    data = pb.ComputationScoreData(schema=[req.id_name, "score"])
    if req.fmt == STRING:
        texts = codecs.format_column(scores, np.ones(req.rows, dtype=bool), req.dtype)
        rows = [
            pb.Score(string_data=pb.StringList(values=[i, t])) for i, t in zip(req.ids, texts, strict=True)
        ]
    else:
        buf = np.ascontiguousarray(scores, dtype=req.dtype.numpy_dtype).tobytes()
        cells = _split(buf, req.dtype.itemsize, req.rows)
        rows = [pb.Score(byte_data=pb.ByteList(values=[i, c])) for i, c in zip(req.ids, cells, strict=True)]
    data.computation_scores.extend(rows)
    return pb.NumerixResponseProto(computation_score_data=data)


def error_response(message: str) -> pb.NumerixResponseProto:
    return pb.NumerixResponseProto(error=pb.Error(message=message))
