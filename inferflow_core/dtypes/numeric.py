"""Go-like element conversion between the numpy dtypes of the data types.

FP16/FP8 values are always produced from float32 (casts go via float32), then rounded to nearest-even.
FP8E4M3 ("fn", no infinities) overflow (|x| >= 480, also +-Inf/NaN) -> NaN 0x7F with the sign kept;
FP8E5M2 overflow -> +-Inf (0x7C), NaN -> 0x7F (sign kept) — the PyTorch/c10 rules.
"""

from __future__ import annotations

import numpy as np

from .datatype import _INT_RANGE, _NUMPY, _S, DataType


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
