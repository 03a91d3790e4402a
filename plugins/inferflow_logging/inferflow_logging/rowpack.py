"""Lay out row-major records from column-wise pieces with numpy: no Python work per row or per cell.

A record (a proto log row, or the concatenated values of a parquet map) is a sequence of *segments*:

* a block: ``(rows, width)`` uint8 holding ``k`` cells of ``width // k`` bytes per row (``k`` = 1 for
  one column, more for a column block of the matrix), optionally with a ``valid`` mask ``(rows,)`` or
  ``(rows, k)``; a missing cell contributes its width in zero bytes (``fill_zero``, the proto default
  of scalars) or nothing;
* ragged: per-row lengths plus the rows' bytes concatenated (strings, ragged vectors).

Consecutive blocks are joined with one ``np.concatenate``; missing cells are zeroed in place in that
copy, or dropped with one byte mask. When ragged segments remain, each is written into the output with
one fancy-index assignment at positions from the row-major cumulative sum of the (rows, segments)
lengths. :func:`varints` / :func:`frame_heads` write protobuf length framing for every row at once.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from inferflow_core.api import codecs


@dataclass
class Segment:
    block: np.ndarray | None = None  # (rows, width) uint8
    valid: np.ndarray | None = None  # (rows,) or (rows, k) bool for a block; None = every cell present
    fill_zero: bool = False  # a block's invalid cells: zero bytes (True) or no bytes (False)
    lengths: np.ndarray | None = None  # (rows,) int64, ragged
    data: np.ndarray | None = None  # uint8, ragged bytes in row order (len == lengths.sum())

    def row_lengths(self, rows: int) -> np.ndarray | int:
        """Bytes per row (an int when every row has the same length)."""
        if self.block is not None:
            if self.valid is None or self.fill_zero:
                return int(self.block.shape[1])
            return _cells(self)[0] @ _cell_widths(self)
        assert self.lengths is not None
        return self.lengths


def _cells(seg: Segment) -> tuple[np.ndarray, int]:
    """(valid (rows, k), cell width) of a block segment with a mask."""
    assert seg.block is not None
    assert seg.valid is not None
    valid = seg.valid if seg.valid.ndim == 2 else seg.valid[:, None]
    return valid, seg.block.shape[1] // max(1, valid.shape[1])


def _cell_widths(seg: Segment) -> np.ndarray:
    valid, width = _cells(seg)
    return np.full(valid.shape[1], width, dtype=np.int64)


def _join(run: list[Segment], rows: int) -> Segment:
    """One segment for consecutive block segments (full block, or ragged when bytes are dropped)."""
    blocks = [s.block for s in run if s.block is not None]
    masked = [s for s in run if s.valid is not None]
    if len(blocks) == 1:
        big = blocks[0]
        if masked and masked[0].fill_zero:
            big = big.copy()  # never write into a view of the matrix
    else:
        big = np.concatenate(blocks, axis=1)  # a fresh copy: zeroed in place below
    if not masked:
        return Segment(block=big)
    keep: list[np.ndarray] = []  # per block: (rows, cells) kept mask (dropped cells only)
    widths: list[np.ndarray] = []
    offset = 0
    for seg in run:
        assert seg.block is not None
        width = seg.block.shape[1]
        if seg.valid is None:
            keep.append(np.ones((rows, 1), dtype=bool))
            widths.append(np.array([width], dtype=np.int64))
        else:
            valid, cell = _cells(seg)
            if seg.fill_zero:
                if not valid.all():
                    view = big[:, offset : offset + width].reshape(rows, valid.shape[1], cell)
                    view[~valid] = 0
                keep.append(np.ones((rows, 1), dtype=bool))
                widths.append(np.array([width], dtype=np.int64))
            else:
                keep.append(valid)
                widths.append(np.full(valid.shape[1], cell, dtype=np.int64))
        offset += width
    if all(s.fill_zero for s in masked):
        return Segment(block=big)
    kept = np.concatenate(keep, axis=1)
    all_widths = np.concatenate(widths)
    if kept.all():
        return Segment(block=big)
    return Segment(lengths=kept.astype(np.int64) @ all_widths, data=big[np.repeat(kept, all_widths, axis=1)])


def merge_blocks(segments: Sequence[Segment], rows: int) -> list[Segment]:
    """Join runs of consecutive block segments (see :func:`_join`)."""
    out: list[Segment] = []
    run: list[Segment] = []
    for seg in segments:
        if seg.block is not None:
            run.append(seg)
            continue
        if run:
            out.append(_join(run, rows))
            run = []
        out.append(seg)
    if run:
        out.append(_join(run, rows))
    return out


def pack(segments: Sequence[Segment], rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(buffer uint8, row offsets (rows + 1,) int64): row ``i`` is ``buffer[offsets[i]:offsets[i+1]]``."""
    parts = merge_blocks(segments, rows)
    zero = np.zeros(1, dtype=np.int64)
    if not rows or not parts:
        return np.zeros(0, dtype=np.uint8), np.zeros(rows + 1, dtype=np.int64)
    if len(parts) == 1:  # the common case: no strings, one run
        only = parts[0]
        if only.block is not None:
            block = np.ascontiguousarray(only.block)
            return block.reshape(-1), np.arange(rows + 1, dtype=np.int64) * block.shape[1]
        assert only.lengths is not None
        assert only.data is not None
        return only.data, np.concatenate((zero, np.cumsum(only.lengths)))
    lengths = np.empty((rows, len(parts)), dtype=np.int64)
    for s, seg in enumerate(parts):
        if seg.block is not None:
            lengths[:, s] = seg.block.shape[1]
        else:
            assert seg.lengths is not None
            lengths[:, s] = seg.lengths
    ends = np.cumsum(lengths.reshape(-1)).reshape(rows, len(parts))
    starts = ends - lengths
    buf = np.empty(int(ends[-1, -1]), dtype=np.uint8)
    for s, seg in enumerate(parts):
        if seg.block is not None:
            if seg.block.shape[1]:
                buf[starts[:, s, None] + np.arange(seg.block.shape[1])] = seg.block
            continue
        assert seg.lengths is not None
        assert seg.data is not None
        if len(seg.data):
            first = np.cumsum(seg.lengths) - seg.lengths  # where each row's bytes start in seg.data
            buf[np.repeat(starts[:, s] - first, seg.lengths) + np.arange(len(seg.data))] = seg.data
    return buf, np.concatenate((zero, ends[:, -1]))


def split_rows(buf: np.ndarray, offsets: np.ndarray) -> list[bytes]:
    """One ``bytes`` per row (a single copy of the buffer, then one slice per row)."""
    data = buf.tobytes()
    bounds = offsets.tolist()
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


# ----------------------------------------------------------------------- protobuf framing, vectorised
_SHIFTS = np.arange(0, 35, 7, dtype=np.int64)  # 5 varint bytes: lengths below 2**35


def varints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bytes (n, 5) uint8, used (n, 5) bool): the base-128 varint of each value, row-major."""
    v = np.asarray(values, dtype=np.int64)
    nbytes = 1 + (v[:, None] >= (np.int64(1) << _SHIFTS[1:])).sum(axis=1)
    used = np.arange(5) < nbytes[:, None]
    more = np.arange(5) < (nbytes - 1)[:, None]
    out = ((v[:, None] >> _SHIFTS) & 0x7F).astype(np.uint8) | (more.astype(np.uint8) << 7)
    return out, used


def frame_heads(tag: int, sizes: np.ndarray, inner_tag: int | None = None) -> Segment:
    """Per row, the head of a length-delimited field ``tag`` holding ``sizes[i]`` bytes.

    With ``inner_tag`` the payload is itself a message whose only field ``inner_tag`` (a proto3 bytes
    field, omitted when empty) holds those bytes — ``PerEntityFeatures{encoded_features}``. A block
    segment when every row has the same size, else a ragged one.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    rows = len(sizes)
    if rows and (sizes == sizes[0]).all():
        one = frame_head(tag, int(sizes[0]), inner_tag)
        return Segment(block=repeated_row(one, rows))
    cols, used = [np.full((rows, 1), tag, np.uint8)], [np.ones((rows, 1), bool)]
    if inner_tag is None:
        b, u = varints(sizes)
        cols += [b]
        used += [u]
    else:
        inner_b, inner_u = varints(sizes)
        present = sizes > 0
        outer = np.where(present, 1 + inner_u.sum(axis=1) + sizes, 0)
        b, u = varints(outer)
        cols += [b, np.full((rows, 1), inner_tag, np.uint8), inner_b]
        used += [u, present[:, None], inner_u & present[:, None]]
    heads, mask = np.concatenate(cols, axis=1), np.concatenate(used, axis=1)
    if (mask == mask[0]).all():  # every head has the same shape (the usual case): a block
        return Segment(block=heads[:, mask[0]])
    return Segment(lengths=mask.sum(axis=1).astype(np.int64), data=heads[mask])


def repeated_row(row: bytes, rows: int) -> np.ndarray:
    """``(rows, len(row))`` uint8, every row ``row``: a read-only view of it (what ``np.broadcast_to``
    makes, at a fraction of its cost)."""
    return np.ndarray((rows, len(row)), np.uint8, row, strides=(0, 1))


def frame_head(tag: int, size: int, inner_tag: int | None = None) -> bytes:
    """:func:`frame_heads`' head of one row of ``size`` bytes."""
    if inner_tag is None:
        return bytes((tag,)) + codecs.varint(size)
    inner = bytes((inner_tag,)) + codecs.varint(size) if size else b""
    return bytes((tag,)) + codecs.varint(len(inner) + size) + inner
