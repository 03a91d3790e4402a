"""Per-request input budgets (issue 19): checked before anything proportional to a count is allocated.

A request over a budget is INVALID_ARGUMENT naming the limit (its env name) and the value sent. Vector
columns are dense ``(rows, dim)`` arrays, so a column costs ``rows x dim`` elements even where a row sent
nothing: that product is what :meth:`Budget.vector_column` charges, before the array exists.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..dtypes import DataType
from ..dtypes.cells import most_common
from ..errors import RequestError


class Budget:
    """The limits of one request and the decoded cells it has used so far."""

    __slots__ = ("cells", "limits")

    def __init__(self, limits: object) -> None:
        self.limits = limits
        self.cells = 0

    def check(self, what: str, value: int, limit_name: str) -> None:
        limit = int(getattr(self.limits, limit_name))
        if value > limit:
            env = f"INFERFLOW_{limit_name.upper()}"
            raise RequestError(f"{what}: {value} exceeds the limit of {limit} ({env})")

    def charge(self, what: str, cells: int) -> None:
        self.cells += cells
        self.check(f"{what}: decoded cells", self.cells, "max_decoded_cells")

    def vector_column(self, what: str, counts: np.ndarray) -> None:
        """Charge a vector column whose rows hold ``counts`` elements (0 = nothing sent)."""
        sent = counts[counts > 0]
        if not sent.size:
            return
        self.check(f"{what}: vector elements in one cell", int(sent.max()), "max_vector_elements")
        self.charge(what, len(counts) * most_common(sent))


def text_counts(texts: Sequence[str]) -> np.ndarray:
    """Elements per text cell of a vector column (``a:b:c``), without splitting."""
    return np.fromiter((t.count(":") + 1 if t else 0 for t in texts), dtype=np.int64, count=len(texts))


def binary_counts(cells: Sequence[bytes], dtype: DataType) -> np.ndarray:
    """Elements per little-endian cell of a fixed-width vector column (a bad length counts as sent)."""
    size = dtype.itemsize
    lens = np.fromiter(map(len, cells), dtype=np.int64, count=len(cells))
    return np.where(lens % size == 0, lens // size, 0)


def no_budget() -> Budget:
    """A budget that never runs out (library use of the adapters, tests)."""
    return Budget(_Unlimited())


class _Unlimited:
    def __getattr__(self, name: str) -> int:
        return 1 << 62
