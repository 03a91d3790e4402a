"""Golden tests for inferflow_core.dtypes (reference §1.3, §4.3-4.5). Expected bytes are written by hand."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

from inferflow_core.dtypes import (
    DataType,
    DataTypeError,
    array_to_cells,
    bytes_to_text,
    cast_array,
    cells_to_array,
    decode_array,
    decode_string_vector,
    encode_array,
    encode_string_vector,
    format_column,
    format_value,
    from_kserve,
    parse_dtype,
    parse_text,
    parse_text_column,
    text_to_bytes,
)

D = DataType

# (wire name, is_fixed_width, itemsize or None, numpy dtype or None, kserve name or None) per enum value
TABLE: dict[DataType, tuple[str, int | None, object, str | None]] = {
    D.UNKNOWN: ("DataTypeUnknown", None, None, None),
    D.FP8E5M2: ("DataTypeFP8E5M2", 1, ml_dtypes.float8_e5m2, None),
    D.FP8E4M3: ("DataTypeFP8E4M3", 1, ml_dtypes.float8_e4m3fn, None),
    D.FP16: ("DataTypeFP16", 2, "<f2", "FP16"),
    D.FP32: ("DataTypeFP32", 4, "<f4", "FP32"),
    D.FP64: ("DataTypeFP64", 8, "<f8", "FP64"),
    D.INT8: ("DataTypeInt8", 1, "i1", "INT8"),
    D.INT16: ("DataTypeInt16", 2, "<i2", "INT16"),
    D.INT32: ("DataTypeInt32", 4, "<i4", "INT32"),
    D.INT64: ("DataTypeInt64", 8, "<i8", "INT64"),
    D.UINT8: ("DataTypeUint8", 1, "u1", "UINT8"),
    D.UINT16: ("DataTypeUint16", 2, "<u2", "UINT16"),
    D.UINT32: ("DataTypeUint32", 4, "<u4", "UINT32"),
    D.UINT64: ("DataTypeUint64", 8, "<u8", "UINT64"),
    D.STRING: ("DataTypeString", None, object, "BYTES"),
    D.BOOL: ("DataTypeBool", 1, np.bool_, "BOOL"),
}
ALL = list(DataType)


def test_enum_has_31_values_with_proto_numbers() -> None:
    assert len(ALL) == 31
    assert [int(d) for d in ALL] == list(range(31))
    assert D.FP32_VECTOR == 19
    assert D.STRING_VECTOR == 29
    assert D.BOOL_VECTOR == 30


@pytest.mark.parametrize("dt", ALL, ids=lambda d: d.name)
def test_properties_for_every_type(dt: DataType) -> None:
    wire, size, np_dtype, kserve = TABLE[dt.scalar]
    assert dt.wire_name == (wire + "Vector" if dt.is_vector else wire)
    assert dt.is_vector == (dt >= 16)
    assert dt.scalar == (DataType(dt - 15) if dt >= 16 else dt)
    assert dt.is_fixed_width == (size is not None)
    if size is None:
        with pytest.raises(DataTypeError):
            _ = dt.itemsize
    else:
        assert dt.itemsize == size
    if np_dtype is None:
        with pytest.raises(DataTypeError):
            _ = dt.numpy_dtype
    else:
        assert dt.numpy_dtype == np.dtype(np_dtype)  # type: ignore[call-overload]
    if kserve is None:
        with pytest.raises(DataTypeError):
            _ = dt.kserve_name
    else:
        assert dt.kserve_name == kserve
        assert from_kserve(kserve, vector=dt.is_vector) == dt
    if dt is D.UNKNOWN:
        with pytest.raises(DataTypeError):
            _ = dt.vector
    else:
        assert dt.vector == (dt if dt.is_vector else DataType(dt + 15))
        assert dt.scalar.vector.scalar == dt.scalar


@pytest.mark.parametrize("dt", ALL, ids=lambda d: d.name)
def test_parse_dtype_round_trips_all_spellings(dt: DataType) -> None:
    for spelling in (dt.wire_name, dt.wire_name.lower(), dt.wire_name.upper(), dt.name, dt.name.lower()):
        assert parse_dtype(spelling) == dt
    core = dt.scalar.wire_name.removeprefix("DataType")
    if dt.is_vector:
        for spelling in (core + "Vector", core.lower() + "_vector", core.upper() + "_VECTOR"):
            assert parse_dtype(spelling) == dt
    else:
        assert parse_dtype(core) == parse_dtype(core.lower()) == parse_dtype(core.upper()) == dt


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("FP32", D.FP32), ("fp32", D.FP32), ("DataTypeFP32", D.FP32), ("DataTypeFP32Vector", D.FP32_VECTOR),
        ("FP32Vector", D.FP32_VECTOR), ("fp32_vector", D.FP32_VECTOR),
        ("BYTES", D.STRING), ("bytes", D.STRING),
        ("string", D.STRING), ("str", D.STRING), ("DataTypeString", D.STRING), ("bool", D.BOOL),
        ("BOOL", D.BOOL), ("int64", D.INT64), ("INT64", D.INT64), ("uint8", D.UINT8), ("FP16", D.FP16),
        ("float32", D.FP32), ("float64", D.FP64), ("float16", D.FP16), ("float16_vector", D.FP16_VECTOR),
        ("FP8E4M3", D.FP8E4M3), ("fp8e5m2", D.FP8E5M2), ("float8e4m3", D.FP8E4M3), ("float8_e5m2", D.FP8E5M2),
        ("DataTypeStringVector", D.STRING_VECTOR), ("bytes_vector", D.STRING_VECTOR), (" fp64 ", D.FP64),
    ],
)  # fmt: skip
def test_parse_dtype_accepted_spellings(spelling: str, expected: DataType) -> None:
    assert parse_dtype(spelling) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "FP33",
        "float",
        "int",
        "DataType",
        "Vector",
        "fp32vectors",
        "DataTypeFloat",
        "UnknownVector",
        "bf16",
    ],
)
def test_parse_dtype_rejects_misspellings(bad: str) -> None:
    with pytest.raises(DataTypeError) as info:
        parse_dtype(bad)
    assert repr(bad) in str(info.value)
    assert "accepted" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_from_kserve() -> None:
    assert from_kserve("FP32") == D.FP32
    assert from_kserve("FP32", vector=True) == D.FP32_VECTOR
    assert from_kserve("BYTES") == D.STRING
    assert from_kserve("BYTES", True) == D.STRING_VECTOR
    assert from_kserve("UINT64") == D.UINT64
    assert from_kserve("BOOL") == D.BOOL
    for bad in ("BF16", "FP8", "STRING", ""):
        with pytest.raises(DataTypeError, match="unsupported"):
            from_kserve(bad)


# ------------------------------------------------------------------------------------- binary goldens
GOLDEN: list[tuple[DataType, list[object], bytes]] = [
    (D.FP32, [1.0, -2.5], b"\x00\x00\x80\x3f\x00\x00\x20\xc0"),
    (D.FP16, [1.0, -2.0, 65504.0], b"\x00\x3c\x00\xc0\xff\x7b"),
    (D.FP64, [1.0, 0.5], b"\x00\x00\x00\x00\x00\x00\xf0\x3f\x00\x00\x00\x00\x00\x00\xe0\x3f"),
    (D.FP8E4M3, [1.0, -2.0, 448.0], b"\x38\xc0\x7e"),
    (D.FP8E5M2, [1.0, -2.0, 57344.0], b"\x3c\xc0\x7b"),
    (D.INT8, [-1, 127, -128], b"\xff\x7f\x80"),
    (D.INT16, [-2, 256], b"\xfe\xff\x00\x01"),
    (D.INT32, [-2, 1], b"\xfe\xff\xff\xff\x01\x00\x00\x00"),
    (D.INT64, [-2, 1], b"\xfe\xff\xff\xff\xff\xff\xff\xff\x01" + b"\x00" * 7),
    (D.UINT8, [255, 1], b"\xff\x01"),
    (D.UINT16, [65535, 1], b"\xff\xff\x01\x00"),
    (D.UINT32, [4294967295, 2], b"\xff\xff\xff\xff\x02\x00\x00\x00"),
    (D.UINT64, [2**64 - 1, 1], b"\xff" * 8 + b"\x01" + b"\x00" * 7),
    (D.BOOL, [True, False, True], b"\x01\x00\x01"),
]


@pytest.mark.parametrize(("dt", "values", "raw"), GOLDEN, ids=lambda x: getattr(x, "name", None))
def test_encode_decode_golden_scalars(dt: DataType, values: list[object], raw: bytes) -> None:
    arr = np.array(values, dtype=dt.numpy_dtype)
    assert encode_array(arr, dt) == raw
    back = decode_array(raw, dt)
    assert back.dtype == dt.numpy_dtype
    assert back.tolist() == arr.tolist()
    back[0] = back[-1]  # decoded arrays are writable copies
    # per-cell form, and the vector form of the same type (two rows of the whole list)
    cells = [raw[i * dt.itemsize : (i + 1) * dt.itemsize] for i in range(len(values))]
    assert array_to_cells(arr, np.ones(len(values), bool), dt) == cells
    vec = np.stack([arr, arr])
    assert encode_array(vec, dt.vector) == raw + raw
    assert decode_array(raw + raw, dt.vector, dim=len(values)).tolist() == vec.tolist()
    assert array_to_cells(vec, np.array([True, False]), dt.vector) == [raw, b""]
    values_back, valid = cells_to_array([raw, None, raw, raw[:-1] or None], dt.vector)
    assert values_back.shape == (4, len(values))
    assert valid.tolist() == [True, False, True, False]
    assert values_back[0].tolist() == arr.tolist()
    assert not values_back[1].any()
    # text forms: each element through text -> bytes -> text
    for cell in cells:
        assert text_to_bytes(bytes_to_text(cell, dt), dt) == cell


def test_encode_converts_foreign_dtypes_and_rejects_strings() -> None:
    assert encode_array(np.array([1.0, 0.0]), D.BOOL) == b"\x01\x00"
    assert encode_array(np.array([1, 2]), D.FP32) == b"\x00\x00\x80\x3f\x00\x00\x00\x40"
    assert encode_array(np.array([2.9, -2.9]), D.INT8) == b"\x02\xfe"
    for dt in (D.STRING, D.STRING_VECTOR, D.UNKNOWN):
        with pytest.raises(DataTypeError):
            encode_array(np.array(["a"], dtype=object), dt)


def test_decode_bool_any_nonzero_is_true_and_size_errors() -> None:
    assert decode_array(b"\x00\x02\xff", D.BOOL).tolist() == [False, True, True]
    with pytest.raises(DataTypeError):
        decode_array(b"\x00\x00\x80", D.FP32)
    with pytest.raises(DataTypeError):
        decode_array(b"\x00" * 12, D.FP32_VECTOR, dim=2)
    with pytest.raises(DataTypeError):
        decode_array(b"", D.FP32_VECTOR, dim=0)
    assert decode_array(b"", D.FP32_VECTOR, dim=3).shape == (0, 3)


# ------------------------------------------------------------------------------------- fp16 / fp8 edges
def _bits(value: object) -> int:
    return int(np.asarray(value).view(np.uint8 if np.asarray(value).itemsize == 1 else np.uint16))


def test_fp16_round_to_nearest_even() -> None:
    assert parse_text("2049", D.FP16) == 2048  # tie -> even mantissa
    assert parse_text("2051", D.FP16) == 2052
    assert parse_text("2050", D.FP16) == 2050
    assert text_to_bytes("65504", D.FP16) == b"\xff\x7b"
    assert text_to_bytes("65519", D.FP16) == b"\xff\x7b"
    assert text_to_bytes("65520", D.FP16) == b"\x00\x7c"  # overflow -> +Inf
    assert text_to_bytes("-1e6", D.FP16) == b"\x00\xfc"
    cast = cast_array(np.array([2049.0, 2051.0, 65520.0, 1e9]), D.FP64, D.FP16)
    assert cast.tolist() == [2048.0, 2052.0, math.inf, math.inf]


def test_fp8_e4m3_edges() -> None:
    e4 = D.FP8E4M3
    assert text_to_bytes("0.001953125", e4) == b"\x01"  # 2**-9, smallest subnormal
    assert decode_array(b"\x01\x02\x07\x08", e4).tolist() == [2**-9, 2 * 2**-9, 7 * 2**-9, 2**-6]
    assert text_to_bytes(repr(2**-10), e4) == b"\x00"  # tie -> even (0)
    assert text_to_bytes(repr(3 * 2**-10), e4) == b"\x02"  # 1.5 steps -> 2 (even)
    assert text_to_bytes("448", e4) == b"\x7e"  # max finite
    assert text_to_bytes("464", e4) == b"\x7e"  # tie rounds to even 448
    assert text_to_bytes("470", e4) == b"\x7f"  # rounds past 448 -> NaN
    assert text_to_bytes("480", e4) == b"\x7f"  # overflow -> NaN
    assert text_to_bytes("-480", e4) == b"\xff"  # sign kept
    assert text_to_bytes("1e30", e4) == b"\x7f"
    assert text_to_bytes("+Inf", e4) == b"\x7f"
    assert text_to_bytes("-inf", e4) == b"\xff"
    assert text_to_bytes("NaN", e4) == b"\x7f"
    assert math.isnan(float(decode_array(b"\x7f", e4)[0]))
    assert math.isnan(float(decode_array(b"\xff", e4)[0]))
    assert decode_array(b"\x7e\xfe", e4).tolist() == [448.0, -448.0]
    assert bytes(cast_array(np.array([480.0, -1e9, 448.0]), D.FP64, e4).view(np.uint8)) == b"\x7f\xff\x7e"


def test_fp8_e5m2_edges() -> None:
    e5 = D.FP8E5M2
    assert text_to_bytes("57344", e5) == b"\x7b"  # max finite
    assert text_to_bytes("61439", e5) == b"\x7b"
    assert text_to_bytes("61440", e5) == b"\x7c"  # tie above max rounds to even -> Inf
    assert text_to_bytes("65536", e5) == b"\x7c"  # >= 2**16 -> Inf
    assert text_to_bytes("-65536", e5) == b"\xfc"
    assert text_to_bytes("inf", e5) == b"\x7c"
    assert text_to_bytes("NaN", e5) == b"\x7f"  # c10 NaN (ml_dtypes alone would give 0x7e)
    assert bytes(cast_array(np.array([np.nan, -np.nan, 1e10]), D.FP64, e5).view(np.uint8)) == b"\x7f\xff\x7c"
    assert text_to_bytes(repr(2**-16), e5) == b"\x01"  # smallest subnormal
    assert decode_array(b"\x7c\xfc", e5).tolist() == [math.inf, -math.inf]
    assert bytes_to_text(b"\x7f", e5) == "NaN"


# ------------------------------------------------------------------------------------- cells
def test_cells_to_array_fixed_scalars_with_invalid_cells() -> None:
    one, two = b"\x00\x00\x80\x3f", b"\x00\x00\x00\x40"
    values, valid = cells_to_array([one, None, b"", b"\x00\x00", two, one + two], D.FP32)
    assert values.dtype == np.float32
    assert values.shape == (6,)
    assert values.tolist() == [1.0, 0, 0, 0, 2.0, 0]
    assert valid.tolist() == [True, False, False, False, True, False]
    assert array_to_cells(values, valid, D.FP32) == [one, b"", b"", b"", two, b""]
    values, valid = cells_to_array([b"\x00", b"\x05", None, b"\x01\x01"], D.BOOL)
    assert values.tolist() == [False, True, False, False]
    assert valid.tolist() == [True, True, False, False]
    values, valid = cells_to_array([], D.INT64)
    assert values.shape == (0,)
    assert valid.shape == (0,)
    with pytest.raises(DataTypeError):
        cells_to_array([b"\x00"], D.UNKNOWN)


def test_cells_to_array_vectors_use_most_common_length() -> None:
    a = np.array([1, 2, 3], dtype="<i2").tobytes()
    b = np.array([4, 5, 6], dtype="<i2").tobytes()
    cells = [a, b"\x01\x00\x02\x00", None, b, b"\x01\x00\x02"]
    values, valid = cells_to_array(cells, D.INT16_VECTOR)
    assert values.shape == (5, 3)
    assert values.dtype == np.int16
    assert values.tolist() == [[1, 2, 3], [0, 0, 0], [0, 0, 0], [4, 5, 6], [0, 0, 0]]
    assert valid.tolist() == [True, False, False, True, False]
    assert array_to_cells(values, valid, D.INT16_VECTOR) == [a, b"", b"", b, b""]
    values, valid = cells_to_array([None, b""], D.FP32_VECTOR)
    assert values.shape == (2, 0)
    assert not valid.any()
    values, valid = cells_to_array([b"\x01\x00", b"\x00\x00\x01", b"\x00\x07"], D.BOOL_VECTOR)
    assert values.tolist() == [[True, False], [False, False], [False, True]]
    assert valid.tolist() == [True, False, True]
    values, valid = cells_to_array([b"\x01\x00", b"\x00\x00\x01"], D.BOOL_VECTOR)  # tie -> longer
    assert values.shape == (2, 3)
    assert valid.tolist() == [False, True]
    # ragged per-row object arrays are encoded row by row
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = np.array([1.0]), np.array([0.5, 1.0])
    assert array_to_cells(ragged, np.array([True, True]), D.FP16_VECTOR) == [b"\x00\x3c", b"\x00\x38\x00\x3c"]


def test_cells_to_array_strings() -> None:
    values, valid = cells_to_array([b"abc", None, b"", "é".encode(), b"\xff"], D.STRING)
    assert values.dtype == object
    assert values.tolist() == ["abc", "", "", "é", "\udcff"]
    assert valid.tolist() == [True, False, False, True, True]
    assert array_to_cells(values, valid, D.STRING) == [b"abc", b"", b"", "é".encode(), b"\xff"]
    sv = encode_string_vector(["a", "bc"])
    values, valid = cells_to_array([sv, None, b"\x05\x00ab", sv], D.STRING_VECTOR)
    assert values.tolist() == [["a", "bc"], [], [], ["a", "bc"]]
    assert valid.tolist() == [
        True,
        False,
        False,
        True,
    ]
    assert array_to_cells(values, valid, D.STRING_VECTOR) == [sv, b"", b"", sv]


def test_string_vector_encoding() -> None:
    assert encode_string_vector(["ab", "", "xyz"]) == b"\x02\x00\x00\x00\x03\x00abxyz"
    assert encode_string_vector([b"\x00\x01"]) == b"\x02\x00\x00\x01"
    assert encode_string_vector([]) == b""
    assert decode_string_vector(b"\x02\x00\x00\x00\x03\x00abxyz") == ["ab", "", "xyz"]
    assert decode_string_vector(b"") == []
    assert decode_string_vector(b"\x00\x00") == [""]
    assert decode_string_vector(b"\x02\x00\x00\x00") == ["\x00\x00"]  # first consistent count wins
    big = "x" * 70000
    assert decode_string_vector(encode_string_vector(["é", "x" * 65535])) == ["é", "x" * 65535]
    with pytest.raises(DataTypeError, match="65535"):
        encode_string_vector([big])
    for bad in (b"\x01", b"\x05\x00ab", b"\x01\x00", b"\x01\x00ab"):
        with pytest.raises(DataTypeError, match="malformed"):
            decode_string_vector(bad)


# ------------------------------------------------------------------------------------- text -> values
def test_parse_text_scalars() -> None:
    assert parse_text("-2", D.INT64) == -2
    assert isinstance(parse_text("-2", D.INT64), np.int64)
    assert parse_text("+7", D.INT8) == 7
    assert parse_text("007", D.UINT8) == 7
    assert parse_text("18446744073709551615", D.UINT64) == 2**64 - 1
    assert parse_text("1e3", D.FP32) == 1000.0
    assert isinstance(parse_text("1e3", D.FP32), np.float32)
    assert parse_text("0x1p-2", D.FP64) == 0.25
    assert parse_text("-0X1.8P1", D.FP32) == -3.0
    assert parse_text("+Inf", D.FP64) == math.inf
    assert parse_text("-infinity", D.FP32) == -math.inf
    assert math.isnan(float(parse_text("NaN", D.FP64)))  # type: ignore[arg-type]
    assert math.copysign(1.0, float(parse_text("-0", D.FP32))) == -1.0  # type: ignore[arg-type]
    assert parse_text(".5", D.FP64) == 0.5
    assert parse_text("5.", D.FP64) == 5.0
    assert parse_text("TRUE", D.BOOL) is np.True_
    assert parse_text("false", D.BOOL) is np.False_
    assert parse_text("hello:world", D.STRING) == "hello:world"
    assert parse_text("a:b", D.STRING_VECTOR) == ["a", "b"]


def test_parse_text_fp32_is_correctly_rounded_from_decimal() -> None:
    # just above the midpoint 1 + 2**-24: float64 parsing lands on the midpoint, a naive cast rounds down
    assert parse_text("1.000000059604644775390625000001", D.FP32) == np.float32(1 + 2**-23)
    assert parse_text("1.000000059604644775390625", D.FP32) == np.float32(1.0)  # exact tie -> even
    values, _ = parse_text_column(["1.000000059604644775390625000001"], D.FP32)
    assert values[0] == np.float32(1 + 2**-23)


@pytest.mark.parametrize(
    ("text", "dt"),
    [
        ("1.0", D.INT32), ("", D.INT32), ("", D.STRING), ("", D.FP32_VECTOR), ("", D.BOOL), ("maybe", D.BOOL),
        ("1", D.BOOL), ("128", D.INT8), ("-129", D.INT8), ("-1", D.UINT8), ("+1", D.UINT8), ("256", D.UINT8),
        ("1_000", D.INT64), (" 1", D.INT64), ("0x10", D.INT32), ("1e400", D.FP64), ("1e39", D.FP32),
        ("1e400", D.FP32), ("0x1p200", D.FP32),
        ("abc", D.FP32), ("1.5 ", D.FP64), ("0x1.8", D.FP64), ("+nan", D.FP64), ("1:x", D.FP32_VECTOR),
        ("1::2", D.INT8_VECTOR), ("1", D.UNKNOWN), ("1e", D.FP32),
    ],
)  # fmt: skip
def test_parse_text_errors(text: str, dt: DataType) -> None:
    with pytest.raises(DataTypeError):
        parse_text(text, dt)
    with pytest.raises(DataTypeError):
        text_to_bytes(text, dt)


def test_parse_text_vectors() -> None:
    vec = parse_text("0.1:0.2:0.3", D.FP32_VECTOR)
    assert isinstance(vec, np.ndarray)
    assert vec.dtype == np.float32
    assert vec.tolist() == np.array([0.1, 0.2, 0.3], dtype=np.float32).tolist()
    assert text_to_bytes("0.5:1", D.FP32_VECTOR) == b"\x00\x00\x00\x3f\x00\x00\x80\x3f"
    assert text_to_bytes("true:FALSE", D.BOOL_VECTOR) == b"\x01\x00"
    assert text_to_bytes("a:bc", D.STRING_VECTOR) == b"\x01\x00\x02\x00abc"
    assert text_to_bytes("héllo", D.STRING) == "héllo".encode()
    assert text_to_bytes("7", D.INT8_VECTOR) == b"\x07"


def test_parse_text_column_fast_and_slow_paths() -> None:
    values, valid = parse_text_column(["1", "-2", "", "128", "3"], D.INT8)
    assert values.dtype == np.int8
    assert values.tolist() == [1, -2, 0, 0, 3]
    assert valid.tolist() == [True, True, False, False, True]
    values, valid = parse_text_column(["1", "1.0", " 2", "1_0", "+4", "x"], D.INT32)  # slow path
    assert values.tolist() == [1, 0, 0, 0, 4, 0]
    assert valid.tolist() == [
        True,
        False,
        False,
        False,
        True,
        False,
    ]
    values, valid = parse_text_column(["1.5", "inf", "1e400", "NaN", "", "-0"], D.FP64)
    assert valid.tolist() == [True, True, False, True, False, True]
    assert values[0] == 1.5
    assert values[1] == math.inf
    assert values[2] == 0
    assert math.isnan(values[3])
    values, valid = parse_text_column(["0x1p-2", "2049", "65520", "bad"], D.FP16)
    assert values.dtype == np.float16
    assert values[:3].tolist() == [0.25, 2048.0, math.inf]
    assert valid.tolist() == [True, True, True, False]
    values, valid = parse_text_column(["480", "1", "-480"], D.FP8E4M3)
    assert bytes(values.view(np.uint8)) == b"\x7f\x38\xff"
    assert valid.all()
    values, valid = parse_text_column(["True", "false", "yes", ""], D.BOOL)
    assert values.tolist() == [True, False, False, False]
    assert valid.tolist() == [True, True, False, False]
    values, valid = parse_text_column(["18446744073709551615", "18446744073709551616"], D.UINT64)
    assert values.tolist() == [2**64 - 1, 0]
    assert valid.tolist() == [True, False]
    values, valid = parse_text_column(["a", ""], D.STRING)
    assert values.tolist() == ["a", ""]
    assert valid.tolist() == [True, False]
    values, valid = parse_text_column(["a:b", "c:d", ""], D.STRING_VECTOR)
    assert values.tolist() == [["a", "b"], ["c", "d"], []]
    assert valid.tolist() == [True, True, False]
    assert parse_text_column([], D.FP32)[0].shape == (0,)


def test_parse_text_column_vectors() -> None:
    values, valid = parse_text_column(["1:2", "3:4", "5", "", "6:x", "7:8"], D.INT64_VECTOR)
    assert values.shape == (6, 2)
    assert values.dtype == np.int64
    assert values.tolist() == [[1, 2], [3, 4], [0, 0], [0, 0], [0, 0], [7, 8]]
    assert valid.tolist() == [True, True, False, False, False, True]
    values, valid = parse_text_column(["", ""], D.FP32_VECTOR)
    assert values.shape == (2, 0)
    assert not valid.any()


# ------------------------------------------------------------------------------------- values -> text
@pytest.mark.parametrize(
    ("value", "dt", "text"),
    [
        (100000.0, D.FP64, "100000"), (1e6, D.FP64, "1e+06"), (1234567.0, D.FP64, "1.234567e+06"),
        (0.0001, D.FP64, "0.0001"), (1e-05, D.FP64, "1e-05"), (0.25, D.FP64, "0.25"), (3.0, D.FP64, "3"),
        (np.float32(0.1), D.FP32, "0.1"), (0.1, D.FP64, "0.1"), (float("nan"), D.FP64, "NaN"),
        (float("inf"), D.FP32, "+Inf"), (float("-inf"), D.FP64, "-Inf"), (-0.0, D.FP64, "-0"),
        (0.0, D.FP32, "0"), (123456.0, D.FP32, "123456"), (1e21, D.FP64, "1e+21"), (1e100, D.FP64, "1e+100"),
        (-1.5e-7, D.FP64, "-1.5e-07"), (123.456, D.FP64, "123.456"),
        (np.float32(16777216.0), D.FP32, "1.6777216e+07"),
        (np.float16(0.1), D.FP16, "0.099975586"), (0.1, D.FP8E4M3, "0.1015625"),
        (3.4028235e38, D.FP32, "3.4028235e+38"),
        (-2, D.INT64, "-2"), (65535, D.UINT16, "65535"), (True, D.BOOL, "true"), (np.False_, D.BOOL, "false"),
        ("héllo", D.STRING, "héllo"), (b"raw", D.STRING, "raw"),
        (np.array([0.5, 1.0], np.float32), D.FP32_VECTOR, "0.5,1"), ([1, 2, 3], D.INT8_VECTOR, "1,2,3"),
        (np.array([True, False]), D.BOOL_VECTOR, "true,false"), (["a", "b"], D.STRING_VECTOR, "a,b"),
    ],
)  # fmt: skip
def test_format_value_goldens(value: object, dt: DataType, text: str) -> None:
    assert format_value(value, dt) == text


def test_format_column() -> None:
    vals = np.array([0.5, 1e6, 0.0], dtype=np.float32)
    assert format_column(vals, np.array([True, True, False]), D.FP32) == ["0.5", "1e+06", ""]
    assert format_column(np.array([[1, 2], [3, 4]], np.int32), np.array([True, False]), D.INT32_VECTOR) == [
        "1,2",
        "",
    ]
    assert format_column(np.array([True, False]), np.array([True, True]), D.BOOL) == ["true", "false"]
    strings = np.array(["a", "b"], dtype=object)
    assert format_column(strings, np.array([False, True]), D.STRING) == ["", "b"]


def test_bytes_to_text_exact_size() -> None:
    assert bytes_to_text(b"\x00\x00\x80\x3f", D.FP32) == "1"
    assert bytes_to_text(b"\x00\x3c", D.FP16) == "1"
    assert bytes_to_text(b"\x00\x00\x00\x3f\x00\x00\x80\x3f", D.FP32_VECTOR) == "0.5,1"
    assert bytes_to_text(b"\x01\x00\x02\x00abc", D.STRING_VECTOR) == "a,bc"
    assert bytes_to_text(b"abc", D.STRING) == "abc"
    assert bytes_to_text(b"\x02", D.BOOL) == "true"
    for cell, dt in (
        (b"\x00\x00\x80", D.FP32),
        (b"", D.INT64),
        (b"\x00" * 5, D.FP32_VECTOR),
        (b"\x01", D.INT16),
    ):
        with pytest.raises(DataTypeError):
            bytes_to_text(cell, dt)


# ------------------------------------------------------------------------------------- casts
def test_cast_array_numeric() -> None:
    f = np.array([1.9, -1.9, np.nan, 1e20, -0.5], dtype=np.float64)
    assert cast_array(f, D.FP64, D.INT32).tolist() == [1, -1, 0, 0, 0]
    assert cast_array(f, D.FP64, D.UINT8).tolist() == [1, 0, 0, 0, 0]
    assert cast_array(np.array([300, -1]), D.INT64, D.INT8).tolist() == [44, -1]  # int -> int wraps like Go
    assert cast_array(np.array([0.0, 2.0, np.nan]), D.FP64, D.BOOL).tolist() == [False, True, True]
    assert cast_array(np.array([True, False]), D.BOOL, D.FP32).tolist() == [1.0, 0.0]
    assert cast_array(np.array([[1, 2]], np.int8), D.INT8_VECTOR, D.FP32_VECTOR).dtype == np.float32
    same = np.array([1.0], np.float32)
    assert cast_array(same, D.FP32, D.FP32) is same


def test_cast_array_strings() -> None:
    texts = np.array(["1.5", "2e3", "inf"], dtype=object)
    assert cast_array(texts, D.STRING, D.FP32).tolist() == [1.5, 2000.0, math.inf]
    assert cast_array(np.array(["7", "-1"], dtype=object), D.STRING, D.INT16).tolist() == [7, -1]
    assert cast_array(np.array(["1:2", "3:4"], dtype=object), D.STRING, D.INT8_VECTOR).tolist() == [
        [1, 2],
        [3, 4],
    ]
    with pytest.raises(DataTypeError):
        cast_array(np.array(["1.5"], dtype=object), D.STRING, D.INT32)
    with pytest.raises(DataTypeError):
        cast_array(np.array(["1:2", "3"], dtype=object), D.STRING, D.INT8_VECTOR)
    out = cast_array(np.array([1e6, 0.25]), D.FP64, D.STRING)
    assert out.dtype == object
    assert out.tolist() == ["1e+06", "0.25"]
    out = cast_array(np.array([[0.5, 1.0]], np.float32), D.FP32_VECTOR, D.STRING)
    assert out.tolist() == ["0.5,1"]
    out = cast_array(np.array([[1, 2], [3, 4]], np.int8), D.INT8_VECTOR, D.STRING_VECTOR)
    assert out.tolist() == [["1", "2"], ["3", "4"]]
    sv = np.empty(1, dtype=object)
    sv[0] = ["1", "2"]
    assert cast_array(sv, D.STRING_VECTOR, D.FP64_VECTOR).tolist() == [[1.0, 2.0]]
    assert cast_array(sv, D.STRING_VECTOR, D.STRING).tolist() == ["1,2"]
    assert cast_array(np.array(["a:b"], dtype=object), D.STRING, D.STRING_VECTOR).tolist() == [["a", "b"]]
    with pytest.raises(DataTypeError):
        cast_array(np.array([1]), D.INT8, D.UNKNOWN)


def test_huge_texts_are_invalid_quickly_not_a_crash_or_a_stall() -> None:
    """A 70,000-digit value once hit Python's int-digit limit (crash) and a backtracking regex (stall)."""
    import time

    big = ["1" * 70000] * 49 + ["1" * 70000 + "x"]
    for dt in (DataType.FP32, DataType.FP64, DataType.INT64, DataType.UINT8, DataType.FP32_VECTOR):
        t0 = time.perf_counter()
        _, valid = parse_text_column(big, dt)
        assert not valid.any()
        assert time.perf_counter() - t0 < 2.0, dt
    with pytest.raises(DataTypeError, match=r"\(70000 chars\) is out of range"):
        parse_text("9" * 70000, DataType.INT64)
    assert parse_text("0" * 50 + "7", DataType.INT8) == 7  # leading zeros are fine, as in Go
