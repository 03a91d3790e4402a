"""Text -> values: Go's ParseInt/ParseUint/ParseFloat/ParseBool rules, one value or a whole column.

Vectors are parsed with ``:`` between elements. FP16/FP8 text is parsed at float32 precision, then rounded
with the encoders of :mod:`.numeric`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

import numpy as np

from .cells import _objects, most_common
from .datatype import _FLOATS, _INT_RANGE, DataType, DataTypeError
from .numeric import _to_numeric

__all__ = ["parse_text", "parse_text_column"]


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
        dim = most_common(counts[counts > 0])
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
