"""Conversions between forms: text <-> one byte cell, and element-wise casts between data types."""

from __future__ import annotations

from typing import Any

import numpy as np

from .cells import (
    _objects,
    _str_bytes,
    decode_array,
    decode_string_vector,
    encode_array,
    encode_string_vector,
)
from .datatype import DataType, DataTypeError
from .formatting import _format_elements, format_value
from .numeric import _to_numeric
from .parse import parse_text

__all__ = ["bytes_to_text", "cast_array", "text_to_bytes"]


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
            return np.stack(parsed) if parsed else np.zeros((0, 0), dtype=dst.numpy_dtype)
        result = np.array(parsed, dtype=dst.numpy_dtype)
        return result.reshape(arr.shape) if not src.is_vector else result
    return _to_numeric(arr, dst)
