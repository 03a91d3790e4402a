"""Matrix -> LogTable: the raw wire cells (reference 4.4) of every schema entry, column by column.

Cells are produced by the core's converters only (``ComponentMatrix.read`` + ``api.encode_array`` for
fixed widths, ``ComponentMatrix.cells`` otherwise), so the logged bytes are exactly the reference 4.4
encoding of what the matrix holds. A column whose cells all have one width (fixed scalars, vectors of a
constant dim) is kept as a ``(rows, width)`` uint8 numpy block — usually a view of the matrix's own
values, no copy — which the proto and parquet formats lay out with numpy; only strings and ragged
vectors are Arrow ``binary`` arrays built per row. Arrow arrays of block columns are made on demand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from inferflow_core.api import ComponentMatrix, encode_array

from .schema import SchemaEntry


@dataclass
class LogColumn:
    """One schema entry's cells: a uint8 ``block`` (every cell ``width`` bytes) or Arrow ``cells``."""

    valid: np.ndarray  # (rows,) bool: which cells are present
    block: np.ndarray | None = None  # (rows, width) uint8; rows where ``valid`` is False hold junk
    cells: pa.Array | None = None  # binary, null = missing (always set when ``block`` is None)
    all_valid: bool | None = None  # computed from ``valid`` when not given

    def __post_init__(self) -> None:
        if self.all_valid is None:
            self.all_valid = bool(self.valid.all())

    @property
    def rows(self) -> int:
        return len(self.valid)

    def arrow(self) -> pa.Array:
        """The cells as an Arrow binary array (null = missing)."""
        if self.cells is None:
            assert self.block is not None
            self.cells = fixed_binary(self.block, None if self.all_valid else self.valid)
        return self.cells

    def var_parts(self, fill: bytes = b"") -> tuple[np.ndarray, np.ndarray]:
        """(lengths (rows,) int64, the present cells' bytes concatenated in row order as uint8).

        A missing cell is ``fill`` (the proto format's default of reference 4.5, or nothing).
        """
        if self.block is not None and not fill:
            width = self.block.shape[1]
            if self.all_valid:
                return np.full(self.rows, width, dtype=np.int64), self.block.reshape(-1)
            return self.valid.astype(np.int64) * width, self.block[self.valid].reshape(-1)
        cells = self.arrow()
        if cells.null_count:
            cells = cells.fill_null(pa.scalar(fill, pa.binary()))
        bufs = cells.buffers()
        offsets = np.frombuffer(bufs[1], dtype=np.int32)[cells.offset : cells.offset + len(cells) + 1]
        data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
        return np.diff(offsets).astype(np.int64), data[offsets[0] : offsets[-1]]

    def take(self, keep: np.ndarray | slice) -> LogColumn:
        """Rows selected by a boolean mask or a slice."""
        block = None if self.block is None else self.block[keep]
        if self.cells is None:
            cells = None
        elif isinstance(keep, slice):
            start, stop, _ = keep.indices(len(self.cells))
            cells = self.cells.slice(start, stop - start)
        else:
            cells = self.cells.filter(pa.array(keep, type=pa.bool_()))
        return LogColumn(self.valid[keep], block, cells, True if self.all_valid else None)


@dataclass
class LogTable:
    """Rows to log: entity ids plus one :class:`LogColumn` per schema entry."""

    entries: tuple[SchemaEntry, ...]
    entities: list[str]
    columns: list[LogColumn]
    _valid: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def rows(self) -> int:
        return len(self.entities)

    def valid_matrix(self) -> np.ndarray:
        """(rows, columns) bool: which cells are present."""
        if self._valid is None:
            cols = self.columns
            self._valid = np.stack([c.valid for c in cols], axis=1) if cols else np.ones((self.rows, 0), bool)
        return self._valid

    def filter(self, keep: np.ndarray) -> LogTable:
        ents = [e for e, k in zip(self.entities, keep.tolist(), strict=True) if k]
        return LogTable(self.entries, ents, [c.take(keep) for c in self.columns])

    def slice(self, start: int, stop: int) -> LogTable:
        part = slice(start, stop)
        return LogTable(self.entries, self.entities[start:stop], [c.take(part) for c in self.columns])


def fixed_binary(block: np.ndarray, valid: np.ndarray | None) -> pa.Array:
    """A binary array over the rows of a ``(rows, width)`` uint8 block (null where not ``valid``)."""
    rows, width = block.shape
    offsets = np.arange(rows + 1, dtype=np.int32) * width
    nulls = 0 if valid is None else int(rows - np.count_nonzero(valid))
    bitmap = None if not nulls or valid is None else pa.array(valid, type=pa.bool_()).buffers()[1]
    data = pa.py_buffer(np.ascontiguousarray(block))
    return pa.Array.from_buffers(pa.binary(), rows, [bitmap, pa.py_buffer(offsets), data], null_count=nulls)


def _cells_column(cells: Sequence[bytes | None]) -> LogColumn:
    arr = pa.array([c if c else None for c in cells], type=pa.binary())
    valid = arr.is_valid().to_numpy(zero_copy_only=False) if arr.null_count else np.ones(len(arr), bool)
    return LogColumn(valid, None, arr)


def _missing_column(rows: int) -> LogColumn:
    return LogColumn(np.zeros(rows, dtype=bool), None, pa.nulls(rows, type=pa.binary()))


def _as_block(values: np.ndarray, entry: SchemaEntry, rows: int) -> np.ndarray:
    """(rows, width) uint8 little-endian cells: a view of ``values`` when it already is the entry's
    type (one copy when it is a strided column view), else through the core's converter."""
    if values.dtype == entry.block_dtype:
        return np.ascontiguousarray(values).view(np.uint8).reshape(rows, -1)
    return np.frombuffer(encode_array(values, entry.dtype), dtype=np.uint8).reshape(rows, -1)


def column_cells(matrix: ComponentMatrix, entry: SchemaEntry) -> LogColumn:
    """The column of ``entry`` in ``matrix`` as raw cells of its type (missing where invalid)."""
    rows, name, dtype = matrix.rows, entry.name, entry.dtype
    if not matrix.has(name):
        return _missing_column(rows)
    if entry.block_dtype is not None:
        values, valid = matrix.read(name, dtype)
        if values.dtype != object and (values.ndim == 2 or not entry.is_var):
            if not rows or values.size == 0:
                return _missing_column(rows)
            return LogColumn(valid, _as_block(values, entry, rows))
    return _cells_column(matrix.cells(name, dtype))


def build_table(
    matrix: ComponentMatrix, entries: tuple[SchemaEntry, ...], entities: list[str]
) -> tuple[LogTable, np.ndarray]:
    """(table, bad-row mask). A column that fails to convert as a whole is retried row by row; rows
    whose cell still fails are marked bad (dropped by the caller and counted), never the whole request.

    Runs of consecutive fixed-width scalar entries of one type are gathered with one
    ``ComponentMatrix.read_many`` (a view of the matrix's column block when they were written together);
    each entry's cells are then a contiguous view of one feature-major byte array.
    """
    bad = np.zeros(matrix.rows, dtype=bool)
    columns: list[LogColumn] = []
    run: list[SchemaEntry] = []
    for entry in entries:
        if _scalar_entry(matrix, entry):
            if run and run[-1].dtype is not entry.dtype:
                _flush(matrix, run, columns, bad)
            run.append(entry)
            continue
        _flush(matrix, run, columns, bad)
        columns.append(_entry_column(matrix, entry, bad))
    _flush(matrix, run, columns, bad)
    return LogTable(entries, entities, columns), bad


def _scalar_entry(matrix: ComponentMatrix, entry: SchemaEntry) -> bool:
    return entry.block_dtype is not None and not entry.is_var and matrix.has(entry.name)


def _entry_column(matrix: ComponentMatrix, entry: SchemaEntry, bad: np.ndarray) -> LogColumn:
    try:
        return column_cells(matrix, entry)
    except Exception:
        return _row_by_row(matrix, entry, bad)


def _flush(matrix: ComponentMatrix, run: list[SchemaEntry], out: list[LogColumn], bad: np.ndarray) -> None:
    """Append the columns of ``run`` (same-type fixed scalar entries) and empty it."""
    if not run:
        return
    rows = matrix.rows
    gathered = None
    if len(run) > 1 and rows:
        try:
            values, valid = matrix.read_many([e.name for e in run], run[0].dtype)
            if values.dtype == run[0].block_dtype:
                gathered = values, valid
        except Exception:
            gathered = None  # per entry below, with its row-by-row fallback
    if gathered is None:
        out.extend(_entry_column(matrix, e, bad) for e in run)
    else:
        values, valid = gathered
        # feature-major: one transposing copy, then every entry's cells are a contiguous (rows, width)
        # view (Arrow buffers and the proto row packer take them without another copy)
        major = np.ascontiguousarray(values.T).view(np.uint8).reshape(len(run), rows, -1)
        full = np.asarray(valid.all(axis=0), dtype=bool).tolist()
        out.extend(LogColumn(valid[:, j], major[j], None, full[j]) for j in range(len(run)))
    run.clear()


def _row_by_row(matrix: ComponentMatrix, entry: SchemaEntry, bad: np.ndarray) -> LogColumn:
    cells: list[bytes | None] = []
    for i in range(matrix.rows):
        try:
            cells.append(matrix.take([i]).cells(entry.name, entry.dtype)[0])
        except Exception:
            bad[i] = True
            cells.append(None)
    return _cells_column(cells)


def slate_entities(target_ids: list[str], target_indices: Sequence[np.ndarray]) -> list[str]:
    """A slate's entity id: the ids of its targets joined with ``,``."""
    return [
        ",".join(target_ids[int(i)] for i in idx if 0 <= int(i) < len(target_ids)) for idx in target_indices
    ]
