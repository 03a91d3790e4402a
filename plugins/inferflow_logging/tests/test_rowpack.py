"""The numpy row layout (rowpack) against a plain per-cell reference, on rows that mix present and
missing cells of every type (the golden tests hold one all-present and one all-missing row)."""

from __future__ import annotations

import io
import struct

import numpy as np
import pyarrow.parquet as pq
import pytest
from iflog_support import ALL_TYPES, typed_values
from inferflow_logging.formats import FORMATS
from inferflow_logging.schema import SchemaEntry
from inferflow_logging.table import build_table

from inferflow_core.api import ComponentMatrix, DataType

ROWS = 11


def mixed_matrix(order: list[DataType]) -> tuple[ComponentMatrix, tuple[SchemaEntry, ...]]:
    m = ComponentMatrix(ROWS)
    entries = []
    for k, dt in enumerate(order):
        name = f"c{k}"
        m.declare(name, dt)
        values, valid = typed_values(dt, ROWS, missing_every=2 + k % 4)  # different gaps per column
        m.set_column(name, values, valid)
        entries.append(SchemaEntry(name, dt))
    entries.append(SchemaEntry("absent", DataType.FP32))  # not in the matrix: missing everywhere
    return m, tuple(entries)


def reference_proto(m: ComponentMatrix, entries: tuple[SchemaEntry, ...]) -> list[bytes]:
    cols = [m.cells(e.name, e.dtype) if m.has(e.name) else [b""] * ROWS for e in entries]
    rows = []
    for i in range(ROWS):
        out, flag = b"", 1
        for e, col in zip(entries, cols, strict=True):
            cell = col[i]
            flag &= bool(cell)
            if e.is_var:
                value = cell or (b"0.0" if e.dtype is DataType.STRING else b"")
                out += struct.pack("<H", len(value)) + value
            else:
                out += cell or b"\0" * e.itemsize
        rows.append(bytes([flag]) + out)
    return rows


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_proto_and_parquet_layout_match_a_per_cell_reference(seed: int) -> None:
    order = list(np.random.default_rng(seed).permutation(np.array(ALL_TYPES * 2, dtype=object)))
    m, entries = mixed_matrix(order)
    table, bad = build_table(m, entries, [f"e{i}" for i in range(ROWS)])
    assert not bad.any()
    (chunk,) = FORMATS["proto"].encode(table, 500)
    assert chunk.features == reference_proto(m, entries)
    (pchunk,) = FORMATS["parquet"].encode(table, 500)
    maps = pq.read_table(io.BytesIO(pchunk.features[0])).column("Features").to_pylist()
    cols = [m.cells(e.name, e.dtype) if m.has(e.name) else [b""] * ROWS for e in entries]
    assert maps == [[(j, col[i]) for j, col in enumerate(cols)] for i in range(ROWS)]
    # chunking slices the same table: 4 + 4 + 3 rows, same bytes
    assert [f for c in FORMATS["proto"].encode(table, 4) for f in c.features] == chunk.features
    keep = np.arange(ROWS) % 3 != 1  # dropping rows (as bad rows are) keeps the others' bytes
    (kept,) = FORMATS["proto"].encode(table.filter(keep), 500)
    assert kept.features == [r for r, k in zip(chunk.features, keep, strict=True) if k]
    assert kept.entities == [f"e{i}" for i in range(ROWS) if keep[i]]
