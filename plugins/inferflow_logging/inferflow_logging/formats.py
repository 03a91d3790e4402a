"""The three log formats of go-compatibility §7.4, each a ``LogFormat`` (``register_log_formats``).

A format turns a :class:`LogTable` into chunks of at most ``batch_size`` rows, each chunk the
``features`` of one ``InferflowLog`` (proto: one blob per entity; arrow / parquet: one blob per chunk),
and decodes those blobs back into raw cells for ``inferflow logs read`` and the tests.

Differences from Go Inferflow (go-compatibility §10, D1): Arrow fields are declared nullable (Go
declared them non-nullable but wrote nulls); a row that cannot be encoded (a proto variable-length value over
65535 bytes) is dropped alone and counted instead of dropping the whole request.
"""

from __future__ import annotations

import functools
import io
import struct
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from inferflow_core.api import DataType, codecs

from .api import FORMAT_CODES, Chunk, LogTable, SchemaEntry
from .parquet_file import ParquetChunkWriter
from .rowpack import Segment, frame_head, frame_heads, pack, repeated_row, split_rows
from .table import CellGroup, LogColumn, Part

MAX_VAR_LEN = 0xFFFF
PARQUET_COLUMN = "Features"  # parquet-go's column name for the Go row struct's field ``Features``
PARQUET_MAP = pa.map_(pa.int64(), pa.field("value", pa.binary(), nullable=False))
_MISSING_STRING = b"0.0"  # go-compatibility §4.5: a missing String/BYTES value in the proto log


def _chunks(table: LogTable, batch_size: int) -> list[LogTable]:
    size = max(1, batch_size)
    if table.rows <= size:
        return [table] if table.rows else []
    return [table.slice(i, min(i + size, table.rows)) for i in range(0, table.rows, size)]


class ProtoFormat:
    """Per entity: flag byte, then fixed-size scalars raw, variable values uint16-LE length-prefixed.

    Built column-wise with numpy (:mod:`.rowpack`): a run of scalar entries is one ``(rows, k * width)``
    block (a view of the matrix's column block; zeros where missing), a vector/string column is a uint16
    length block plus its bytes. One buffer holds every row already framed as ``PerEntityFeatures``
    (heads computed for all rows at once), so a chunk is a slice of it; no Python per row.
    """

    name = "proto"
    code = FORMAT_CODES["proto"]

    def bad_rows(self, table: LogTable) -> np.ndarray:
        """Rows holding a variable-length value too long for the uint16 length prefix."""
        bad = np.zeros(table.rows, dtype=bool)
        for part in table.parts:
            if isinstance(part, CellGroup) or not table.rows:
                continue  # fixed scalars only
            if part.block is not None:
                if part.block.shape[1] > MAX_VAR_LEN:
                    bad |= part.valid
                continue
            bad |= part.var_parts()[0] > MAX_VAR_LEN
        return bad

    def encode(self, table: LogTable, batch_size: int) -> list[Chunk]:
        if not table.rows:
            return []
        buf, offsets, heads = self.encode_framed(table)
        size = max(1, batch_size)
        view = memoryview(buf.data)
        starts, ends = offsets[:-1] + heads, offsets[1:]
        return [
            Chunk(
                table.entities[i : i + size],
                framed=view[int(offsets[i]) : int(offsets[min(i + size, table.rows)])],
                bounds=(starts[i : i + size] - offsets[i], ends[i : i + size] - offsets[i]),
            )
            for i in range(0, table.rows, size)
        ]

    def encode_rows(self, table: LogTable) -> list[bytes]:
        """One proto log row per entity (unframed)."""
        buf, offsets = pack(self.segments(table), table.rows)
        return split_rows(buf, offsets)

    def encode_framed(self, table: LogTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(buffer, row offsets (rows + 1,), head length per row): every row as a framed
        ``InferflowLog.features`` element (``0x2a len {0x0a len row}``), all rows in one buffer."""
        n = table.rows
        segments = self.segments(table)
        if all(seg.block is not None and seg.valid is None for seg in segments):
            return _framed_fixed([seg.block for seg in segments if seg.block is not None], n)
        sizes = np.zeros(n, dtype=np.int64)
        for seg in segments:
            sizes += seg.row_lengths(n)
        head = frame_heads(0x2A, sizes, inner_tag=0x0A)
        buf, offsets = pack([head, *segments], n)
        head_lengths = head.row_lengths(n)
        if isinstance(head_lengths, int):
            return buf, offsets, np.full(n, head_lengths, dtype=np.int64)
        return buf, offsets, np.asarray(head_lengths, dtype=np.int64)

    def segments(self, table: LogTable) -> list[Segment]:
        """The row layout: flag byte, then each entry's cells (see the class docstring)."""
        n = table.rows
        flags = table.row_complete()  # byte 0: every cell of the row present
        segments: list[Segment] = [Segment(block=flags.view(np.uint8)[:, None])]
        pos = 0
        for part in table.parts:
            if isinstance(part, CellGroup):
                valid = None if part.all_valid else part.valid
                segments.append(Segment(block=part.block, valid=valid, fill_zero=True))
                pos = part.stop
                continue
            segments.extend(_proto_column(table.entries[pos], part, n))
            pos += 1
        return segments

    def decode(self, features: list[bytes], entries: tuple[SchemaEntry, ...]) -> list[list[bytes | None]]:
        rows = []
        for blob in features:
            pos, cells = 1, []  # byte 0 = "all present" flag
            for entry in entries:
                if entry.is_var:
                    (length,) = struct.unpack_from("<H", blob, pos)
                    cells.append(blob[pos + 2 : pos + 2 + length] or None)
                    pos += 2 + length
                else:
                    cells.append(blob[pos : pos + entry.itemsize])
                    pos += entry.itemsize
            if pos != len(blob):
                raise ValueError(f"proto log row has {len(blob) - pos} bytes beyond its schema")
            rows.append(cells)
        return rows


def _framed_fixed(blocks: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:meth:`ProtoFormat.encode_framed` when every row is the same blocks' bytes (every cell fixed-width
    and present): one head for all rows and one concatenation."""
    width = sum(block.shape[1] for block in blocks)
    head = frame_head(0x2A, width, inner_tag=0x0A)
    buf = np.concatenate([repeated_row(head, n), *blocks], axis=1).reshape(-1)
    offsets = np.arange(n + 1, dtype=np.int64) * (len(head) + width)
    return buf, offsets, np.full(n, len(head), dtype=np.int64)


def _proto_column(entry: SchemaEntry, col: LogColumn, n: int) -> list[Segment]:
    """One entry's proto cells: a fixed scalar raw (zeros where missing), else uint16-LE length + bytes."""
    missing = None if col.all_valid else col.valid
    if not entry.is_var:
        block = col.block if col.block is not None else np.zeros((n, entry.itemsize), np.uint8)
        return [Segment(block=block, valid=missing, fill_zero=True)]
    if col.block is not None:  # a constant-dim vector: a missing cell is length 0
        width = col.block.shape[1]
        lengths = np.full(n, width, dtype="<u2") if missing is None else (col.valid * width)
        return [
            Segment(block=lengths.astype("<u2").view(np.uint8).reshape(n, 2)),
            Segment(block=col.block, valid=missing),
        ]
    fill = _MISSING_STRING if entry.dtype is DataType.STRING else b""
    lengths, data = col.var_parts(fill)
    return [
        Segment(block=lengths.astype("<u2").view(np.uint8).reshape(n, 2)),
        Segment(lengths=lengths, data=data),
    ]


def _record_batch(table: LogTable) -> pa.RecordBatch:
    fields = [pa.field(str(i), pa.binary(), nullable=True) for i in range(len(table.entries))]
    return pa.RecordBatch.from_arrays([c.arrow() for c in table.columns], schema=pa.schema(fields))


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

    def __init__(self) -> None:
        self.writer = ParquetChunkWriter()

    def encode(self, table: LogTable, batch_size: int) -> list[Chunk]:
        out = []
        for part in _chunks(table, batch_size):
            values = plain_values(part)
            if values is None:
                out.append(Chunk(part.entities, [_pyarrow_file(part)]))
                continue
            shape = (part.rows, len(part.entries))
            pieces = self.writer.pieces(shape, values, functools.partial(_pyarrow_file, part))
            size = sum(memoryview(p).nbytes for p in pieces)
            inner = b"\x0a" + codecs.varint(size)  # PerEntityFeatures{encoded_features}, tag 5
            head = b"\x2a" + codecs.varint(len(inner) + size) + inner
            bounds = (np.array([len(head)]), np.array([len(head) + size]))
            out.append(Chunk(part.entities, framed=[head, *pieces], bounds=bounds))
        return out

    def __reduce__(self) -> tuple[type, tuple[()]]:  # templates are rebuilt (and verified) where it runs
        return (ParquetFormat, ())

    def decode(self, features: list[bytes], entries: tuple[SchemaEntry, ...]) -> list[list[bytes | None]]:
        rows: list[list[bytes | None]] = []
        for blob in features:
            read = pq.read_table(
                io.BytesIO(blob), use_threads=False
            )  # no Arrow thread pool: it can abort at exit
            for pairs in read.column(PARQUET_COLUMN).to_pylist():
                got = dict(pairs or [])
                rows.append([got.get(i) or None for i in range(len(entries))])
        return rows


def _pyarrow_file(table: LogTable) -> bytes:
    """The chunk file as pyarrow writes it (the reference the templates are verified against)."""
    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(sink, _PARQUET_SCHEMA, **_PARQUET_OPTIONS) as writer:
        writer.write_table(pa.Table.from_arrays([_map_column(table)], schema=_PARQUET_SCHEMA))
    return sink.getvalue().to_pybytes()


def _u32_block(lengths: np.ndarray | int, n: int) -> np.ndarray:
    """(n, 4) uint8: each row's length as u32 little-endian (PLAIN byte_array's prefix)."""
    if isinstance(lengths, int):
        return repeated_row(struct.pack("<I", lengths), n)
    return np.asarray(lengths, dtype="<u4").view(np.uint8).reshape(n, 4)


def plain_values(table: LogTable) -> np.ndarray | None:
    """The parquet value column's PLAIN data: every row's ``k`` map values in key order, each a u32-LE
    length and its bytes (missing = length 0), rows one after the other (uint8); None when a group
    of scalar columns has missing cells (the chunk is then written by pyarrow)."""
    n = table.rows
    if all(p.all_valid and (isinstance(p, CellGroup) or p.block is not None) for p in table.parts):
        return _plain_fixed(table)
    segments: list[Segment] = []
    for part in table.parts:
        if isinstance(part, CellGroup):
            k, w = part.stop - part.start, part.width
            if part.all_valid:  # (n, k, 4 + w): prefix and cell interleaved
                segments.append(Segment(block=_plain_block(n, [(part, k, w)])))
            else:  # cells missing here and there: a per-byte layout, pyarrow's writer is as fast
                return None
            continue
        if part.block is not None:
            w = part.block.shape[1]
            valid = None if part.all_valid else part.valid
            segments.append(Segment(block=_u32_block(w if valid is None else valid * w, n)))
            segments.append(Segment(block=part.block, valid=valid))
        else:
            lens, data = part.var_parts()
            segments.append(Segment(block=_u32_block(lens, n)))
            segments.append(Segment(lengths=lens, data=data))
    buf, _ = pack(segments, n)
    return buf


def _plain_fixed(table: LogTable) -> np.ndarray:
    """:func:`plain_values` when every cell is present and fixed-width: every row has the same layout,
    so each part is written into its columns of one ``(rows, row bytes)`` buffer (strided copies)."""
    spans: list[tuple[Part, int, int]] = []  # part, cells per row, cell width
    for part in table.parts:
        if isinstance(part, CellGroup):
            spans.append((part, part.stop - part.start, part.width))
        else:
            assert part.block is not None
            spans.append((part, 1, part.block.shape[1]))
    return _plain_block(table.rows, spans).reshape(-1)


def _plain_block(n: int, spans: list[tuple[Part, int, int]]) -> np.ndarray:
    """``(n, row bytes)``: per row, every span's ``k`` cells of ``w`` bytes each after its u32-LE length
    ``w``. The lengths come with one broadcast copy of a cached row that holds them; then the cells."""
    out = np.empty((n, sum(k * (4 + w) for _, k, w in spans)), dtype=np.uint8)
    out[...] = _prefix_row(tuple((k, w) for _, k, w in spans))
    if all(w % 4 == 0 for _, _, w in spans) and _plain_words(out, spans):
        return out
    pos = 0
    for part, k, w in spans:
        view = out[:, pos : pos + k * (4 + w)].reshape(n, k, 4 + w)
        assert part.block is not None
        view[:, :, 4:] = part.block.reshape(n, k, w)
        pos += k * (4 + w)
    return out


_PREFIX_ROWS: dict[tuple[tuple[int, int], ...], np.ndarray] = {}


def _prefix_row(layout: tuple[tuple[int, int], ...]) -> np.ndarray:
    """One row of :func:`_plain_block`'s layout (``(k, w)`` per span) holding the length prefixes
    (cells zero); the same for every chunk of a schema, so cached."""
    got = _PREFIX_ROWS.get(layout)
    if got is None:
        if len(_PREFIX_ROWS) > 256:
            _PREFIX_ROWS.clear()
        row = b"".join((struct.pack("<I", w) + bytes(w)) * k for k, w in layout)
        got = _PREFIX_ROWS[layout] = np.frombuffer(row, dtype=np.uint8)
    return got


def _plain_words(out: np.ndarray, spans: list[tuple[Part, int, int]]) -> bool:
    """The cells of :func:`_plain_block`'s layout written as 4-byte words when every cell width is a
    multiple of 4: numpy copies word by word instead of running a 4-byte inner loop per cell (~10x
    faster). A block need not be word-aligned (the encoder process reads blocks at any offset of its
    frame): numpy copies from an unaligned word view as fast. False (nothing written that matters)
    when a block's rows are not contiguous, so it cannot be viewed as words."""
    n = out.shape[0]
    words = out.view("<u4")  # (n, row bytes / 4): every part starts on a word
    pos = 0
    for part, k, w in spans:
        assert part.block is not None
        block = part.block
        if block.strides[-1] != 1:
            return False
        view = words[:, pos : pos + k * (1 + w // 4)].reshape(n, k, 1 + w // 4)
        view[:, :, 1:] = block.view("<u4").reshape(n, k, w // 4)
        pos += k * (1 + w // 4)
    return True


_PARQUET_SCHEMA = pa.schema([pa.field(PARQUET_COLUMN, PARQUET_MAP, nullable=False)])
_PARQUET_OPTIONS: dict[str, Any] = {"compression": "NONE", "use_dictionary": False, "write_statistics": False}


def _map_column(table: LogTable) -> pa.MapArray:
    """Every row's ``{position: cell}`` map (missing = empty), flattened with numpy: no per-row dicts."""
    n, k = table.rows, len(table.entries)
    lengths = np.empty((n, k), dtype=np.int64)  # (n, k) cell lengths, row-major = the items' order
    segments = []
    pos = 0
    for part in table.parts:
        if isinstance(part, CellGroup):
            valid = None if part.all_valid else part.valid
            segments.append(Segment(block=part.block, valid=valid))
            lengths[:, part.start : part.stop] = part.width if valid is None else valid * part.width
            pos = part.stop
            continue
        if part.block is not None:
            valid = None if part.all_valid else part.valid
            segments.append(Segment(block=part.block, valid=valid))
            width = part.block.shape[1]
            lengths[:, pos] = width if valid is None else valid * width
        else:
            lens, data = part.var_parts()
            lengths[:, pos] = lens
            segments.append(Segment(lengths=lens, data=data))
        pos += 1
    buf, _ = pack(segments, n)
    ends = np.cumsum(lengths.reshape(-1))
    if len(ends) and ends[-1] > np.iinfo(np.int32).max:
        raise ValueError(f"parquet log chunk of {int(ends[-1])} bytes exceeds the binary column limit")
    offsets = np.empty(n * k + 1, dtype=np.int32)
    offsets[0] = 0
    offsets[1:] = ends
    items = pa.Array.from_buffers(pa.binary(), n * k, [None, pa.py_buffer(offsets), pa.py_buffer(buf)])
    keys, row_offsets = _map_keys(n, k)
    return pa.MapArray.from_arrays(row_offsets, keys, items, type=PARQUET_MAP)


_KEYS: dict[tuple[int, int], tuple[pa.Array, pa.Array]] = {}


def _map_keys(n: int, k: int) -> tuple[pa.Array, pa.Array]:
    """(keys 0..k-1 repeated n times, row offsets): the same for every chunk of one shape, so cached."""
    got = _KEYS.get((n, k))
    if got is None:
        if len(_KEYS) > 64:
            _KEYS.clear()
        keys = pa.array(np.tile(np.arange(k, dtype=np.int64), n))
        got = _KEYS[(n, k)] = keys, pa.array(np.arange(n + 1, dtype=np.int32) * k)
    return got


FORMATS = {f.name: f for f in (ProtoFormat(), ArrowFormat(), ParquetFormat())}
