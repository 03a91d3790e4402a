"""Write Predict responses as protobuf wire bytes directly (no per-target message objects).

Building 200 ``TargetScore`` messages through protobuf-python costs as much as the whole DAG
(benchmarks/README.md); the score messages are simple (``error`` = field 1, ``output_values`` = repeated
field 2), so we write them ourselves. The tests decode these bytes with the generated classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

import numpy as np

from ..dtypes import DataType, encode_array
from ..wireformat import _SMALL, length_delimited, tag, varint


def feature_schema(name: str, dtype: DataType) -> bytes:
    """A ``FeatureSchema`` message body (vector_dim is not sent; the server ignores it anyway)."""
    body = length_delimited(1, name.encode("utf-8"))
    if dtype:
        body += tag(2, 0) + varint(int(dtype))
    return body


def schema_field(field: int, columns: Sequence[tuple[str, DataType]]) -> bytes:
    return b"".join(length_delimited(field, feature_schema(n, d)) for n, d in columns)


class Fields:
    """A column's cells as they arrived in a request: length-delimited fields back to back, each
    ``tag, length, cell`` with a one-byte length (a request's target ids). Written into a response by
    rewriting the tag, with no per-cell bytes objects."""

    __slots__ = ("data", "sizes")

    def __init__(self, data: np.ndarray, sizes: np.ndarray) -> None:
        self.data = data  # uint8: the fields back to back
        self.sizes = sizes  # each cell's length (< 128), without its two header bytes

    def cells(self) -> list[bytes]:
        buf = self.data.tobytes()
        sizes = self.sizes.tolist()
        ends = np.cumsum(self.sizes + 2).tolist()
        return [buf[end - n : end] for end, n in zip(ends, sizes, strict=True)]


class Joined:
    """A column's variable-width cells as one buffer (``data``: the cells back to back, ``sizes``: each
    cell's length): a text column written into a response with no per-cell bytes objects."""

    __slots__ = ("data", "sizes")

    def __init__(self, data: np.ndarray, sizes: np.ndarray) -> None:
        self.data = data  # uint8
        self.sizes = sizes  # int64, one per row

    @classmethod
    def of_ascii(cls, texts: list[str]) -> Joined | None:
        """The UTF-8 cells of ``texts`` (str only) when every one is ASCII (a character is then a
        byte, so the lengths are the texts' own); else None."""
        joined = "".join(texts)
        if not joined.isascii():
            return None
        sizes = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        return cls(np.frombuffer(joined.encode("ascii"), dtype=np.uint8), sizes)

    def cells(self) -> list[bytes]:
        buf = self.data.tobytes()
        ends = np.cumsum(self.sizes).tolist()
        return [buf[end - n : end] for end, n in zip(ends, self.sizes.tolist(), strict=True)]


# per-row cells, a (rows, width) uint8 block of fixed-width cells, the fields the cells came in, or the
# cells as one buffer
Cells = list[bytes] | np.ndarray | Fields | Joined

_VALUE_HEAD = [b"\x12" + n for n in _SMALL]  # ``output_values`` tag + length, for cells < 128 bytes


def _fixed_rows(blocks: list[np.ndarray], rows: int) -> list[bytes]:
    """Consecutive fixed-width columns -> per-row bytes of their ``output_values`` fields (numpy)."""
    out = _fixed_block(blocks, rows)
    width = out.shape[1]
    buf = out.tobytes()
    return [buf[i : i + width] for i in range(0, rows * width, width)]


def _value_fields(cells: list[bytes]) -> tuple[list[bytes], int]:
    """Per-row ``output_values`` fields of one column of variable cells, and the longest field's size."""
    longest = max(map(len, cells), default=0)
    if longest < 128:
        head = _VALUE_HEAD
        return [head[len(c)] + c for c in cells], longest + 2
    return [b"\x12" + varint(len(c)) + c for c in cells], longest + 1 + len(varint(longest))


_IDS_PATTERN: dict[int, np.ndarray] = {}  # rows -> [False, True, False] * rows


def _ids_then_fixed(head: int, ids: Fields, blocks: list[np.ndarray], rows: int) -> bytes | None:
    """:func:`_packed` for the usual response layout: the request's own id fields, then fixed-width
    columns. A row is ``tag, body_len | id field | fixed cells``: the fixed bytes of all rows are one
    ``(rows, 2 + width)`` matrix, and one ``np.repeat`` marks which output byte is an id byte; two masked
    writes interleave them, then the id fields' tags are rewritten."""
    block = _fixed_block(blocks, rows)
    width = block.shape[1]
    field = ids.sizes + 2
    body = field + width
    if int(body.max()) >= 128:
        return None
    fixed = np.empty((rows, 2 + width), dtype=np.uint8)
    fixed[:, 0] = head
    fixed[:, 1] = body
    fixed[:, 2:] = block
    lengths = np.empty((rows, 3), dtype=np.int64)
    lengths[:, 0] = 2
    lengths[:, 1] = field
    lengths[:, 2] = width
    pattern = _IDS_PATTERN.get(rows)
    if pattern is None:
        pattern = np.tile(np.array([False, True, False]), rows)
        if len(_IDS_PATTERN) < 64:
            _IDS_PATTERN[rows] = pattern
    is_id = np.repeat(pattern, lengths.ravel())
    out = np.empty(is_id.size, dtype=np.uint8)
    out[is_id] = ids.data
    out[~is_id] = fixed.ravel()
    out[np.cumsum(body + 2) - body] = 0x12  # each id field's tag
    return out.tobytes()


def _packed(field: int, columns: Sequence[Cells], rows: int) -> bytes | None:
    """The score messages written by numpy scatters when every message body is shorter than 128
    bytes (one-byte lengths, the common case) and no row has an error; else None.

    Row ``r`` is ``tag, body_len, (0x12, cell_len, cell)...``: the row starts come from one cumulative
    sum, the header bytes are one fancy-index write each, a run of fixed-width columns one 2-D write
    and a column of variable cells one write of its joined bytes. Python work is per column, not per row.
    """
    head = tag(field)
    if len(head) != 1 or not rows:
        return None
    if (
        len(columns) > 1
        and isinstance(columns[0], Fields)
        and all(isinstance(c, np.ndarray) and c.shape[1] < 128 for c in columns[1:])
    ):
        return _ids_then_fixed(head[0], columns[0], list(columns[1:]), rows)  # type: ignore[arg-type]
    # (cell sizes or None, data, width): a fixed-width run (sizes None), cells (width 0), Fields (-1)
    segments: list[tuple[np.ndarray | None, np.ndarray, int]] = []
    body = np.zeros(rows, dtype=np.int64)
    run: list[np.ndarray] = []
    for cells in (*columns, None):
        if isinstance(cells, np.ndarray):
            if cells.shape[1] >= 128:
                return None
            run.append(cells)
            continue
        if run:
            block = _fixed_block(run, rows)
            segments.append((None, block, block.shape[1]))
            body += block.shape[1]
            run = []
        if isinstance(cells, Fields):
            body += cells.sizes + 2
            segments.append((cells.sizes, cells.data, -1))
        elif isinstance(cells, Joined):
            body += cells.sizes + 2
            segments.append((cells.sizes, cells.data, 0))
        elif cells is not None:
            lens = np.fromiter(map(len, cells), dtype=np.int64, count=rows)
            body += lens + 2
            segments.append((lens, np.frombuffer(b"".join(cells), dtype=np.uint8), 0))
    if int(body.max()) >= 128:
        return None
    ends = np.cumsum(body + 2)
    out = np.empty(int(ends[-1]), dtype=np.uint8)
    pos = ends - body
    out[pos - 2] = head[0]
    out[pos - 1] = body
    for sizes, data, width in segments:
        if sizes is None:
            out[pos[:, None] + np.arange(width)] = data
            pos = pos + width
            continue
        if width < 0:  # whole fields: copied with their headers, then the tag rewritten
            fields = sizes + 2
            out[np.repeat(pos - (np.cumsum(fields) - fields), fields) + np.arange(data.size)] = data
            out[pos] = 0x12
            pos = pos + fields
            continue
        out[pos] = 0x12
        out[pos + 1] = sizes
        pos = pos + 2
        if data.size:
            out[np.repeat(pos - (np.cumsum(sizes) - sizes), sizes) + np.arange(data.size)] = data
        pos = pos + sizes
    return out.tobytes()


def _fixed_block(blocks: list[np.ndarray], rows: int) -> np.ndarray:
    """Consecutive fixed-width columns -> one ``(rows, width)`` block of their ``output_values`` fields."""
    width = sum(len(varint(b.shape[1])) + 1 + b.shape[1] for b in blocks)
    out = np.empty((rows, width), dtype=np.uint8)
    at = 0
    for block in blocks:
        head = b"\x12" + varint(block.shape[1])
        out[:, at : at + len(head)] = np.frombuffer(head, dtype=np.uint8)
        at += len(head)
        out[:, at : at + block.shape[1]] = block
        at += block.shape[1]
    return out


def score_messages(field: int, columns: Sequence[Cells], errors: dict[int, str], rows: int) -> bytes:
    """``rows`` score messages (``TargetScore`` / ``PairScore`` / ``SlateScore``) as repeated ``field``.

    ``columns[k]`` holds column ``k``'s output value per row; ``errors[r]`` is row ``r``'s error.
    Without errors and with every message shorter than 128 bytes, :func:`_packed` writes them. Else
    runs of fixed-width columns become one numpy block and the messages are joined per row.
    """
    if not errors:
        packed = _packed(field, columns, rows)
        if packed is not None:
            return packed
    plain = [c.cells() if isinstance(c, Fields | Joined) else c for c in columns]
    pieces: list[list[bytes]] = []
    variable: list[list[bytes]] = []  # the pieces whose fields vary in length
    longest = fixed = 0  # longest message body; bytes per row of the fixed-width pieces
    run: list[np.ndarray] = []
    for cells in (*plain, None):
        if isinstance(cells, np.ndarray):
            run.append(cells)
            continue
        if run:
            pieces.append(_fixed_rows(run, rows))
            width = len(pieces[-1][0]) if rows else 0
            fixed += width
            longest += width
            run = []
        if cells is not None:
            fields, size = _value_fields(cells)
            pieces.append(fields)
            variable.append(fields)
            longest += size
    head = tag(field)
    if not errors and longest < 128 and pieces and len(variable) <= 1:
        heads = [head + n for n in _SMALL]
        lead = [heads[len(f) + fixed] for f in variable[0]] if variable else [heads[fixed]] * rows
        return b"".join(chain.from_iterable(zip(lead, *pieces, strict=True)))
    if len(pieces) == 1:
        bodies = pieces[0]
    else:
        bodies = list(map(b"".join, zip(*pieces, strict=True))) if pieces else [b""] * rows
    if errors:
        bodies = list(bodies)
        for r, err in errors.items():
            if err and 0 <= r < len(bodies):
                bodies[r] = length_delimited(1, err.encode("utf-8")) + bodies[r]
    small = _SMALL
    return b"".join([head + (small[n] if (n := len(b)) < 128 else varint(n)) + b for b in bodies])


def fixed_block(values: np.ndarray, dtype: DataType, rows: int) -> np.ndarray:
    """A fixed-width column with every cell present as a ``(rows, width)`` uint8 block."""
    return np.frombuffer(encode_array(values, dtype), dtype=np.uint8).reshape(rows, -1)


def string_field(field: int, text: str) -> bytes:
    return length_delimited(field, text.encode("utf-8")) if text else b""
