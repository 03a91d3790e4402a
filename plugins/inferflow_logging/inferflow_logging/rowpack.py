"""Lay out row-major records from column-wise pieces with numpy: no Python work per row or per cell.

A record (a proto log row, or the concatenated values of a parquet map) is a sequence of *segments*:

* a block: ``(rows, width)`` uint8, optionally with a per-row ``valid`` mask; a row whose cell is not
  valid contributes ``width`` zero bytes (``fill_zero``, the proto default of scalars) or nothing;
* ragged: per-row lengths plus the rows' bytes concatenated (strings, ragged vectors).

Consecutive blocks are joined with one ``np.hstack`` and one ``np.repeat`` of their validity into a
byte mask; a run without dropped bytes is copied as is, otherwise ``block[mask]`` (row-major) yields
its bytes. When ragged segments remain, each is written into the output with one fancy-index
assignment at positions from the row-major cumulative sum of the (rows, segments) lengths.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class Segment:
    block: np.ndarray | None = None  # (rows, width) uint8
    valid: np.ndarray | None = None  # (rows,) bool for a block; None = every cell present
    fill_zero: bool = False  # a block's invalid cells: width zero bytes (True) or no bytes (False)
    lengths: np.ndarray | None = None  # (rows,) int64, ragged
    data: np.ndarray | None = None  # uint8, ragged bytes in row order (len == lengths.sum())


def _join(run: list[Segment], rows: int) -> Segment:
    """One segment for consecutive block segments (full block, or ragged when bytes are dropped)."""
    blocks = [s.block for s in run if s.block is not None]
    big = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=1)
    if all(s.valid is None for s in run):
        return Segment(block=big)
    widths = np.array([b.shape[1] for b in blocks], dtype=np.int64)
    ones = np.ones(rows, dtype=bool)
    valid = np.stack([ones if s.valid is None else s.valid for s in run], axis=1)
    zeroed = np.array([s.valid is not None and s.fill_zero for s in run])
    dropped = np.array([s.valid is not None and not s.fill_zero for s in run])
    if zeroed.any():  # np.where makes a new array: never writes into a view of the matrix
        big = np.where(np.repeat(valid | ~zeroed[None, :], widths, axis=1), big, np.uint8(0))
    if not dropped.any():
        return Segment(block=big)
    kept = valid | ~dropped[None, :]
    return Segment(lengths=kept.astype(np.int64) @ widths, data=big[np.repeat(kept, widths, axis=1)])


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
        assert only.lengths is not None and only.data is not None
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
        assert seg.lengths is not None and seg.data is not None
        if len(seg.data):
            first = np.cumsum(seg.lengths) - seg.lengths  # where each row's bytes start in seg.data
            buf[np.repeat(starts[:, s] - first, seg.lengths) + np.arange(len(seg.data))] = seg.data
    return buf, np.concatenate((zero, ends[:, -1]))


def split_rows(buf: np.ndarray, offsets: np.ndarray) -> list[bytes]:
    """One ``bytes`` per row (a single copy of the buffer, then one slice per row)."""
    data = buf.tobytes()
    bounds = offsets.tolist()
    return [data[a:b] for a, b in itertools.pairwise(bounds)]
