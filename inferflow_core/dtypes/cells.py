"""Binary cells: values <-> little-endian bytes (docs/go-compatibility.md §4.4).

Fixed-width scalars are one element, fixed-width vectors are the elements concatenated (length implied),
BOOL is one 0/1 byte per element (any non-zero byte decodes as true), STRING is raw UTF-8, STRING_VECTOR
is ``k`` uint16-LE lengths followed by the ``k`` strings.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Sequence

import numpy as np

from .datatype import DataType, DataTypeError
from .numeric import _to_numeric

__all__ = [
    "array_to_cells", "cells_to_array", "decode_array", "decode_string_vector", "encode_array",
    "encode_string_vector",
]  # fmt: skip


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


def most_common(lengths: np.ndarray) -> int:
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
        width = most_common(usable) if usable.size else 0
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
