"""The parquet chunk template (parquet_file) against pyarrow's ParquetWriter: byte for byte, on tables
that mix present and missing cells of every type, blocks of one type, strings of varied lengths and
several chunk shapes, and chunks whose value sizes move the page header's and footer's varints."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pyarrow.parquet as pq
import pytest
from iflog_support import ALL_TYPES, typed_values
from inferflow_logging.envelope import frame_entities, frame_features, wrap, wrap_framed
from inferflow_logging.formats import ParquetFormat, _plain_words, _pyarrow_file, plain_values
from inferflow_logging.parquet_file import ParquetChunkWriter, Template, _Reader, encode_struct
from inferflow_logging.schema import SchemaEntry
from inferflow_logging.table import CellGroup, LogColumn, LogTable, build_table

from inferflow_core.api import ComponentMatrix, DataType


def varied_table(rows: int, seed: int, missing: bool = True, groups_missing: bool = False) -> LogTable:
    rng = np.random.default_rng(seed)
    m = ComponentMatrix(rows)
    entries = []
    order = (
        [DataType.FP32] * 5 + list(rng.permutation(np.array(ALL_TYPES, dtype=object))) + [DataType.INT64] * 3
    )
    for k, dt in enumerate(order):
        name = f"c{k}"
        m.declare(name, dt)
        gaps = missing and (dt.is_vector or dt is DataType.STRING or groups_missing)
        values, valid = typed_values(dt, rows, missing_every=(2 + (k + seed) % 5) if gaps else rows + 1)
        if dt is DataType.STRING:  # lengths vary with the seed: chunks of one shape differ in size
            values = np.array([("x" * int(rng.integers(0, 300))) for _ in range(rows)], dtype=object)
        m.set_column(name, values, valid)
        entries.append(SchemaEntry(name, dt))
    table, bad = build_table(m, tuple(entries), [f"e{i}" for i in range(rows)])
    assert not bad.any()
    return table


@pytest.mark.parametrize("missing", [True, False])
@pytest.mark.parametrize("rows", [1, 7, 40])
def test_template_writes_pyarrow_bytes(rows: int, missing: bool) -> None:
    writer = ParquetChunkWriter()
    shape = None
    for seed in range(8):  # seen, a template, then chunks of other sizes (verified, then trusted)
        table = varied_table(rows, seed, missing)
        shape = (table.rows, len(table.entries))
        values = plain_values(table)
        expected = _pyarrow_file(table)
        assert writer.write(shape, values, lambda t=table: _pyarrow_file(t)) == expected
        if not seed:
            assert shape not in writer._templates  # met once: no template yet
            continue
        template = writer._templates[shape]
        assert template is not None  # pyarrow's layout is the one the template understands
        assert template.write(memoryview(values), shape[0] * shape[1]) == expected
    assert shape in writer._verified


def test_template_handles_varint_growth() -> None:
    """Value sizes crossing a varint boundary change the header and footer lengths."""
    m = ComponentMatrix(3)
    m.declare("s", DataType.STRING)
    entries = (SchemaEntry("s", DataType.STRING),)
    tables = []
    for size in (10, 100, 20_000, 5):
        m.set_column("s", np.array(["y" * size] * 3, dtype=object), np.ones(3, bool))
        tables.append(build_table(m, entries, ["a", "b", "c"])[0])
    writer = ParquetChunkWriter()
    for table in [*tables, *tables]:
        got = writer.write((3, 1), plain_values(table), lambda t=table: _pyarrow_file(t))
        assert got == _pyarrow_file(table)
    assert (3, 1) in writer._verified


def test_thrift_round_trip_of_pyarrow_footer() -> None:
    data = _pyarrow_file(varied_table(5, 3))
    n = int.from_bytes(data[-8:-4], "little")
    footer = data[-8 - n : -8]
    assert encode_struct(_Reader(footer).struct()) == footer


def test_a_template_that_differs_falls_back_to_pyarrow() -> None:
    table, other = varied_table(6, 0), varied_table(6, 5)
    writer = ParquetChunkWriter()
    shape = (6, len(table.entries))
    for _ in range(2):
        writer.write(shape, plain_values(table), lambda: _pyarrow_file(table))
    template = writer._templates[shape]
    assert isinstance(template, Template)
    template.head = template.head[:8] + bytes([template.head[8] ^ 1]) + template.head[9:]  # wrong
    assert len(plain_values(other)) != template.values_len  # so this chunk is verified
    assert writer.write(shape, plain_values(other), lambda: _pyarrow_file(other)) == _pyarrow_file(other)
    assert writer._templates[shape] is None
    assert writer.write(shape, plain_values(other), lambda: _pyarrow_file(other)) == _pyarrow_file(other)


def test_missing_scalars_in_a_group_are_written_by_pyarrow() -> None:
    table = varied_table(9, 1, groups_missing=True)
    assert plain_values(table) is None
    chunks = ParquetFormat().encode(table, 500)
    assert [c.features for c in chunks] == [[_pyarrow_file(table)]]


def test_format_round_trip_and_pickle() -> None:
    fmt = pickle.loads(pickle.dumps(ParquetFormat()))
    table = varied_table(30, 2)
    for _ in range(3):
        chunks = fmt.encode(table, 7)
        assert [len(c.entities) for c in chunks] == [7, 7, 7, 7, 2]
        for chunk, start in zip(chunks, range(0, 30, 7), strict=True):
            assert chunk.features == [_pyarrow_file(table.slice(start, min(start + 7, 30)))]


def test_fixed_width_tables_take_the_one_layout_path() -> None:
    """Every cell present and fixed-width (scalar groups, a constant-dim vector): each row has the same
    layout; the values and the chunk files are pyarrow's for every chunk of the shape."""
    m = ComponentMatrix(12)
    rng = np.random.default_rng(4)
    names = [
        ("f0", DataType.FP32),
        ("f1", DataType.FP32),
        ("v", DataType.FP32_VECTOR),
        ("i0", DataType.INT64),
    ]
    for name, dt in names:
        m.declare(name, dt)
    m.set_column("f0", rng.standard_normal(12, dtype=np.float32), np.ones(12, bool))
    m.set_column("f1", rng.standard_normal(12, dtype=np.float32), np.ones(12, bool))
    m.set_column("v", rng.standard_normal((12, 3), dtype=np.float32), np.ones(12, bool))
    m.set_column("i0", rng.integers(0, 1 << 40, 12), np.ones(12, bool))
    entries = tuple(SchemaEntry(n, dt) for n, dt in names)
    table, _ = build_table(m, entries, [f"e{i}" for i in range(12)])
    assert any(isinstance(p, CellGroup) for p in table.parts)
    fmt = ParquetFormat()
    for _ in range(2):
        chunks = fmt.encode(table, 4)
        for chunk, start in zip(chunks, range(0, 12, 4), strict=True):
            part = table.slice(start, start + 4)
            assert chunk.features == [_pyarrow_file(part)]
            read = pq.read_table(io.BytesIO(chunk.features[0])).column("Features").to_pylist()
            cols = [m.cells(n, dt)[start : start + 4] for n, dt in names]
            assert read == [[(j, col[i]) for j, col in enumerate(cols)] for i in range(4)]


def test_framed_parquet_chunks_wrap_to_the_generic_envelope() -> None:
    """A chunk handed over as wire pieces (the template's file not joined) makes the same message."""
    table = varied_table(10, 6, missing=False)
    fmt = ParquetFormat()
    common = {"user_id": "u", "tracking_id": "t", "model_id": "m", "metadata": b"\x80", "parents": []}
    framed_seen = 0
    for _ in range(3):  # pyarrow's chunks first, then the template's
        for chunk in fmt.encode(table, 4):
            framed_seen += chunk.framed is not None
            wire = frame_features(chunk.features) if chunk.framed is None else chunk.framed
            got = wrap_framed(entities=frame_entities(chunk.entities), features=wire, created_at=1, **common)
            assert got == wrap(entities=chunk.entities, features=chunk.features, created_at=1, **common)
    assert framed_seen


def test_templates_kept_are_the_most_recently_used() -> None:
    writer = ParquetChunkWriter()
    writer.MAX_SHAPES = 2
    tables = {rows: varied_table(rows, 0, missing=False) for rows in (2, 3, 4)}

    def write(rows: int) -> None:
        t = tables[rows]
        assert writer.write(
            (rows, len(t.entries)), plain_values(t), lambda: _pyarrow_file(t)
        ) == _pyarrow_file(t)

    for rows in (2, 2, 3, 3, 2, 4, 4):  # 3 is the least recently used when 4 gets its template
        write(rows)
    assert [shape[0] for shape in writer._templates] == [2, 4]


@pytest.mark.parametrize(("pad", "offset"), [(0, 0), (4, 4), (3, 0), (4, 1), (4, 2)])
def test_word_layout_of_aligned_and_unaligned_blocks(pad: int, offset: int) -> None:
    """Cells of 4-byte multiples are laid out as words, also from a block that is not word-aligned (a
    view at an odd offset or with an odd row stride, as the encoder process reads them from its frame):
    the chunk file is pyarrow's either way."""
    rows, k = 9, 3
    rng = np.random.default_rng(pad + offset)
    raw = rng.integers(0, 256, size=(rows, k * 4 + pad), dtype=np.uint8)
    block = raw[:, offset : offset + k * 4]
    vector = rng.integers(0, 256, size=(rows, 8), dtype=np.uint8)
    entries = (
        *(SchemaEntry(f"f{j}", DataType.FP32) for j in range(k)),
        SchemaEntry("v", DataType.FP32_VECTOR),
    )
    parts = [CellGroup(0, k, block, np.ones((rows, k), bool)), LogColumn(np.ones(rows, bool), vector)]
    table = LogTable(entries, [f"e{i}" for i in range(rows)], parts)
    spans = [(parts[0], k, 4), (parts[1], 1, 8)]
    assert _plain_words(np.empty((rows, k * 8 + 12), np.uint8), spans)
    expected = _pyarrow_file(table)
    fmt = ParquetFormat()
    for _ in range(3):  # pyarrow's file, then the template's (verified, then trusted)
        (chunk,) = fmt.encode(table, rows)
        assert chunk.features == [expected]


def test_byte_layout_for_blocks_whose_cells_are_not_contiguous() -> None:
    """A block whose last axis is strided cannot be viewed as words: the byte layout writes the same
    chunk file (pyarrow's)."""
    rows, k = 7, 2
    rng = np.random.default_rng(5)
    block = rng.integers(0, 256, size=(rows, k * 8), dtype=np.uint8)[:, ::2]  # byte stride 2
    entries = tuple(SchemaEntry(f"f{j}", DataType.FP32) for j in range(k))
    parts = [CellGroup(0, k, block, np.ones((rows, k), bool))]
    table = LogTable(entries, [f"e{i}" for i in range(rows)], parts)
    assert not _plain_words(np.empty((rows, k * 8), np.uint8), [(parts[0], k, 4)])
    expected = _pyarrow_file(table)
    fmt = ParquetFormat()
    for _ in range(3):
        (chunk,) = fmt.encode(table, rows)
        assert chunk.features == [expected]
