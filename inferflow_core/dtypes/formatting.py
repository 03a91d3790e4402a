"""Values -> text: Go ``%v`` (shortest round-trip floats), vector elements joined with ``,``."""

from __future__ import annotations

import numpy as np

from .datatype import _INT_RANGE, DataType, DataTypeError
from .numeric import _to_numeric

__all__ = ["format_column", "format_value"]


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
