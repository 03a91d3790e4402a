"""Column-wise functions of the Numerix language (go-compatibility §5.4), written with numpy.

Each function takes and returns 1-D arrays of the evaluation dtype (float32 or float64). The column
normalisations look at the whole column (all rows of one call), so results depend on the batch: this is
why slates are evaluated one call per slate. Definitions (``n`` = number of rows):

* ``norm_min_max(x)`` = ``(x - min(x)) / (max(x) - min(x))``; all zeros when ``max == min``.
* ``percentile_rank(x)`` = ``r / (n - 1)`` where ``r`` is the 0-based rank of ``x[i]`` in ascending
  order, ties sharing the average of their ranks; ``0`` when ``n == 1``. Result in ``[0, 1]``.
* ``norm_percentile_<a>_<b>(x)``: ``lo``/``hi`` = the ``a``-th / ``b``-th percentiles of the column
  (numpy's default linear interpolation; the 0th percentile is the minimum), then
  ``(clip(x, lo, hi) - lo) / (hi - lo)``; all zeros when ``hi == lo``. Result in ``[0, 1]``.

NaN inputs propagate (min/max/percentiles become NaN) rather than being silently dropped.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["BINARY_OPS", "UNARY_OPS"]


def _scaled(x: np.ndarray, lo: np.ndarray | float, hi: np.ndarray | float) -> np.ndarray:
    span = hi - lo
    if span == 0:
        return np.zeros_like(x)
    return ((np.clip(x, lo, hi) - lo) / span).astype(x.dtype, copy=False)


def norm_min_max(x: np.ndarray) -> np.ndarray:
    if x.size == 0:
        return x.copy()
    return _scaled(x, x.min(), x.max())


def percentile_rank(x: np.ndarray) -> np.ndarray:
    n = x.size
    if n <= 1:
        return np.zeros_like(x)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts
    average = first + (counts - 1) / 2.0
    return (average[inverse.reshape(-1)] / (n - 1)).astype(x.dtype)


def _norm_percentile(low: float, high: float) -> Callable[[np.ndarray], np.ndarray]:
    def norm(x: np.ndarray) -> np.ndarray:
        if x.size == 0:
            return x.copy()
        lo, hi = np.percentile(x, [low, high]).astype(x.dtype)
        return _scaled(x, lo, hi)

    norm.__name__ = f"norm_percentile_{low:g}_{high:g}"
    return norm


class OpError(ValueError):
    """A value-level rule was broken (division by zero, log of a non-positive value ...)."""


def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if (b == 0).any():
        raise OpError("division by zero")
    return a / b


def _log(x: np.ndarray) -> np.ndarray:
    if not (x > 0).all():  # also rejects NaN
        raise OpError("log of a non-positive value")
    return np.log(x)


def _boolean(op: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[..., np.ndarray]:
    def apply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        for side in (a, b):
            if not np.all((side == 0) | (side == 1)):
                raise OpError("operands must be 0 or 1")
        return op(a != 0, b != 0)

    return apply


def _compare(op: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[..., np.ndarray]:
    return lambda a, b: op(a, b)  # bool result; the evaluator casts to the evaluation dtype


BINARY_OPS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": _divide,
    "^": np.power,
    ">": _compare(np.greater),
    "<": _compare(np.less),
    ">=": _compare(np.greater_equal),
    "<=": _compare(np.less_equal),
    "==": _compare(np.equal),
    "min": np.minimum,
    "max": np.maximum,
    "&": _boolean(np.logical_and),
    "|": _boolean(np.logical_or),
}

# Unary ops; the column normalisations need the full column (never a broadcast scalar).
UNARY_OPS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "exp": np.exp,
    "log": _log,
    "abs": np.abs,
    "norm_min_max": norm_min_max,
    "percentile_rank": percentile_rank,
    "norm_percentile_0_99": _norm_percentile(0.0, 99.0),
    "norm_percentile_5_95": _norm_percentile(5.0, 95.0),
}
COLUMN_OPS = frozenset({"norm_min_max", "percentile_rank", "norm_percentile_0_99", "norm_percentile_5_95"})
