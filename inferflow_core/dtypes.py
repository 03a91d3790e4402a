"""Inferflow data types: names, binary cell encodings and the one text format (reference §1.3, §4.3-4.5).

Binary cells are little-endian: fixed-width scalars are one element, fixed-width vectors are the elements
concatenated (length implied), BOOL is one 0/1 byte per element (any non-zero byte decodes as true),
STRING is raw UTF-8, STRING_VECTOR is ``k`` uint16-LE lengths followed by the ``k`` strings.

Text: vectors are parsed with ``:`` between elements and printed with ``,`` (Go ``%v`` float rules).
FP16/FP8 values are always produced from float32 (text is parsed at float32 precision, casts go via float32),
then rounded to nearest-even. FP8E4M3 ("fn", no infinities) overflow (|x| >= 480, also +-Inf/NaN) -> NaN
0x7F with the sign kept; FP8E5M2 overflow -> +-Inf (0x7C), NaN -> 0x7F (sign kept) — the PyTorch/c10 rules.
"""

from __future__ import annotations

import enum
import itertools
import re
import struct
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

import ml_dtypes
import numpy as np

__all__ = [
    "DataType", "DataTypeError", "array_to_cells", "bytes_to_text", "cast_array", "cells_to_array",
    "decode_array", "decode_string_vector", "encode_array", "encode_string_vector", "format_column",
    "format_value", "from_kserve", "parse_dtype", "parse_text", "parse_text_column", "text_to_bytes",
]  # fmt: skip


class DataTypeError(ValueError):
    """A type spelling, value, text or byte cell does not fit the requested data type."""


class DataType(enum.IntEnum):
    UNKNOWN = 0
    FP8E5M2 = 1
    FP8E4M3 = 2
    FP16 = 3
    FP32 = 4
    FP64 = 5
    INT8 = 6
    INT16 = 7
    INT32 = 8
    INT64 = 9
    UINT8 = 10
    UINT16 = 11
    UINT32 = 12
    UINT64 = 13
    STRING = 14
    BOOL = 15
    FP8E5M2_VECTOR = 16
    FP8E4M3_VECTOR = 17
    FP16_VECTOR = 18
    FP32_VECTOR = 19
    FP64_VECTOR = 20
    INT8_VECTOR = 21
    INT16_VECTOR = 22
    INT32_VECTOR = 23
    INT64_VECTOR = 24
    UINT8_VECTOR = 25
    UINT16_VECTOR = 26
    UINT32_VECTOR = 27
    UINT64_VECTOR = 28
    STRING_VECTOR = 29
    BOOL_VECTOR = 30

    # Properties read precomputed per-member tables (filled below the class): they sit on the hot path
    # (every matrix read/write asks them), so none of them computes anything per call.
    @property
    def wire_name(self) -> str:
        """The proto enum value name, e.g. ``DataTypeFP32Vector``."""
        return _T_WIRE_NAME[self]

    @property
    def is_vector(self) -> bool:
        return self >= 16

    @property
    def scalar(self) -> DataType:
        return _T_SCALAR[self]

    @property
    def vector(self) -> DataType:
        if self is DataType.UNKNOWN:
            raise DataTypeError("DataTypeUnknown has no vector form")
        return _T_VECTOR[self]

    @property
    def is_fixed_width(self) -> bool:
        return _T_FIXED[self]

    @property
    def itemsize(self) -> int:
        size = _T_ITEMSIZE[self]
        return size if size else _no(self, "a fixed element size")

    @property
    def numpy_dtype(self) -> np.dtype:
        dtype = _T_NUMPY[self]
        return dtype if dtype is not None else _no(self, "a numpy dtype")

    @property
    def kserve_name(self) -> str:
        name = _KSERVE.get(_T_SCALAR[self])
        return name if name is not None else _no(self, "a KServe v2 datatype")


def _no(dt: DataType, what: str) -> NoReturn:
    raise DataTypeError(f"{dt.wire_name} does not have {what}")


_S = DataType
_WIRE_NAMES = ["Unknown", "FP8E5M2", "FP8E4M3", "FP16", "FP32", "FP64", "Int8", "Int16", "Int32", "Int64",
               "Uint8", "Uint16", "Uint32", "Uint64", "String", "Bool"]  # fmt: skip
_WIRE: dict[DataType, str] = dict(zip(list(DataType)[:16], _WIRE_NAMES, strict=True))
_NUMPY: dict[DataType, np.dtype] = {
    _S.FP8E5M2: np.dtype(ml_dtypes.float8_e5m2), _S.FP8E4M3: np.dtype(ml_dtypes.float8_e4m3fn),
    _S.FP16: np.dtype("<f2"), _S.FP32: np.dtype("<f4"), _S.FP64: np.dtype("<f8"), _S.INT8: np.dtype("i1"),
    _S.INT16: np.dtype("<i2"), _S.INT32: np.dtype("<i4"), _S.INT64: np.dtype("<i8"), _S.UINT8: np.dtype("u1"),
    _S.UINT16: np.dtype("<u2"), _S.UINT32: np.dtype("<u4"), _S.UINT64: np.dtype("<u8"),
    _S.BOOL: np.dtype(np.bool_), _S.STRING: np.dtype(object),
}  # fmt: skip
_KSERVE: dict[DataType, str] = {
    dt: _WIRE[dt].upper() for dt in _NUMPY if dt not in (_S.FP8E5M2, _S.FP8E4M3, _S.STRING)
}
_KSERVE[_S.STRING] = "BYTES"
_T_SCALAR: tuple[DataType, ...] = tuple(DataType(v - 15 if v >= 16 else v) for v in range(31))
_T_VECTOR: tuple[DataType, ...] = tuple(DataType(v if v >= 16 else v + 15) for v in range(31))
_T_WIRE_NAME: tuple[str, ...] = tuple(
    "DataType" + _WIRE[_T_SCALAR[v]] + ("Vector" if v >= 16 else "") for v in range(31)
)
_T_FIXED: tuple[bool, ...] = tuple(_T_SCALAR[v] not in (_S.STRING, _S.UNKNOWN) for v in range(31))
_T_NUMPY: tuple[np.dtype | None, ...] = tuple(_NUMPY.get(_T_SCALAR[v]) for v in range(31))
_T_ITEMSIZE: tuple[int, ...] = tuple(
    int(_T_NUMPY[v].itemsize) if _T_FIXED[v] else 0  # type: ignore[union-attr]
    for v in range(31)
)
_FLOATS = (_S.FP8E5M2, _S.FP8E4M3, _S.FP16, _S.FP32, _S.FP64)
_INT_RANGE = {
    dt: (int(np.iinfo(_NUMPY[dt]).min), int(np.iinfo(_NUMPY[dt]).max)) for dt in _S if 6 <= dt <= 13
}

# ------------------------------------------------------------------------------------------- names
_ALIASES: dict[str, DataType] = {_WIRE[dt].lower(): dt for dt in _WIRE} | {
    "float16": _S.FP16, "float32": _S.FP32, "float64": _S.FP64, "bytes": _S.STRING, "str": _S.STRING,
    "float8e4m3": _S.FP8E4M3, "float8_e4m3fn": _S.FP8E4M3,
    "float8e5m2": _S.FP8E5M2, "float8_e5m2": _S.FP8E5M2,
}  # fmt: skip
_ACCEPTED = (
    "FP8E5M2, FP8E4M3, FP16, FP32, FP64, INT8..INT64, UINT8..UINT64, STRING, BOOL, UNKNOWN "
    "(case-insensitive, optional 'DataType' prefix, optional 'Vector'/'_vector' suffix; "
    "aliases float16/float32/float64, float8e4m3/float8e5m2, bytes/str = STRING)"
)


def parse_dtype(spelling: str) -> DataType:
    """The one type-name normaliser: ``fp32``, ``DataTypeFP32Vector``, ``fp32_vector``, ``bytes`` ..."""
    core = spelling.strip().lower()
    core = core.removeprefix("datatype")
    vector = core.endswith("vector")
    if vector:
        core = core.removesuffix("vector").removesuffix("_")
    dt = _ALIASES.get(core)
    if dt is None or (vector and dt is DataType.UNKNOWN):
        raise DataTypeError(f"unknown data type {spelling!r}; accepted: {_ACCEPTED}")
    return dt.vector if vector else dt


def from_kserve(name: str, vector: bool = False) -> DataType:
    """KServe v2 datatype (``FP32``, ``BYTES`` ...) -> DataType; BF16 and unknown names are rejected."""
    for dt, kname in _KSERVE.items():
        if kname == name.strip().upper():
            return dt.vector if vector else dt
    raise DataTypeError(f"unsupported KServe datatype {name!r}; supported: {', '.join(_KSERVE.values())}")


# ------------------------------------------------------------------------------------------- numeric casts
def _to_numeric(values: np.ndarray, dt: DataType) -> np.ndarray:
    """Go-like element conversion of a numeric/bool array to ``dt``'s element dtype."""
    target, src = dt.numpy_dtype, np.asarray(values)
    if src.dtype == target:
        return src
    if dt.scalar is DataType.BOOL:
        return src != 0
    src_is_float = src.dtype.kind == "f" or src.dtype in (_NUMPY[_S.FP8E4M3], _NUMPY[_S.FP8E5M2])
    if dt.scalar in (DataType.FP16, DataType.FP8E4M3, DataType.FP8E5M2):
        f32 = src.astype(np.float32)  # the c10 / binary16 encoders take float32 input
        with np.errstate(over="ignore"):
            out = f32.astype(target)
        if dt.scalar is DataType.FP8E5M2:  # ml_dtypes gives 0x7E for NaN; Go Inferflow (c10) gives 0x7F
            raw = out.view(np.uint8)
            raw[np.isnan(f32)] = np.where(np.signbit(f32[np.isnan(f32)]), 0xFF, 0x7F)
        return out
    if src_is_float and dt.scalar in _INT_RANGE:  # truncate toward zero; NaN / out of range -> 0
        bits = target.itemsize * 8
        lo, hi = (0.0, 2.0**bits) if target.kind == "u" else (-(2.0 ** (bits - 1)), 2.0 ** (bits - 1))
        with np.errstate(invalid="ignore"):
            t = np.trunc(src.astype(np.float64))
            return np.where((t >= lo) & (t < hi), t, 0).astype(target)
    with np.errstate(over="ignore"):
        return src.astype(target)  # int<->int wraps like Go; ints/bools -> floats round to nearest


# ------------------------------------------------------------------------------------------- binary
def encode_array(values: np.ndarray, dt: DataType) -> bytes:
    """A whole column (1-D scalars or 2-D vectors) as contiguous little-endian bytes."""
    if not dt.is_fixed_width:
        raise DataTypeError(f"{dt.wire_name} has no contiguous column encoding; use array_to_cells")
    return np.ascontiguousarray(_to_numeric(values, dt)).tobytes()


def decode_array(buf: bytes, dt: DataType, dim: int | None = None) -> np.ndarray:
    """Inverse of :func:`encode_array`; ``dim`` reshapes to ``(-1, dim)``. Returns a writable copy."""
    size, width = len(buf), dt.itemsize * (dim if dim is not None else 1)
    if (dim is not None and dim <= 0) or size % width:
        raise DataTypeError(f"{size} bytes is not a whole number of {dt.wire_name} items (dim={dim})")
    raw = np.frombuffer(buf, dtype=np.uint8 if dt.scalar is DataType.BOOL else dt.numpy_dtype)
    out = raw != 0 if dt.scalar is DataType.BOOL else raw.copy()
    return out.reshape(-1, dim) if dim is not None else out


def encode_string_vector(items: Sequence[str | bytes]) -> bytes:
    """``k`` uint16-LE lengths, then the ``k`` strings (UTF-8) concatenated."""
    raw = [s.encode("utf-8", "surrogateescape") if isinstance(s, str) else bytes(s) for s in items]
    if too_long := [len(b) for b in raw if len(b) > 0xFFFF]:
        raise DataTypeError(f"string vector element of {too_long[0]} bytes exceeds the 65535-byte limit")
    return struct.pack(f"<{len(raw)}H", *map(len, raw)) + b"".join(raw)


def decode_string_vector(buf: bytes) -> list[str]:
    """Inverse of :func:`encode_string_vector`.

    The element count is not stored: length prefixes are consumed until ``2k + sum(lengths) == len(buf)``.
    The first such ``k`` is the only possible one (each further prefix adds >= 2 bytes), so the rule is
    unambiguous; running out of bytes or overshooting raises DataTypeError. ``b""`` is the empty vector.
    """
    lengths: list[int] = []
    total = 0
    while 2 * len(lengths) + total != len(buf):
        if 2 * len(lengths) + 2 + total > len(buf):
            raise DataTypeError(f"malformed string vector of {len(buf)} bytes: lengths {lengths} overrun it")
        lengths.append(struct.unpack_from("<H", buf, 2 * len(lengths))[0])
        total += lengths[-1]
    ends = list(itertools.accumulate(lengths, initial=2 * len(lengths)))
    return [buf[a:b].decode("utf-8", "surrogateescape") for a, b in itertools.pairwise(ends)]


def _decode_text_cell(cell: bytes | None, dt: DataType) -> object:
    """STRING / STRING_VECTOR cell -> str / list[str]; None when missing, empty or malformed."""
    if not cell:
        return None
    if not dt.is_vector:
        return cell.decode("utf-8", "surrogateescape")
    try:
        return decode_string_vector(cell)
    except DataTypeError:
        return None


def _most_common(lengths: np.ndarray) -> int:
    """Most frequent value of a non-empty array; ties go to the larger value."""
    vals, counts = np.unique(lengths, return_counts=True)
    return int(vals[len(counts) - 1 - int(np.argmax(counts[::-1]))])


def cells_to_array(cells: Sequence[bytes | None], dt: DataType) -> tuple[np.ndarray, np.ndarray]:
    """Per-row byte cells -> (values, valid). Fixed widths decode in one ``np.frombuffer`` call.

    Invalid rows (None, ``b""``, wrong size, malformed string vector) are zeros / ``""`` / ``[]``.
    Vector columns are 2-D ``(rows, dim)``; ``dim`` comes from the most common non-empty cell length
    (ties -> longer); a column without any usable cell has ``dim == 0``.
    """
    n = len(cells)
    if dt.scalar is DataType.UNKNOWN:
        raise DataTypeError("cannot decode DataTypeUnknown cells")
    if not dt.is_fixed_width:
        decoded = [_decode_text_cell(c, dt) for c in cells]
        valid = np.fromiter((d is not None for d in decoded), dtype=bool, count=n)
        empty: object = [] if dt.is_vector else ""
        return _objects([empty if d is None else d for d in decoded]), valid
    size = dt.itemsize
    lens = np.fromiter((len(c) if c is not None else 0 for c in cells), dtype=np.int64, count=n)
    if dt.is_vector:
        usable = lens[(lens > 0) & (lens % size == 0)]
        width = _most_common(usable) if usable.size else 0
        shape: tuple[int, ...] = (n, width // size)
    else:
        width, shape = size, (n,)
    valid = (lens == width) & (lens > 0)
    joined = b"".join(itertools.compress(cells, valid))  # type: ignore[arg-type]
    values = np.zeros(shape, dtype=dt.numpy_dtype)
    if valid.any():
        values[valid] = decode_array(joined, dt, shape[1] if dt.is_vector else None)
    return values, valid


def array_to_cells(values: np.ndarray, valid: np.ndarray, dt: DataType) -> list[bytes]:
    """Inverse of :func:`cells_to_array`: per-row bytes, ``b""`` where invalid.

    Fixed widths encode the whole column once and slice; object arrays of per-row vectors (ragged) are
    encoded row by row.
    """
    ok = np.asarray(valid, dtype=bool).tolist()
    if dt.scalar is DataType.STRING:
        enc = encode_string_vector if dt.is_vector else _str_bytes
        return [enc(v) if good else b"" for v, good in zip(values, ok, strict=True)]
    arr = np.asarray(values)
    if arr.dtype == object:
        return [encode_array(np.asarray(v), dt) if good else b"" for v, good in zip(arr, ok, strict=True)]
    buf, n = encode_array(arr, dt), len(ok)
    w = len(buf) // n if n else 0
    return [buf[i * w : (i + 1) * w] if good else b"" for i, good in enumerate(ok)]


def _objects(items: Sequence[object]) -> np.ndarray:
    """1-D object array holding ``items`` as-is (lists stay lists, even when all have the same length)."""
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        out[i] = item
    return out


def _str_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogateescape")


# ------------------------------------------------------------------------------------------- text -> values
# Unambiguous and atomic (no digit run can be split two ways), so a failing match of a huge text is
# linear, not quadratic: a 70,000-digit value must not stall the event loop.
_DEC = r"(?>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?i:infinity|inf)|(?i:nan))"
_HEX = r"(?>[+-]?0[xX](?:[0-9a-fA-F]+(?:\.[0-9a-fA-F]*)?|\.[0-9a-fA-F]+)[pP][+-]?\d+)"
_FLOAT_RE, _HEX_RE = re.compile(_DEC), re.compile(_HEX)
_FLOAT_COL_RE = re.compile(f"(?:{_DEC})(?:,(?:{_DEC}))*")
_SIGNED_RE, _UNSIGNED_RE = re.compile(r"[+-]?\d+"), re.compile(r"\d+")
# column guards: with only these characters, numpy's (Python's) parser accepts exactly Go's syntax
_NOT_DECIMAL, _NOT_SIGNED, _NOT_UNSIGNED = (
    re.compile(r"[^0-9.eE+\-,]"),
    re.compile(r"[^0-9+\-,]"),
    re.compile("[^0-9,]"),
)


_F32_TINY = 2.0**-126


def _f64_to_f32(f64: np.ndarray, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Correctly rounded decimal -> float32 (as Go's ParseFloat(s, 32)) from the float64 parse.

    Double rounding can only go wrong when the float64 lands exactly on a float32 midpoint; those rare
    rows are re-decided from the exact decimal text. Returns (float32 values, not-overflowed mask).
    """
    with np.errstate(over="ignore", invalid="ignore"):
        r = f64.astype(np.float32)
        # a float32 midpoint has at most 25 significant bits: as a float64 its low 29 mantissa bits are
        # exactly 1 followed by 28 zeros (float32-subnormal magnitudes are checked the slow way)
        bits = f64.view(np.uint64)
        suspects = np.flatnonzero(
            ((bits & np.uint64(0x1FFFFFFF)) == np.uint64(0x10000000)) | (np.abs(f64) < _F32_TINY)
        )
        if suspects.size == 0:
            return r, np.isfinite(r) | ~np.isfinite(f64)
        diff = np.zeros_like(f64)
        other = r.copy()
        tie = np.zeros(f64.shape, dtype=bool)
        sd = f64[suspects] - r[suspects].astype(np.float64)
        so = np.nextafter(r[suspects], np.where(sd > 0, np.float32(np.inf), np.float32(-np.inf)))
        diff[suspects], other[suspects] = sd, so
        tie[suspects] = (sd != 0) & (np.abs(so.astype(np.float64) - f64[suspects]) == np.abs(sd))
        tie &= np.isfinite(r)
    for i in np.flatnonzero(tie):
        try:
            exact = Decimal(texts[int(i)]) - Decimal(float(f64[i]))
        except InvalidOperation:  # hex literal: exactly representable input, no double rounding
            continue
        if exact != 0 and (exact > 0) == (diff[i] > 0):
            r[i] = other[i]
    return r, np.isfinite(r) | ~np.isfinite(f64)


def _clip(text: str, limit: int = 40) -> str:
    """A text for an error message: repr, shortened when long."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} chars)"


def _parse_scalar(text: str, dt: DataType) -> object:
    """Strict Go-like parse of one scalar text (ParseInt/ParseUint base 10, ParseFloat, true/false)."""
    if not text:
        raise DataTypeError(f"empty text is not a valid {dt.wire_name}")
    if dt is DataType.STRING:
        return text
    if dt is DataType.BOOL:
        if text.lower() not in ("true", "false"):
            raise DataTypeError(f"cannot parse {_clip(text)} as {dt.wire_name}: expected 'true' or 'false'")
        return np.bool_(text.lower() == "true")
    if dt in _INT_RANGE:
        lo, hi = _INT_RANGE[dt]
        if not (_UNSIGNED_RE if lo == 0 else _SIGNED_RE).fullmatch(text):
            raise DataTypeError(f"cannot parse {_clip(text)} as {dt.wire_name}: expected a base-10 integer")
        if len(text.lstrip("+-").lstrip("0")) > 20 or not lo <= int(text) <= hi:  # > 20 digits: no int64
            raise DataTypeError(f"{_clip(text)} is out of range for {dt.wire_name} [{lo}, {hi}]")
        return dt.numpy_dtype.type(int(text))
    is_hex = _HEX_RE.fullmatch(text) is not None
    if dt not in _FLOATS or not (is_hex or _FLOAT_RE.fullmatch(text)):
        raise DataTypeError(f"cannot parse {_clip(text)} as {dt.wire_name}")
    out_of_range = DataTypeError(f"{_clip(text)} is out of range for {dt.wire_name}")
    try:
        arr = np.array([float.fromhex(text) if is_hex else float(text)])
    except OverflowError:
        raise out_of_range from None
    fits = ~np.isinf(arr) | ("n" in text.lower())  # "1e400" is Go's ErrRange, "inf" is fine
    if dt is not DataType.FP64:
        arr, fits32 = _f64_to_f32(arr, [text])
        fits &= fits32
    if not fits[0]:
        raise out_of_range
    return _to_numeric(arr, dt)[0]


def parse_text(text: str, dt: DataType) -> object:
    """One text value -> numpy scalar (str for STRING, 1-D array for vectors, list[str] for STRING_VECTOR).

    Vector elements are separated by ``:``; empty text (or an empty element) is an error. Ints are base-10
    with a range check; floats follow Go's ParseFloat syntax (decimal, inf/infinity, nan, hex with ``p``
    exponent) and are parsed at float32 precision for FP8/FP16/FP32 (a finite literal beyond that range is
    an error, like Go's ErrRange), then rounded to the target with the encoders described in the module doc.
    """
    if dt.scalar is DataType.UNKNOWN:
        raise DataTypeError("cannot parse text as DataTypeUnknown")
    if not dt.is_vector:
        return _parse_scalar(text, dt)
    if not text:
        raise DataTypeError(f"empty text is not a valid {dt.wire_name}")
    parts = text.split(":")
    if dt is DataType.STRING_VECTOR:
        return parts
    return np.array([_parse_scalar(p, dt.scalar) for p in parts], dtype=dt.numpy_dtype)


def _parse_fixed_scalars(texts: list[str], dt: DataType) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised parse of non-empty texts for a fixed-width scalar type; ValueError -> use the slow path."""
    joined = ",".join(texts)
    if dt is DataType.BOOL:
        low = np.array([t.lower() for t in texts], dtype=np.str_)
        return low == "true", (low == "true") | (low == "false")
    if dt in _INT_RANGE:
        lo, hi = _INT_RANGE[dt]
        if not (_NOT_UNSIGNED if lo == 0 else _NOT_SIGNED).search(joined):
            wide = np.array(texts, dtype=np.uint64 if lo == 0 else np.int64)
            ok = (wide >= lo) & (wide <= hi)
            wide[~ok] = 0
            return wide.astype(dt.numpy_dtype), ok
    elif not _NOT_DECIMAL.search(joined) or _FLOAT_COL_RE.fullmatch(joined):
        f64 = np.array(texts, dtype=np.float64)
        ok = np.ones(len(texts), dtype=bool)
        for i in np.flatnonzero(np.isinf(f64)):  # "1e400" overflows (Go ErrRange); "inf" does not
            ok[i] = "n" in texts[int(i)].lower()
        if dt is not DataType.FP64:
            f32, fits = _f64_to_f32(f64, texts)
            f64, ok = f32, ok & fits
        out = _to_numeric(f64, dt)
        out[~ok] = 0
        return out, ok
    raise ValueError("slow path")


def parse_text_column(texts: Sequence[str], dt: DataType) -> tuple[np.ndarray, np.ndarray]:
    """A column of texts -> (values, valid) shaped like :func:`cells_to_array`'s result."""
    n = len(texts)
    present = np.ones(n, dtype=bool) if all(texts) else np.fromiter(map(bool, texts), dtype=bool, count=n)
    if dt.scalar is DataType.STRING:
        return _objects([(t.split(":") if t else []) if dt.is_vector else t for t in texts]), present
    if dt.is_vector:
        parts = [t.split(":") if t else [] for t in texts]
        counts = np.fromiter(map(len, parts), dtype=np.int64, count=n)
        if not present.any():
            return np.zeros((n, 0), dtype=dt.numpy_dtype), present
        dim = _most_common(counts[counts > 0])
        rows = (counts == dim) & present
        flat = [p for row, keep in zip(parts, rows, strict=True) if keep for p in row]
        elems, elem_ok = parse_text_column(flat, dt.scalar)
        values = np.zeros((n, dim), dtype=dt.numpy_dtype)
        row_ok = elem_ok.reshape(-1, dim).all(axis=1)
        values[np.flatnonzero(rows)[row_ok]] = elems.reshape(-1, dim)[row_ok]
        rows[rows] = row_ok
        return values, rows
    values = np.zeros(n, dtype=dt.numpy_dtype)
    valid = present.copy()
    if present.all():  # the common case: no gather needed
        idx = np.arange(n)
        sub = texts if isinstance(texts, list) else list(texts)
    else:
        idx = np.flatnonzero(present)
        sub = [texts[int(i)] for i in idx]
    try:
        values[idx], valid[idx] = _parse_fixed_scalars(sub, dt)
    except (ValueError, OverflowError):  # per-cell fallback: strict parser, failures become invalid
        for i, text in zip(idx, sub, strict=True):
            try:
                values[i] = _parse_scalar(text, dt)
            except DataTypeError:
                valid[i] = False
    return values, valid


# ------------------------------------------------------------------------------------------- values -> text
def _format_float(x: float, single: bool) -> str:
    """Go ``%v``: shortest round-trip digits; exponent form iff exp < -4 or exp >= 6 (``1e+06``)."""
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "+Inf" if x > 0 else "-Inf"
    sci = np.format_float_scientific(np.float32(x) if single else np.float64(x), unique=True)
    mantissa, exp_text = sci.split("e")
    sign = "-" if mantissa.startswith("-") else ""
    digits = mantissa.lstrip("-").replace(".", "").rstrip("0") or "0"
    exp = int(exp_text) if digits != "0" else 0
    if exp < -4 or exp >= 6:
        frac = "." + digits[1:] if len(digits) > 1 else ""
        return f"{sign}{digits[0]}{frac}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if exp < 0:
        return f"{sign}0.{'0' * (-exp - 1)}{digits}"
    whole, frac = digits[: exp + 1].ljust(exp + 1, "0"), digits[exp + 1 :]
    return f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}"


def _format_elements(values: np.ndarray, dt: DataType) -> list[str]:
    """Format a numeric/bool array (any shape) of element type ``dt.scalar`` element by element."""
    arr = _to_numeric(np.asarray(values), dt).ravel()
    if dt.scalar is DataType.BOOL:
        return ["true" if v else "false" for v in arr.tolist()]
    if dt.scalar in _INT_RANGE:
        return [str(v) for v in arr.tolist()]
    single = dt.scalar is not DataType.FP64
    return [_format_float(v, single) for v in arr.astype(np.float64).tolist()]


def format_value(value: object, dt: DataType) -> str:
    """One value as text (Go ``%v``); vector elements joined with ``,``; STRING is the text itself."""
    if dt.scalar is DataType.UNKNOWN:
        raise DataTypeError("cannot format a DataTypeUnknown value")
    if dt is DataType.STRING:
        return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)
    if dt is DataType.STRING_VECTOR:
        return ",".join(format_value(v, DataType.STRING) for v in value)  # type: ignore[attr-defined]
    return ",".join(_format_elements(np.asarray(value), dt))


def format_column(values: np.ndarray, valid: np.ndarray, dt: DataType) -> list[str]:
    """Per-row text of a column (``""`` where invalid)."""
    ok = np.asarray(valid, dtype=bool).tolist()
    if not dt.is_fixed_width or np.asarray(values).dtype == object:
        return [format_value(v, dt) if good else "" for v, good in zip(values, ok, strict=True)]
    arr = np.asarray(values)
    flat = _format_elements(arr, dt)
    dim = arr.shape[1] if dt.is_vector else 1
    rows = [",".join(flat[i * dim : (i + 1) * dim]) for i in range(len(ok))] if dim != 1 else flat
    return [r if good else "" for r, good in zip(rows, ok, strict=True)]


def text_to_bytes(text: str, dt: DataType) -> bytes:
    """Parse text (see :func:`parse_text`) and encode it as one byte cell."""
    value = parse_text(text, dt)
    if dt is DataType.STRING:
        return _str_bytes(value)
    if dt is DataType.STRING_VECTOR:
        return encode_string_vector(value)  # type: ignore[arg-type]
    return encode_array(np.asarray(value), dt)


def bytes_to_text(cell: bytes, dt: DataType) -> str:
    """Decode one byte cell (exact size check) and format it with :func:`format_value`."""
    if dt is DataType.STRING:
        return cell.decode("utf-8", "surrogateescape")
    if dt is DataType.STRING_VECTOR:
        return format_value(decode_string_vector(cell), dt)
    if not dt.is_vector and len(cell) != dt.itemsize:
        raise DataTypeError(f"{dt.wire_name} cell must be {dt.itemsize} bytes, got {len(cell)}")
    return format_value(decode_array(cell, dt), dt)


def cast_array(values: np.ndarray, src: DataType, dst: DataType) -> np.ndarray:
    """Element-wise conversion between data types (Go-like casts; see module and ``_to_numeric`` docs).

    float -> int truncates toward zero, NaN and out-of-range values become 0; int -> int wraps; -> BOOL is
    ``!= 0``; STRING -> X parses each text with :func:`parse_text` (DataTypeError on failure); X -> STRING
    formats with :func:`format_value` (a vector row becomes one ``,``-joined text; a list for STRING_VECTOR).
    """
    if src == dst:
        return values
    if DataType.UNKNOWN in (src.scalar, dst.scalar):
        raise DataTypeError(f"cannot cast {src.wire_name} to {dst.wire_name}")
    arr = np.asarray(values)
    if dst.scalar is DataType.STRING:
        rows: list[object] = list(arr) if src.is_vector else list(arr.ravel())
        if dst is DataType.STRING:
            texts: list[object] = [format_value(v, src) for v in rows]
        elif src is DataType.STRING:
            texts = [parse_text(format_value(v, src), dst) for v in rows]
        else:
            texts = [_format_elements(np.asarray(v), src) for v in rows]
        out = _objects(texts)
        return out if src.is_vector else out.reshape(arr.shape)
    if src.scalar is DataType.STRING:
        parsed: list[Any]
        if src.is_vector:
            parsed = [np.array([parse_text(t, dst.scalar) for t in row], dst.numpy_dtype) for row in arr]
        else:
            parsed = [parse_text(_str_bytes(t).decode("utf-8", "surrogateescape"), dst) for t in arr.ravel()]
        if dst.is_vector:
            if len({np.shape(p) for p in parsed}) > 1:
                raise DataTypeError(f"cannot cast ragged {src.wire_name} rows to {dst.wire_name}")
            return np.stack(parsed) if parsed else np.zeros((0, 0), dtype=dst.numpy_dtype)  # type: ignore[arg-type]
        result = np.array(parsed, dtype=dst.numpy_dtype)
        return result.reshape(arr.shape) if not src.is_vector else result
    return _to_numeric(arr, dst)
