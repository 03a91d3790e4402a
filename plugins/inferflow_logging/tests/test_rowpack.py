"""The numpy row layout (rowpack) against a plain per-cell reference, on rows that mix present and
missing cells of every type (the golden tests hold one all-present and one all-missing row)."""

from __future__ import annotations

import io
import itertools
import struct

import numpy as np
import pyarrow.parquet as pq
import pytest
from google.protobuf.internal import encoder
from iflog_support import ALL_TYPES, typed_values
from inferflow_logging.envelope import frame_entities, wrap, wrap_framed
from inferflow_logging.formats import FORMATS
from inferflow_logging.rowpack import frame_heads, pack
from inferflow_logging.schema import SchemaEntry
from inferflow_logging.table import CellGroup, build_table

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


def test_framed_proto_chunks_equal_the_generic_envelope() -> None:
    """The proto format's pre-framed ``features`` region (vectorised protobuf heads, ragged rows of
    mixed lengths) wraps to the same bytes as the per-blob envelope."""
    order = list(np.random.default_rng(5).permutation(np.array(ALL_TYPES * 3, dtype=object)))
    m, entries = mixed_matrix(order)
    table, _ = build_table(m, entries, [f"e{i}" for i in range(ROWS)])
    common = {"user_id": "u", "tracking_id": "t", "model_id": "m", "metadata": b"\x00", "parents": []}
    for chunk in FORMATS["proto"].encode(table, 4):
        assert chunk.framed is not None
        framed = wrap_framed(
            entities=frame_entities(chunk.entities), features=chunk.framed, created_at=0, **common
        )
        assert framed == wrap(entities=chunk.entities, features=chunk.features, created_at=0, **common)


@pytest.mark.parametrize("copies", [1, 6])  # rows of ~100 bytes (one-byte heads) and of ~600
def test_rows_of_present_fixed_width_cells_match_the_reference(copies: int) -> None:
    """Every cell present and fixed-width (scalars, vectors of one dim): every row has one layout, framed
    with one head for all rows; the bytes are the per-cell reference's, the envelope the generic one."""
    fixed = [dt for dt in ALL_TYPES if dt.is_vector or dt is not DataType.STRING]
    fixed = [dt for dt in fixed if dt not in (DataType.STRING_VECTOR,)] * copies
    m = ComponentMatrix(ROWS)
    entries = []
    for k, dt in enumerate(fixed):
        m.declare(f"c{k}", dt)
        m.set_column(f"c{k}", *typed_values(dt, ROWS, missing_every=0))
        entries.append(SchemaEntry(f"c{k}", dt))
    table, _ = build_table(m, tuple(entries), [f"e{i}" for i in range(ROWS)])
    assert all(p.all_valid and p.block is not None for p in table.parts)
    common = {"user_id": "u", "tracking_id": "t", "model_id": "m", "metadata": b"\x00", "parents": []}
    chunks = FORMATS["proto"].encode(table, 4)
    assert [f for c in chunks for f in c.features] == reference_proto(m, tuple(entries))
    for chunk in chunks:
        assert chunk.framed is not None
        framed = wrap_framed(
            entities=frame_entities(chunk.entities), features=chunk.framed, created_at=0, **common
        )
        assert framed == wrap(entities=chunk.entities, features=chunk.features, created_at=0, **common)


@pytest.mark.parametrize("sizes", [[0, 0], [0, 5, 127], [128, 1, 0], [16383, 16384, 2**21], [300, 300]])
def test_vectorised_heads_match_protobuf_framing(sizes: list[int]) -> None:
    head = frame_heads(0x2A, np.array(sizes), inner_tag=0x0A)
    buf, offsets = pack([head], len(sizes))
    got = [buf[a:b].tobytes() for a, b in itertools.pairwise(offsets)]
    want = []
    for size in sizes:
        inner = b"\x0a" + encoder._VarintBytes(size) if size else b""
        want.append(b"\x2a" + encoder._VarintBytes(len(inner) + size) + inner)
    assert got == want
    plain = frame_heads(0x22, np.array(sizes))
    buf, offsets = pack([plain], len(sizes))
    assert buf.tobytes() == b"".join(b"\x22" + encoder._VarintBytes(s) for s in sizes)


def test_block_groups_with_missing_cells_zero_a_copy_not_the_matrix() -> None:
    m = ComponentMatrix(3)
    names = [f"b{j}" for j in range(4)]
    for n in names:
        m.declare(n, DataType.FP32)
    values = np.arange(12, dtype=np.float32).reshape(3, 4) + 1
    valid = np.ones((3, 4), dtype=bool)
    valid[1, 2] = False
    m.set_block(names, values, valid)
    entries = tuple(SchemaEntry(n, DataType.FP32) for n in names)
    table, _ = build_table(m, entries, ["a", "b", "c"])
    (chunk,) = FORMATS["proto"].encode(table, 500)
    row1 = b"\x00" + struct.pack("<4f", 5, 6, 0, 8)
    assert chunk.features[1] == row1
    assert values[1, 2] == 7  # the matrix's block is untouched
    (pchunk,) = FORMATS["parquet"].encode(table, 500)
    maps = pq.read_table(io.BytesIO(pchunk.features[0])).column("Features").to_pylist()
    f32 = [struct.pack("<f", v) for v in (5, 6, 7, 8)]
    assert maps[1] == [(0, f32[0]), (1, f32[1]), (2, b""), (3, f32[3])]


def test_a_run_across_column_blocks_is_read_as_views_with_the_same_bytes() -> None:
    """Same-type scalars written as two blocks plus loose columns: one group per block (views of the
    blocks, no copy of the run), the loose columns read together, bytes as the per-cell reference."""
    m = ComponentMatrix(ROWS)
    rng = np.random.default_rng(3)
    first, second, loose = [f"a{j}" for j in range(5)], [f"b{j}" for j in range(3)], ["l0", "l1"]
    for n in first + second + loose:
        m.declare(n, DataType.FP32)
    blocks = [rng.standard_normal((ROWS, len(first)), dtype=np.float32)]
    blocks.append(rng.standard_normal((ROWS, len(second)), dtype=np.float32))
    m.set_block(first, blocks[0])
    m.set_block(second, blocks[1], np.arange(ROWS) % 3 != 0)
    for n in loose:
        m.set_column(n, rng.standard_normal(ROWS, dtype=np.float32), np.ones(ROWS, bool))
    entries = tuple(SchemaEntry(n, DataType.FP32) for n in loose[:1] + first + second + loose[1:])
    for _ in range(2):  # the cut is found on the first request and reused
        table, bad = build_table(m, entries, [f"e{i}" for i in range(ROWS)])
        assert not bad.any()
        groups = [p for p in table.parts if isinstance(p, CellGroup)]
        assert [(g.start, g.stop) for g in groups] == [(0, 1), (1, 6), (6, 9), (9, 10)]
        assert np.shares_memory(groups[1].block, blocks[0])
        assert np.shares_memory(groups[2].block, blocks[1])
        (chunk,) = FORMATS["proto"].encode(table, 500)
        assert chunk.features == reference_proto(m, entries)
        (pchunk,) = FORMATS["parquet"].encode(table, 500)
        maps = pq.read_table(io.BytesIO(pchunk.features[0])).column("Features").to_pylist()
        cols = [m.cells(e.name, e.dtype) for e in entries]
        assert maps == [[(j, col[i]) for j, col in enumerate(cols)] for i in range(ROWS)]
