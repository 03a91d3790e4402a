"""Matrix -> LogTable: one Arrow ``binary`` array of raw wire cells per schema entry (null = missing).

Cells are produced by the core's converters only (``ComponentMatrix.read`` + ``api.encode_array`` for
fixed widths, ``ComponentMatrix.cells`` otherwise), so the logged bytes are exactly the reference 4.4
encoding of what the matrix holds. Fixed-width columns are converted with numpy in one call each; the
three log formats are built from this table with Arrow compute kernels (no per-cell Python loops
except for strings and ragged vectors, which are per-row by nature).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from inferflow_core.api import ComponentMatrix, DataType, encode_array

from .schema import SchemaEntry


@dataclass
class LogTable:
    """Rows to log: entity ids plus one binary column per schema entry."""

    entries: tuple[SchemaEntry, ...]
    entities: list[str]
    columns: list[pa.Array]

    @property
    def rows(self) -> int:
        return len(self.entities)

    def filter(self, keep: np.ndarray) -> LogTable:
        mask = pa.array(keep, type=pa.bool_())
        ents = [e for e, k in zip(self.entities, keep.tolist(), strict=True) if k]
        return LogTable(self.entries, ents, [c.filter(mask) for c in self.columns])

    def slice(self, start: int, stop: int) -> LogTable:
        return LogTable(
            self.entries, self.entities[start:stop], [c.slice(start, stop - start) for c in self.columns]
        )

    def valid_matrix(self) -> np.ndarray:
        """(rows, columns) bool: which cells are present."""
        out = np.ones((self.rows, len(self.columns)), dtype=bool)
        for j, col in enumerate(self.columns):
            if col.null_count:
                out[:, j] = col.is_valid().to_numpy(zero_copy_only=False)
        return out


def fixed_binary(data: bytes, rows: int, width: int, valid: np.ndarray | None) -> pa.Array:
    """A binary array over ``rows`` cells of ``width`` bytes each (no copy of ``data``)."""
    offsets = np.arange(rows + 1, dtype=np.int32) * width
    nulls = 0 if valid is None else int(rows - np.count_nonzero(valid))
    bitmap = None if not nulls or valid is None else pa.array(valid, type=pa.bool_()).buffers()[1]
    return pa.Array.from_buffers(
        pa.binary(), rows, [bitmap, pa.py_buffer(offsets), pa.py_buffer(data)], null_count=nulls
    )


def _cells_array(cells: Sequence[bytes | None]) -> pa.Array:
    return pa.array([c if c else None for c in cells], type=pa.binary())


def column_cells(matrix: ComponentMatrix, name: str, dtype: DataType) -> pa.Array:
    """The column ``name`` of ``matrix`` as raw cells of ``dtype`` (null where missing)."""
    rows = matrix.rows
    if not matrix.has(name):
        return pa.nulls(rows, type=pa.binary())
    if dtype.is_fixed_width:
        values, valid = matrix.read(name, dtype)
        if values.dtype != object and (not dtype.is_vector or values.ndim == 2):
            data = encode_array(values, dtype) if rows else b""
            width = len(data) // rows if rows else 0
            if width == 0:
                return pa.nulls(rows, type=pa.binary())
            return fixed_binary(data, rows, width, valid)
    return _cells_array(matrix.cells(name, dtype))


def build_table(
    matrix: ComponentMatrix, entries: tuple[SchemaEntry, ...], entities: list[str]
) -> tuple[LogTable, np.ndarray]:
    """(table, bad-row mask). A column that fails to convert as a whole is retried row by row; rows
    whose cell still fails are marked bad (dropped by the caller and counted), never the whole request.
    """
    bad = np.zeros(matrix.rows, dtype=bool)
    columns = []
    for entry in entries:
        try:
            columns.append(column_cells(matrix, entry.name, entry.dtype))
        except Exception:
            columns.append(_row_by_row(matrix, entry, bad))
    return LogTable(entries, entities, columns), bad


def _row_by_row(matrix: ComponentMatrix, entry: SchemaEntry, bad: np.ndarray) -> pa.Array:
    cells: list[bytes | None] = []
    for i in range(matrix.rows):
        try:
            cells.append(matrix.take([i]).cells(entry.name, entry.dtype)[0])
        except Exception:
            bad[i] = True
            cells.append(None)
    return _cells_array(cells)


def slate_entities(target_ids: list[str], target_indices: Sequence[np.ndarray]) -> list[str]:
    """A slate's entity id: the ids of its targets joined with ``,``."""
    return [
        ",".join(target_ids[int(i)] for i in idx if 0 <= int(i) < len(target_ids)) for idx in target_indices
    ]
