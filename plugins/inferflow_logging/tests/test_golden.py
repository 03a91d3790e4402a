"""Golden bytes of each format for a hand-built matrix covering every data type and missing values.

Expected cells are written out by hand (struct / literal bytes), not produced by the code under test.
"""

from __future__ import annotations

import io
import struct

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from inferflow_logging.formats import FORMATS
from inferflow_logging.schema import SchemaEntry, metadata_byte, unpack_metadata
from inferflow_logging.table import build_table

from inferflow_core.api import ComponentMatrix, DataType

D = DataType
# (type, row-0 value, the hand-written little-endian cell bytes of that value)
CASES: list[tuple[DataType, object, bytes]] = [
    (D.FP8E5M2, 1.5, b"\x3e"),
    (D.FP8E4M3, 1.5, b"\x3c"),
    (D.FP16, 1.5, b"\x00\x3e"),
    (D.FP32, 1.5, struct.pack("<f", 1.5)),
    (D.FP64, -2.25, struct.pack("<d", -2.25)),
    (D.INT8, -2, b"\xfe"),
    (D.INT16, -300, struct.pack("<h", -300)),
    (D.INT32, -70000, struct.pack("<i", -70000)),
    (D.INT64, -5_000_000_000, struct.pack("<q", -5_000_000_000)),
    (D.UINT8, 200, b"\xc8"),
    (D.UINT16, 60000, struct.pack("<H", 60000)),
    (D.UINT32, 4_000_000_000, struct.pack("<I", 4_000_000_000)),
    (D.UINT64, 2**63 + 5, struct.pack("<Q", 2**63 + 5)),
    (D.STRING, "hé", b"h\xc3\xa9"),
    (D.BOOL, True, b"\x01"),
    (D.FP8E5M2_VECTOR, [1.5, -2.0], b"\x3e\xc0"),
    (D.FP8E4M3_VECTOR, [1.5, -2.0], b"\x3c\xc0"),
    (D.FP16_VECTOR, [1.5, -2.0], struct.pack("<2e", 1.5, -2.0)),
    (D.FP32_VECTOR, [0.5, 3.0, -1.0], struct.pack("<3f", 0.5, 3.0, -1.0)),
    (D.FP64_VECTOR, [0.1], struct.pack("<d", 0.1)),
    (D.INT8_VECTOR, [-1, 2], b"\xff\x02"),
    (D.INT16_VECTOR, [-1, 2], struct.pack("<2h", -1, 2)),
    (D.INT32_VECTOR, [-1, 2], struct.pack("<2i", -1, 2)),
    (D.INT64_VECTOR, [-1, 2], struct.pack("<2q", -1, 2)),
    (D.UINT8_VECTOR, [1, 255], b"\x01\xff"),
    (D.UINT16_VECTOR, [1, 65535], struct.pack("<2H", 1, 65535)),
    (D.UINT32_VECTOR, [1, 7], struct.pack("<2I", 1, 7)),
    (D.UINT64_VECTOR, [1, 7], struct.pack("<2Q", 1, 7)),
    (D.STRING_VECTOR, ["ab", "c"], b"\x02\x00\x01\x00abc"),
    (D.BOOL_VECTOR, [True, False, True], b"\x01\x00\x01"),
]
assert {c[0] for c in CASES} == {dt for dt in DataType if dt is not DataType.UNKNOWN}
ENTRIES = tuple(SchemaEntry(f"c{i}", dt) for i, (dt, _, _) in enumerate(CASES))
VAR = {D.STRING} | {dt for dt in DataType if dt.is_vector}


def hand_matrix() -> ComponentMatrix:
    """Row 0: every value present; row 1: every value missing."""
    m = ComponentMatrix(2)
    for entry, (dt, value, _) in zip(ENTRIES, CASES, strict=True):
        m.declare(entry.name, dt)
        if not dt.is_fixed_width:
            arr = np.empty(2, dtype=object)
            arr[0], arr[1] = value, ([] if dt.is_vector else "")
        elif dt.is_vector:
            arr = np.array([value, value], dtype=np.float64 if dt.scalar is not D.BOOL else bool)
            if dt.scalar in (D.UINT64,):
                arr = np.array([value, value], dtype=np.uint64)
        else:
            arr = np.array([value, value], dtype=dt.numpy_dtype)
        m.set_column(entry.name, arr, np.array([True, False]))
    return m


def table():
    t, bad = build_table(hand_matrix(), ENTRIES, ["e0", "e1"])
    assert not bad.any()
    return t


def test_proto_golden_bytes() -> None:
    row0 = b"\x01"
    row1 = b"\x00"
    for dt, _, cell in CASES:
        if dt in VAR:
            row0 += struct.pack("<H", len(cell)) + cell
            row1 += b"\x03\x000.0" if dt is D.STRING else b"\x00\x00"  # go-compatibility §4.5 proto defaults
        else:
            row0 += cell
            row1 += b"\x00" * len(cell)
    fmt = FORMATS["proto"]
    (chunk,) = fmt.encode(table(), 500)
    assert chunk.entities == ["e0", "e1"]
    assert chunk.features == [row0, row1]
    decoded = fmt.decode(chunk.features, ENTRIES)
    assert decoded[0] == [c for _, _, c in CASES]


def test_arrow_golden_cells_and_framing() -> None:
    (chunk,) = FORMATS["arrow"].encode(table(), 500)
    (blob,) = chunk.features
    assert blob[:4] == b"\xff\xff\xff\xff"  # IPC stream: continuation marker of the schema message
    assert blob[-8:] == b"\xff\xff\xff\xff\x00\x00\x00\x00"  # end-of-stream marker
    read = ipc.open_stream(pa.py_buffer(blob)).read_all()
    assert read.schema.names == [str(i) for i in range(len(CASES))]
    assert all(f.type == pa.binary() and f.nullable for f in read.schema)
    assert [read.column(str(i))[0].as_py() for i in range(len(CASES))] == [c for _, _, c in CASES]
    assert [read.column(str(i))[1].as_py() for i in range(len(CASES))] == [None] * len(CASES)


def test_parquet_golden_schema_and_cells() -> None:
    (chunk,) = FORMATS["parquet"].encode(table(), 500)
    (blob,) = chunk.features
    assert blob[:4] == b"PAR1"
    assert blob[-4:] == b"PAR1"
    pf = pq.ParquetFile(io.BytesIO(blob))
    schema_text = str(pf.schema).split("\n", 1)[1]
    expected = """
        required group field_id=-1 schema {
          required group field_id=-1 Features (Map) {
            repeated group field_id=-1 key_value {
              required int64 field_id=-1 key;
              required binary field_id=-1 value;
            }
          }
        }"""
    assert schema_text.split() == expected.split()
    meta = pf.metadata.row_group(0)
    assert {meta.column(i).compression for i in range(meta.num_columns)} == {"UNCOMPRESSED"}
    rows = pf.read().column("Features").to_pylist()
    assert rows[0] == [(i, c) for i, (_, _, c) in enumerate(CASES)]
    assert rows[1] == [(i, b"") for i in range(len(CASES))]  # every key present, missing = empty


@pytest.mark.parametrize(
    ("compression", "version", "fmt", "byte"),
    [
        (False, 0, "proto", 0x00),
        (True, 1, "proto", 0x05),
        (False, 3, "arrow", 0x4C),
        (True, 15, "parquet", 0xBD),
    ],
)
def test_metadata_byte(compression: bool, version: int, fmt: str, byte: int) -> None:
    assert metadata_byte(compression, version, fmt) == bytes([byte])
    assert unpack_metadata(bytes([byte])) == (compression, version, fmt)


def test_cache_version_over_15_is_masked_not_leaking_into_format_bits() -> None:
    assert metadata_byte(False, 17, "proto") == bytes([1 << 2])  # 17 & 0xF = 1; format bits stay proto


def test_one_bad_row_is_dropped_alone() -> None:
    m = ComponentMatrix(3)
    m.declare("s", D.STRING)
    m.set_column("s", np.array(["ok", "x" * 70_000, "fine"], dtype=object))
    t, bad = build_table(m, (SchemaEntry("s", D.STRING),), ["a", "b", "c"])
    bad |= FORMATS["proto"].bad_rows(t)
    assert bad.tolist() == [False, True, False]
    (chunk,) = FORMATS["proto"].encode(t.filter(~bad), 500)
    assert chunk.entities == ["a", "c"]
    assert chunk.features == [b"\x01\x02\x00ok", b"\x01\x04\x00fine"]
