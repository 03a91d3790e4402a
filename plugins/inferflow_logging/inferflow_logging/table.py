"""Matrix -> LogTable: the raw wire cells (go-compatibility §4.4) of every schema entry, column by column.

Cells are produced by the core's converters only (``ComponentMatrix.read`` + ``api.codecs.encode_array`` for
fixed widths, ``ComponentMatrix.cells`` otherwise), so the logged bytes are exactly the go-compatibility §4.4
encoding of what the matrix holds. A column whose cells all have one width (fixed scalars, vectors of a
constant dim) is kept as a ``(rows, width)`` uint8 numpy block — usually a view of the matrix's own
values, no copy — which the proto and parquet formats lay out with numpy; only strings and ragged
vectors are Arrow ``binary`` arrays built per row. Arrow arrays of block columns are made on demand.
Runs of consecutive scalar entries of one type stay together as a :class:`CellGroup` (one
``read_many``, a row-major block = the proto / parquet layout of those cells), so per-request work does
not grow with the number of scalar features.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from inferflow_core.api import ComponentMatrix, DataType, codecs

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

        A missing cell is ``fill`` (the proto format's default of go-compatibility §4.5, or nothing).
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
class CellGroup:
    """Consecutive schema entries (``start:stop``) of one fixed-width scalar type read as one block.

    ``block`` is ``(rows, k * width)`` uint8, row-major: row ``i`` is the run's cells of row ``i``
    concatenated, exactly the proto layout of those entries (and their parquet map values) when every
    cell is present — usually a view of the matrix's column block.
    """

    start: int
    stop: int
    block: np.ndarray  # (rows, k * width) uint8; missing cells hold junk
    valid: np.ndarray  # (rows, k) bool
    all_valid: bool | None = None  # computed from ``valid`` when not given

    def __post_init__(self) -> None:
        if self.all_valid is None:
            self.all_valid = bool(self.valid.all())

    @property
    def width(self) -> int:
        return self.block.shape[1] // max(1, self.stop - self.start)

    def columns(self) -> list[LogColumn]:
        """One column per entry; one feature-major copy, so each column's cells are contiguous."""
        w, k = self.width, self.stop - self.start
        rows = self.block.shape[0]
        major = np.ascontiguousarray(self.block.reshape(rows, k, w).transpose(1, 0, 2))
        full: list[bool] = [True] * k if self.all_valid else np.all(self.valid, axis=0).tolist()
        return [LogColumn(self.valid[:, j], major[j], None, full[j]) for j in range(k)]

    def take(self, keep: np.ndarray | slice) -> CellGroup:
        return CellGroup(self.start, self.stop, self.block[keep], self.valid[keep], self.all_valid or None)


Part = LogColumn | CellGroup  # one entry's column, or a group of consecutive entries


@dataclass
class LogTable:
    """Rows to log: entity ids plus the cells of every schema entry, as :data:`Part` s in schema order."""

    entries: tuple[SchemaEntry, ...]
    entities: list[str]
    parts: list[Part]
    _valid: np.ndarray | None = field(default=None, repr=False, compare=False)
    _columns: list[LogColumn] | None = field(default=None, repr=False, compare=False)

    @property
    def rows(self) -> int:
        return len(self.entities)

    @property
    def columns(self) -> list[LogColumn]:
        """One :class:`LogColumn` per schema entry (groups split into views; built on first use)."""
        if self._columns is None:
            cols: list[LogColumn] = []
            for part in self.parts:
                if isinstance(part, CellGroup):
                    cols.extend(part.columns())
                else:
                    cols.append(part)
            self._columns = cols
        return self._columns

    def valid_matrix(self) -> np.ndarray:
        """(rows, columns) bool: which cells are present."""
        if self._valid is None:
            pieces = [p.valid if isinstance(p, CellGroup) else p.valid[:, None] for p in self.parts]
            self._valid = np.concatenate(pieces, axis=1) if pieces else np.ones((self.rows, 0), bool)
        return self._valid

    def row_complete(self) -> np.ndarray:
        """(rows,) bool: every cell of the row present (the proto flag byte)."""
        out = np.ones(self.rows, dtype=bool)
        for part in self.parts:
            if part.all_valid:
                continue
            out &= part.valid.all(axis=1) if isinstance(part, CellGroup) else part.valid
        return out

    def cells(self) -> list[list[bytes | None]]:
        """Row by row, every entry's wire cell (go-compatibility §4.4; None = missing): the simple way
        for a format to read the table (the built-in formats work on the column blocks instead)."""
        cols = [c.arrow().to_pylist() for c in self.columns]
        if not cols:
            return [[] for _ in range(self.rows)]
        return [[c or None for c in row] for row in zip(*cols, strict=True)]

    @classmethod
    def from_rows(
        cls, entries: tuple[SchemaEntry, ...], entities: list[str], rows: Sequence[Sequence[bytes | None]]
    ) -> LogTable:
        """A table of given wire cells (None or empty = missing), e.g. for a format's tests. A cell of a
        fixed-width entry must have that entry's size."""
        if len(rows) != len(entities):
            raise ValueError(f"{len(rows)} rows for {len(entities)} entities")
        parts: list[Part] = []
        for j, entry in enumerate(entries):
            cells = [row[j] for row in rows]
            if entry.is_var or entry.block_dtype is None:
                parts.append(_cells_column(cells))
                continue
            valid = np.array([bool(c) for c in cells], dtype=bool)
            block = np.zeros((len(cells), entry.itemsize), dtype=np.uint8)
            for i, cell in enumerate(cells):
                if cell:
                    if len(cell) != entry.itemsize:
                        raise ValueError(f"{entry.name}: a {entry.dtype.wire_name} cell of {len(cell)} bytes")
                    block[i] = np.frombuffer(cell, dtype=np.uint8)
            parts.append(LogColumn(valid, block))
        return cls(entries, list(entities), parts)

    def filter(self, keep: np.ndarray) -> LogTable:
        ents = [e for e, k in zip(self.entities, keep.tolist(), strict=True) if k]
        return LogTable(self.entries, ents, [p.take(keep) for p in self.parts])

    def slice(self, start: int, stop: int) -> LogTable:
        part = slice(start, stop)
        return LogTable(self.entries, self.entities[start:stop], [p.take(part) for p in self.parts])


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
    return np.frombuffer(codecs.encode_array(values, entry.dtype), dtype=np.uint8).reshape(rows, -1)


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

    Runs of consecutive fixed-width scalar entries of one type (planned once per schema) are gathered
    with one ``ComponentMatrix.read_many`` into a :class:`CellGroup` — a view of the matrix's column
    block when they were written together — so per request the cost does not grow with the number of
    scalar features.
    """
    bad = np.zeros(matrix.rows, dtype=bool)
    parts: list[Part] = []
    for start, stop, names in _leaves(matrix, entries):
        if names is None:
            parts.append(_entry_column(matrix, entries[start], bad))
        else:
            _add_piece(matrix, entries, start, stop, names, parts, bad)
    return LogTable(entries, entities, parts), bad


_LEAVES: dict[int, tuple[tuple[SchemaEntry, ...], list[tuple[int, int, tuple[str, ...] | None]]]] = {}


def _leaves(
    matrix: ComponentMatrix, entries: tuple[SchemaEntry, ...]
) -> list[tuple[int, int, tuple[str, ...] | None]]:
    """:func:`_plan` with each run cut by :func:`_block_runs` and its names: ``(start, stop, names)``
    for a run read with one ``read_many``, ``(i, i + 1, None)`` for an entry read on its own. Found
    with the first matrix of a schema (an empty one is not kept), like the block runs."""
    got = _LEAVES.get(id(entries))
    if got is not None and got[0] is entries:
        return got[1]
    leaves: list[tuple[int, int, tuple[str, ...] | None]] = []
    for start, stop, dtype in _plan(entries):
        if dtype is None:
            leaves.append((start, stop, None))
            continue
        pieces = _block_runs(matrix, entries, start, stop) if matrix.rows and stop - start > 1 else []
        for a, b in pieces if len(pieces) > 1 else [(start, stop)]:
            leaves.append((a, b, tuple(e.name for e in entries[a:b])))
    if matrix.rows:
        if len(_LEAVES) > 1024:
            _LEAVES.clear()
        _LEAVES[id(entries)] = (entries, leaves)
    return leaves


_PLANS: dict[int, tuple[tuple[SchemaEntry, ...], list[tuple[int, int, DataType | None]]]] = {}


def _plan(entries: tuple[SchemaEntry, ...]) -> list[tuple[int, int, DataType | None]]:
    """``(start, stop, dtype)`` spans: runs of fixed scalar entries of one type, others one by one
    (dtype None). Cached by the identity of ``entries`` (a schema's tuple lives as long as the schema)."""
    got = _PLANS.get(id(entries))
    if got is not None and got[0] is entries:
        return got[1]
    spans: list[tuple[int, int, DataType | None]] = []
    for i, entry in enumerate(entries):
        scalar = entry.block_dtype is not None and not entry.is_var
        if scalar and spans and spans[-1][2] is entry.dtype and spans[-1][1] == i:
            spans[-1] = (spans[-1][0], i + 1, entry.dtype)
        else:
            spans.append((i, i + 1, entry.dtype if scalar else None))
    if len(_PLANS) > 1024:
        _PLANS.clear()
    _PLANS[id(entries)] = (entries, spans)
    return spans


def _entry_column(matrix: ComponentMatrix, entry: SchemaEntry, bad: np.ndarray) -> LogColumn:
    try:
        return column_cells(matrix, entry)
    except Exception:
        return _row_by_row(matrix, entry, bad)


def _add_run(
    matrix: ComponentMatrix,
    entries: tuple[SchemaEntry, ...],
    start: int,
    stop: int,
    out: list[Part],
    bad: np.ndarray,
) -> None:
    """Append the parts of the same-type fixed scalar entries ``start:stop``."""
    if matrix.rows and stop - start > 1:
        pieces = _block_runs(matrix, entries, start, stop)
        if len(pieces) > 1:  # one read per column block: views, no copy of the run
            for a, b in pieces:
                _add_run(matrix, entries, a, b, out, bad)
            return
    _add_piece(matrix, entries, start, stop, tuple(e.name for e in entries[start:stop]), out, bad)


def _add_piece(
    matrix: ComponentMatrix,
    entries: tuple[SchemaEntry, ...],
    start: int,
    stop: int,
    names: tuple[str, ...],
    out: list[Part],
    bad: np.ndarray,
) -> None:
    """Append the part(s) of the same-type fixed scalar entries ``start:stop`` (named ``names``) read
    with one ``read_many``; entry by entry when that fails."""
    rows, first = matrix.rows, entries[start]
    if rows:
        try:
            values, valid = matrix.read_many(names, first.dtype)
        except KeyError:  # some entries are not in the matrix: split around them
            _split_run(matrix, entries, start, stop, out, bad)
            return
        except Exception:
            values = None  # entry by entry below, with the row-by-row fallback
        if values is not None and values.dtype == first.block_dtype and values.shape == (rows, stop - start):
            if values.strides[1] != values.itemsize:
                values = np.ascontiguousarray(values)
            block = values.view(np.uint8)  # (rows, k * width): a view when the last axis is contiguous
            out.append(CellGroup(start, stop, block, np.asarray(valid, dtype=bool)))
            return
    out.extend(_entry_column(matrix, e, bad) for e in entries[start:stop])


_BLOCK_RUNS: dict[tuple[int, int, int], tuple[tuple[SchemaEntry, ...], list[tuple[int, int]]]] = {}


def _block_runs(
    matrix: ComponentMatrix, entries: tuple[SchemaEntry, ...], start: int, stop: int
) -> list[tuple[int, int]]:
    """The run ``start:stop`` cut where ``read_many`` would stop being a view of one column block (the
    components that wrote the blocks write them alike for every request: found once per schema and
    run, by probing). Reading each piece gives views; one ``read_many`` over the whole run would copy
    it into a new block. Columns outside blocks stay together (read and stacked at once)."""
    key = (id(entries), start, stop)
    got = _BLOCK_RUNS.get(key)
    if got is not None and got[0] is entries:
        return got[1]
    names = [e.name for e in entries[start:stop]]
    dtype = entries[start].dtype

    def view(a: int, b: int) -> bool:
        try:
            values, _ = matrix.read_many(names[a:b], dtype)
        except Exception:
            return False
        return not values.flags.owndata and values.shape == (matrix.rows, b - a)

    pieces: list[tuple[int, int]] = []
    i = 0
    while i < len(names):
        j = i + 1
        if view(i, j):
            while j < len(names) and view(i, j + 1):
                j += 1
            pieces.append((start + i, start + j))
        elif pieces and pieces[-1][1] == start + i and not view(pieces[-1][0] - start, i):
            pieces[-1] = (pieces[-1][0], start + j)  # next to other columns outside blocks
        else:
            pieces.append((start + i, start + j))
        i = j
    if len(_BLOCK_RUNS) > 1024:
        _BLOCK_RUNS.clear()
    _BLOCK_RUNS[key] = (entries, pieces)
    return pieces


def _split_run(
    matrix: ComponentMatrix,
    entries: tuple[SchemaEntry, ...],
    start: int,
    stop: int,
    out: list[Part],
    bad: np.ndarray,
) -> None:
    i = start
    while i < stop:
        if not matrix.has(entries[i].name):
            out.append(_missing_column(matrix.rows))
            i += 1
            continue
        j = i
        while j < stop and matrix.has(entries[j].name):
            j += 1
        _add_run(matrix, entries, i, j, out, bad)
        i = j


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
