"""The three log formats of reference 7.4, each an object registered through ``register_log_formats``.

A format turns a :class:`LogTable` into chunks of at most ``batch_size`` rows, each chunk the
``features`` of one ``InferflowLog`` (proto: one blob per entity; arrow / parquet: one blob per chunk),
and decodes those blobs back into raw cells for ``inferflow logs read`` and the tests.

Differences from the anchor (reference 10.D1): Arrow fields are declared nullable (the anchor declared
them non-nullable but wrote nulls); a row that cannot be encoded (a proto variable-length value over
65535 bytes) is dropped alone and counted instead of dropping the whole request.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from inferflow_core.api import DataType

from .schema import FORMAT_CODES, SchemaEntry
from .table import LogTable, fixed_binary

MAX_VAR_LEN = 0xFFFF
PARQUET_COLUMN = "Features"  # parquet-go's column name for the Go row struct's field ``Features``
PARQUET_MAP = pa.map_(pa.int64(), pa.field("value", pa.binary(), nullable=False))
_MISSING_STRING = b"0.0"  # reference 4.5: a missing String/BYTES value in the proto log


@dataclass
class Chunk:
    entities: list[str]
    features: list[bytes]


def _chunks(table: LogTable, batch_size: int) -> list[LogTable]:
    size = max(1, batch_size)
    return [
        table.slice(i, min(i + size, table.rows)) for i in range(0, max(table.rows, 1), size) if table.rows
    ]


class ProtoFormat:
    """Per entity: flag byte, then fixed-size scalars raw, variable values uint16-LE length-prefixed."""

    name = "proto"
    code = FORMAT_CODES["proto"]

    def bad_rows(self, table: LogTable) -> np.ndarray:
        """Rows holding a variable-length value too long for the uint16 length prefix."""
        bad = np.zeros(table.rows, dtype=bool)
        for entry, col in zip(table.entries, table.columns, strict=True):
            if _is_var(entry.dtype) and table.rows:
                lengths = pc.binary_length(col).to_numpy(zero_copy_only=False)
                bad |= np.nan_to_num(lengths.astype(np.float64), nan=0) > MAX_VAR_LEN
        return bad

    def encode(self, table: LogTable, batch_size: int) -> list[Chunk]:
        if not table.rows:
            return []
        rows_bytes = self.encode_rows(table)
        size = max(1, batch_size)
        return [
            Chunk(table.entities[i : i + size], rows_bytes[i : i + size]) for i in range(0, table.rows, size)
        ]

    def encode_rows(self, table: LogTable) -> list[bytes]:
        n = table.rows
        flags: np.ndarray = np.asarray(table.valid_matrix().all(axis=1), dtype=np.uint8)
        pieces: list[pa.Array] = []
        group: list[np.ndarray] = [flags[:, None]]  # consecutive fixed-size cells, joined with numpy

        def flush() -> None:
            if group:
                block = np.ascontiguousarray(np.hstack(group))
                pieces.append(fixed_binary(block.tobytes(), n, block.shape[1], None))
                group.clear()

        for entry, col in zip(table.entries, table.columns, strict=True):
            if _is_var(entry.dtype):
                flush()
                fill = _MISSING_STRING if entry.dtype is DataType.STRING else b""
                filled = pc.fill_null(col, pa.scalar(fill, pa.binary())) if col.null_count else col
                lengths = pc.binary_length(filled).to_numpy(zero_copy_only=False).astype("<u2")
                pieces.append(fixed_binary(lengths.tobytes(), n, 2, None))
                pieces.append(filled)
            else:
                group.append(_fixed_block(col, entry.dtype.itemsize))
        flush()
        joined = pieces[0] if len(pieces) == 1 else pc.binary_join_element_wise(*pieces, b"")
        return joined.to_pylist()

    def decode(self, features: list[bytes], entries: tuple[SchemaEntry, ...]) -> list[list[bytes | None]]:
        rows = []
        for blob in features:
            pos, cells = 1, []  # byte 0 = "all present" flag
            for entry in entries:
                if _is_var(entry.dtype):
                    (length,) = struct.unpack_from("<H", blob, pos)
                    cells.append(blob[pos + 2 : pos + 2 + length] or None)
                    pos += 2 + length
                else:
                    cells.append(blob[pos : pos + entry.dtype.itemsize])
                    pos += entry.dtype.itemsize
            if pos != len(blob):
                raise ValueError(f"proto log row has {len(blob) - pos} bytes beyond its schema")
            rows.append(cells)
        return rows


def _fixed_block(col: pa.Array, width: int) -> np.ndarray:
    """(rows, width) uint8 cells of a fixed-size column, zeros where missing (reference 4.5)."""
    n = len(col)
    bufs = col.buffers()
    if n and bufs[2] is not None:
        offsets = np.frombuffer(bufs[1], dtype=np.int32)[col.offset : col.offset + n + 1]
        if int(offsets[-1] - offsets[0]) == n * width and (np.diff(offsets) == width).all():
            data = np.frombuffer(bufs[2], dtype=np.uint8)[offsets[0] : offsets[0] + n * width]
            block = data.reshape(n, width)
            if col.null_count:
                block = block.copy()
                block[~col.is_valid().to_numpy(zero_copy_only=False)] = 0
            return block
    filled = pc.fill_null(col, pa.scalar(b"\0" * width, pa.binary())).to_pylist()
    return np.frombuffer(b"".join(filled), dtype=np.uint8).reshape(n, width)


def _is_var(dtype: DataType) -> bool:
    return dtype.is_vector or not dtype.is_fixed_width


def _record_batch(table: LogTable) -> pa.RecordBatch:
    fields = [pa.field(str(i), pa.binary(), nullable=True) for i in range(len(table.entries))]
    return pa.RecordBatch.from_arrays(table.columns, schema=pa.schema(fields))


class ArrowFormat:
    """An Arrow IPC stream per chunk, fields ``"0"``, ``"1"``, ... binary (null = missing)."""

    name = "arrow"
    code = FORMAT_CODES["arrow"]

    def bad_rows(self, table: LogTable) -> np.ndarray:
        return np.zeros(table.rows, dtype=bool)

    def encode(self, table: LogTable, batch_size: int) -> list[Chunk]:
        out = []
        for part in _chunks(table, batch_size):
            batch = _record_batch(part)
            sink = pa.BufferOutputStream()
            with ipc.new_stream(sink, batch.schema) as writer:
                writer.write_batch(batch)
            out.append(Chunk(part.entities, [sink.getvalue().to_pybytes()]))
        return out

    def decode(self, features: list[bytes], entries: tuple[SchemaEntry, ...]) -> list[list[bytes | None]]:
        rows: list[list[bytes | None]] = []
        for blob in features:
            read = ipc.open_stream(pa.py_buffer(blob)).read_all()
            cols = [read.column(str(i)).to_pylist() for i in range(len(entries))]
            rows.extend([c or None for c in row] for row in zip(*cols, strict=True))
        return rows


class ParquetFormat:
    """One Parquet file per chunk: column ``Features`` of ``map<int64, binary>`` (key = schema position).

    Schema as parquet-go writes a Go ``map[int][]byte`` field: ``required group Features (MAP) {
    repeated group key_value { required int64 key; required binary value; } }``; every position is
    present, missing values are empty; no compression, plain encoding (parquet-go's defaults).
    """

    name = "parquet"
    code = FORMAT_CODES["parquet"]

    def bad_rows(self, table: LogTable) -> np.ndarray:
        return np.zeros(table.rows, dtype=bool)

    def encode(self, table: LogTable, batch_size: int) -> list[Chunk]:
        schema = pa.schema([pa.field(PARQUET_COLUMN, PARQUET_MAP, nullable=False)])
        out = []
        for part in _chunks(table, batch_size):
            n, k = part.rows, len(part.entries)
            if k:
                flat = pa.concat_arrays([c.cast(pa.binary()) for c in part.columns])  # column-major
                order = (np.arange(k)[None, :] * n + np.arange(n)[:, None]).ravel()  # row-major take
                items = pc.fill_null(flat.take(pa.array(order)), pa.scalar(b"", pa.binary()))
            else:
                items = pa.array([], type=pa.binary())
            keys = pa.array(np.tile(np.arange(k, dtype=np.int64), n))
            offsets = pa.array(np.arange(n + 1, dtype=np.int32) * k)
            col = pa.MapArray.from_arrays(offsets, keys, items, type=PARQUET_MAP)
            buf = io.BytesIO()
            pq.write_table(
                pa.Table.from_arrays([col], schema=schema),
                buf,
                compression="NONE",
                use_dictionary=False,
                write_statistics=False,
            )
            out.append(Chunk(part.entities, [buf.getvalue()]))
        return out

    def decode(self, features: list[bytes], entries: tuple[SchemaEntry, ...]) -> list[list[bytes | None]]:
        rows: list[list[bytes | None]] = []
        for blob in features:
            read = pq.read_table(io.BytesIO(blob))
            for pairs in read.column(PARQUET_COLUMN).to_pylist():
                got = dict(pairs or [])
                rows.append([got.get(i) or None for i in range(len(entries))])
        return rows


FORMATS = {f.name: f for f in (ProtoFormat(), ArrowFormat(), ParquetFormat())}
