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
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

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


def _score_rows(ids: Sequence[str], fixed: np.ndarray) -> bytes | None:
    """Every row's ``entity_scores`` field ``0x12 L1 | 0x12 L2 | 0x0a id_len id | cells`` laid out by numpy
    (one write per header byte, one for the ids, one for the cells), when the ids are ASCII and every
    length fits one byte; else None."""
    rows, stride = fixed.shape
    text = "".join(ids)
    if not rows or not text.isascii():
        return None
    id_len = np.fromiter(map(len, ids), dtype=np.int64, count=rows)
    size = id_len + 6 + stride  # the whole field
    if int(size.max()) - 2 >= 0x80:
        return None
    end = np.cumsum(size)
    start = end - size
    out = np.empty(int(end[-1]), dtype=np.uint8)
    out[start] = 0x12
    out[start + 1] = size - 2
    out[start + 2] = 0x12
    out[start + 3] = size - 4
    out[start + 4] = 0x0A
    out[start + 5] = id_len
    if len(text):
        out[np.repeat(start + 6 - (np.cumsum(id_len) - id_len), id_len) + np.arange(len(text))] = (
            np.frombuffer(text.encode("ascii"), dtype=np.uint8)
        )
    out[(start + 6 + id_len)[:, None] + np.arange(stride)] = fixed
    return out.tobytes()


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
    stride = k * cell
    parts = [_field(0x0A, s.encode("utf-8")) for s in schema]
    rows_bytes = _score_rows(ids, cells.reshape(rows, stride))
    if rows_bytes is not None:
        parts.append(rows_bytes)
    else:
        fixed, small = cells.tobytes(), _SMALL
        for i, ident in enumerate(ids):
            key = ident.encode("utf-8", "surrogateescape")
            inner = len(key) + 2 + stride  # ByteList size when the id's length fits one byte
            row = fixed[i * stride : (i + 1) * stride]
            if inner + 2 < 0x80:  # every length is one byte: write the three headers at once
                parts.append(
                    b"\x12"
                    + small[inner + 2]
                    + b"\x12"
                    + small[inner]
                    + b"\x0a"
                    + small[len(key)]
                    + key
                    + row
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
    try:
        if scores[0].WhichOneof("matrix_format") == "string_data":
            values, valid = codecs.parse_text_column([s.string_data.values[1] for s in scores], dtype)
            if not valid.all():
                raise WireError(f"numerix returned an unparsable score in row {int(np.argmin(valid))}")
            return values
        buf = b"".join(s.byte_data.values[1] for s in scores)
    except IndexError:
        raise WireError("numerix returned a score row without its [id, score] values") from None
    if len(buf) != rows * dtype.itemsize:
        raise WireError(f"numerix returned {len(buf)} score bytes for {rows} {_wire_name(dtype)} rows")
    return np.frombuffer(buf, dtype=dtype.numpy_dtype).copy()


def _raw_response_class() -> Any:
    """A shadow of ``NumerixResponseProto`` whose ``computation_scores`` are ``repeated bytes``: parsing a
    response with it gives every row's serialized ``Score`` in one C call, read by numpy below instead of
    through a wrapper object per row (~1 us each)."""
    fd = descriptor_pb2.FileDescriptorProto(
        name="inferflow_numerix/raw_response.proto", package="inferflow_numerix_raw", syntax="proto3"
    )
    bytes_t, message_t = (
        descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
        descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
    )
    repeated, optional = (
        descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
        descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
    )
    fd.message_type.add(name="RawError")
    data = fd.message_type.add(name="RawData")
    data.field.add(name="computation_scores", number=2, type=bytes_t, label=repeated)
    resp = fd.message_type.add(name="RawResponse")
    for name, number, type_name in (
        ("data", 1, ".inferflow_numerix_raw.RawData"),
        ("error", 2, ".inferflow_numerix_raw.RawError"),
    ):
        resp.field.add(name=name, number=number, type=message_t, label=optional, type_name=type_name)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("inferflow_numerix_raw.RawResponse"))


_RawResponse = _raw_response_class()


def _byte_scores(raw: bytes, rows: int, width: int) -> np.ndarray | None:
    """The scores' bytes ``(rows, width)`` of a byte-format response, read with numpy, when every row is
    ``Score{byte_data: [id, score]}`` with one-byte lengths (ids under ~120 bytes); else None."""
    try:
        msg = _RawResponse.FromString(raw)
    except DecodeError:
        return None
    if not msg.HasField("data") or msg.HasField("error"):
        return None
    scores = list(msg.data.computation_scores)
    if len(scores) != rows or not rows:
        return None
    lens = np.fromiter(map(len, scores), dtype=np.int64, count=rows)
    if lens.min() < 6 + width or lens.max() > 129:
        return None
    buf = np.frombuffer(b"".join(scores), dtype=np.uint8)
    start = np.cumsum(lens) - lens
    # 0x12 len | 0x0a id_len id | 0x0a width score
    id_len = buf[start + 3].astype(np.int64)
    at = start + 4 + id_len
    if not (
        (buf[start] == 0x12).all()
        and (buf[start + 1] == lens - 2).all()
        and (buf[start + 2] == 0x0A).all()
        and (at + 2 + width == start + lens).all()
        and (buf[at] == 0x0A).all()
        and (buf[at + 1] == width).all()
    ):
        return None
    return buf[(at + 2)[:, None] + np.arange(width)]


def decode_response_bytes(raw: bytes, rows: int, dtype: DataType) -> np.ndarray:
    """:func:`decode_response` of a serialized response; byte-format scores are read without a message
    object per row. Anything else (errors, text scores, long ids, malformed rows) takes the full parse."""
    cells = _byte_scores(raw, rows, dtype.itemsize)
    if cells is not None:
        return cells.view(dtype.numpy_dtype.newbyteorder("<")).reshape(rows).astype(dtype.numpy_dtype)
    try:
        resp = pb.NumerixResponseProto.FromString(raw)
    except DecodeError as exc:
        raise WireError(f"numerix returned a response that does not parse: {exc}") from None
    return decode_response(resp, rows, dtype)


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
