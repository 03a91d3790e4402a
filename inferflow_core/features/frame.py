"""FeatureFrame: features of ``n`` entities, held as a few wide numpy blocks instead of one array per cell.

Consecutive fixed-width features with the same element type share one 2-D block (the S1 catalog component's
64 FP32 scalars and its FP32Vector[32] are a single ``(n, 96)`` float32 block), so taking rows, merging cache
hits with fetched rows and packing cache entries cost one numpy operation per block, not per feature. Strings
and string vectors are one object block per feature. Every feature has a validity column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..dtypes import DataType

_FP8 = (DataType.FP8E4M3, DataType.FP8E5M2)


class Block:
    """``values``: ``(n, width)`` elements of ``dtype`` (fixed width) or ``(n,)`` objects (variable width).
    ``valid``: ``(n, k)``, one column per feature stored in the block. ``fixed`` is computed once (the
    request path reads it per block, and DataType properties are not free). ``dense``: every row but the
    last is valid and the last is not (the embedded store's blocks with their missing row), so a ``take``
    can skip gathering validity from a large table."""

    __slots__ = ("dense", "dtype", "fixed", "valid", "values")

    def __init__(
        self,
        dtype: DataType,
        values: np.ndarray,
        valid: np.ndarray,
        dense: bool = False,
        fixed: bool | None = None,
    ) -> None:
        """``fixed``: ``dtype.is_fixed_width`` when the caller has it (a block made from another)."""
        self.dtype, self.values, self.valid = dtype, values, valid
        self.fixed = dtype.is_fixed_width if fixed is None else fixed
        self.dense = dense


@dataclass(frozen=True)
class Slot:
    """Where a feature lives: block index, first element, vector length, validity column, is a vector."""

    block: int
    start: int
    dim: int
    vcol: int
    vector: bool = False


def raw_dtype(dt: DataType) -> np.dtype:
    """Storage dtype inside byte buffers / structured arrays (FP8 and BOOL as one unsigned byte)."""
    return np.dtype(np.uint8) if dt.scalar in _FP8 or dt.scalar is DataType.BOOL else dt.numpy_dtype


def from_raw(arr: np.ndarray, dt: DataType) -> np.ndarray:
    if dt.scalar is DataType.BOOL:
        return arr != 0
    if dt.scalar in _FP8:
        return arr.view(dt.numpy_dtype)
    return arr


def to_raw(arr: np.ndarray, dt: DataType) -> np.ndarray:
    if dt.scalar is DataType.BOOL:
        return arr.astype(np.uint8)
    if dt.scalar in _FP8:
        return arr.view(np.uint8)
    return arr


class FeatureFrame:
    """Features of ``n`` entities in the order of the component's feature list."""

    __slots__ = ("blocks", "n", "slots")

    def __init__(self, n: int, blocks: list[Block], slots: Sequence[Slot]) -> None:
        self.n, self.blocks, self.slots = n, blocks, tuple(slots)

    @classmethod
    def from_columns(
        cls, dtypes: Sequence[DataType], columns: Sequence[tuple[np.ndarray, np.ndarray]]
    ) -> FeatureFrame:
        """Group per-feature ``(values, valid)`` columns into blocks (consecutive same element type)."""
        n = len(columns[0][1]) if columns else 0
        blocks: list[Block] = []
        slots: list[Slot] = []
        pending: list[tuple[np.ndarray, np.ndarray]] = []
        offset = 0
        for dt, (values, valid) in zip(dtypes, columns, strict=True):
            if not dt.is_fixed_width:
                cls._flush(blocks, pending)
                slots.append(Slot(len(blocks), 0, 0, 0, dt.is_vector))
                blocks.append(Block(dt, values, valid.reshape(n, 1)))
                continue
            elem = dt.scalar
            if pending and blocks[-1].dtype is not elem:
                cls._flush(blocks, pending)
            if not pending:
                blocks.append(Block(elem, np.empty((n, 0)), np.empty((n, 0), dtype=bool)))
                offset = 0
            dim = values.shape[1] if values.ndim == 2 else 0
            slots.append(Slot(len(blocks) - 1, offset, dim, len(pending), values.ndim == 2))
            offset += dim if values.ndim == 2 else 1
            pending.append((values, valid))
        cls._flush(blocks, pending)
        return cls(n, blocks, slots)

    @staticmethod
    def _flush(blocks: list[Block], pending: list[tuple[np.ndarray, np.ndarray]]) -> None:
        if not pending:
            return
        block = blocks[-1]
        n = len(pending[0][1])
        block.values = np.concatenate([v.reshape(n, -1) for v, _ in pending], axis=1)
        block.valid = np.stack([ok for _, ok in pending], axis=1)
        pending.clear()

    def column(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Feature ``j`` as ``(values, valid)`` views: 1-D scalars, 2-D vectors, 1-D objects."""
        slot = self.slots[j]
        block = self.blocks[slot.block]
        valid = block.valid[:, slot.vcol]
        if not block.fixed:
            return block.values, valid
        if not slot.vector:
            return block.values[:, slot.start], valid
        return block.values[:, slot.start : slot.start + slot.dim], valid

    def take(self, idx: np.ndarray, present: bool = False) -> FeatureFrame:
        """Rows ``idx`` (in that order). ``present``: the caller knows no index is the last row, so a
        dense block's rows are all valid without comparing the indices."""
        blocks = []
        last, n = self.n - 1, len(idx)
        for b in self.blocks:  # ndarray.take: the same rows as ``values[idx]``, measured ~1 µs faster
            if b.dense:
                valid = _all_valid(n, b.valid.shape[1])
                if not present:
                    valid[idx == last] = False
            else:
                valid = b.valid.take(idx, axis=0)
            blocks.append(Block(b.dtype, b.values.take(idx, axis=0), valid, False, b.fixed))
        return FeatureFrame(n, blocks, self.slots)

    def repeat(self, row: int, n: int) -> FeatureFrame:
        """Row ``row`` ``n`` times: ``take`` of ``n`` equal indices with no index array."""
        blocks = []
        for b in self.blocks:
            if b.dense:
                k = b.valid.shape[1]
                valid = np.zeros((n, k), dtype=bool) if row == self.n - 1 else _all_valid(n, k)
            else:
                valid = b.valid[row : row + 1].repeat(n, axis=0)
            blocks.append(Block(b.dtype, b.values[row : row + 1].repeat(n, axis=0), valid, False, b.fixed))
        return FeatureFrame(n, blocks, self.slots)

    @property
    def signature(self) -> tuple:
        """Block structure (types, widths, slots): frames with equal signatures can be merged block-wise."""
        return (tuple((b.dtype, b.values.shape[1:], b.valid.shape[1]) for b in self.blocks), self.slots)

    def any_valid(self) -> bool:
        return any(b.valid.any() for b in self.blocks)


def _all_valid(n: int, k: int) -> np.ndarray:
    """``np.ones((n, k), dtype=bool)`` at half its cost (``np.ones`` is Python-level)."""
    valid = np.empty((n, k), dtype=bool)
    valid.fill(True)
    return valid


def empty_objects(n: int, vector: bool) -> np.ndarray:
    """An object column of ``n`` empty strings (or empty lists for string vectors)."""
    out = np.empty(n, dtype=object)
    for i in range(n):
        out[i] = [] if vector else ""
    return out


def missing_frame(dtypes: Sequence[DataType], n: int) -> FeatureFrame:
    """``n`` entities with every feature missing (vectors of length 0)."""
    cols = []
    for dt in dtypes:
        if not dt.is_fixed_width:
            values = empty_objects(n, dt.is_vector)
        elif dt.is_vector:
            values = np.zeros((n, 0), dtype=dt.numpy_dtype)
        else:
            values = np.zeros(n, dtype=dt.numpy_dtype)
        cols.append((values, np.zeros(n, dtype=bool)))
    return FeatureFrame.from_columns(dtypes, cols)


def assemble(
    dtypes: Sequence[DataType], n: int, parts: Sequence[tuple[np.ndarray, FeatureFrame]]
) -> FeatureFrame:
    """A frame of ``n`` rows: ``frame`` rows go to positions ``pos`` for each ``(pos, frame)``; rows not
    covered are missing. Frames that hold no valid cell are skipped. Block-wise when the frames agree;
    otherwise per feature, keeping the vector length of the first frame that has one (others: missing)."""
    parts = [(pos, f) for pos, f in parts if f.n and f.any_valid()]
    if not parts:
        return missing_frame(dtypes, n)
    if len(parts) == 1 and parts[0][1].n == n and np.array_equal(parts[0][0], np.arange(n)):
        return parts[0][1]
    first = parts[0][1]
    if all(f.signature == first.signature for _, f in parts):
        blocks = []
        for b_i, block in enumerate(first.blocks):
            if block.fixed:
                values = np.zeros((n, *block.values.shape[1:]), dtype=block.values.dtype)
            else:
                values = empty_objects(n, block.dtype.is_vector)
            valid = np.zeros((n, block.valid.shape[1]), dtype=bool)
            for pos, frame in parts:
                values[pos] = frame.blocks[b_i].values
                valid[pos] = frame.blocks[b_i].valid
            blocks.append(Block(block.dtype, values, valid))
        return FeatureFrame(n, blocks, first.slots)
    base = missing_frame(dtypes, n)
    cols = [base.column(j) for j in range(len(dtypes))]
    out = []
    for j, dt in enumerate(dtypes):
        values, valid = cols[j][0].copy(), cols[j][1].copy()
        if dt.is_fixed_width and dt.is_vector:
            dims = [f.slots[j].dim for _, f in parts if f.column(j)[1].any()]
            values = np.zeros((n, dims[0] if dims else 0), dtype=dt.numpy_dtype)
        for pos, frame in parts:
            v, ok = frame.column(j)
            if values.ndim == 2 and (v.ndim != 2 or v.shape[1] != values.shape[1]):
                continue
            values[pos] = v
            valid[pos] = ok
        out.append((values, valid))
    return FeatureFrame.from_columns(dtypes, out)
