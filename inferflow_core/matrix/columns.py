"""Column storage: one named, typed column (:class:`Column`), several same-type scalar columns stored as
one array (:class:`ColumnBlock`), and the all-default value array of a type (:func:`empty_values`)."""

from __future__ import annotations

import numpy as np

from ..dtypes import DataType

__all__ = ["Column", "ColumnBlock", "attach_all", "empty_values"]


def empty_values(dtype: DataType, rows: int, dim: int = 0) -> np.ndarray:
    """An all-default value array for ``rows`` rows of ``dtype`` (zeros, or empty strings)."""
    if not dtype.is_fixed_width:
        out = np.empty(rows, dtype=object)
        out[:] = "" if dtype is DataType.STRING else None
        if dtype is DataType.STRING_VECTOR:
            for i in range(rows):
                out[i] = []
        return out
    if dtype.is_vector:
        return np.zeros((rows, dim), dtype=dtype.numpy_dtype)
    return np.zeros(rows, dtype=dtype.numpy_dtype)


class ColumnBlock:
    """Several same-type scalar columns stored as one ``(rows, k)`` array (written by ``set_block``).

    ``values``/``valid`` are the caller's arrays (often views of a component's buffers): the matrix never
    writes into them. ``names[j]`` is the column stored at ``[:, j]``; ``detached`` counts columns that
    have since been written on their own (they do not read from the block); ``has_text`` is set when a
    block column holds request text, so a block read must look at the text fallback.
    """

    __slots__ = ("detached", "dtype", "has_text", "names", "valid", "values")

    def __init__(
        self, dtype: DataType, values: np.ndarray, valid: np.ndarray, names: tuple[str, ...]
    ) -> None:
        self.dtype, self.values, self.valid, self.names = dtype, values, valid, names
        self.detached = 0
        self.has_text = False


class Column:
    """One named, typed column. ``values`` is None until the first typed write.

    A column written by :meth:`ComponentMatrix.set_block` is *attached* to a :class:`ColumnBlock`: its
    ``values``/``valid`` are views ``block.values[:, j]``/``block.valid[:, j]``, made on first access.
    Assigning ``values`` or ``valid`` detaches it (copy-on-write): it gets its own copies first, so the
    block and the other columns of the block are never changed by a per-column write.
    """

    __slots__ = ("_block", "_j", "_text", "_valid", "_values", "dtype", "name", "rows")

    def __init__(
        self,
        name: str,
        dtype: DataType,
        rows: int,
        values: np.ndarray | None = None,
        valid: np.ndarray | None = None,
        text: np.ndarray | None = None,
    ) -> None:
        self.name, self.dtype, self.rows = name, dtype, rows
        self._values = values
        # None = all missing until first read (most declared columns are written whole before any read,
        # so the feature initializer's ~100 declarations per request allocate nothing)
        self._valid: np.ndarray | None = valid
        self._text = text  # object array of str, "" = absent
        self._block: ColumnBlock | None = None
        self._j = 0

    def __repr__(self) -> str:
        where = f", block[:, {self._j}]" if self._block is not None else ""
        return f"Column({self.name!r}, {self.dtype.wire_name}, rows={self.rows}{where})"

    @property
    def values(self) -> np.ndarray | None:
        values = self._values
        if values is None and self._block is not None:
            values = self._values = self._block.values[:, self._j]
        return values

    @values.setter
    def values(self, values: np.ndarray | None) -> None:
        self.detach()
        self._values = values

    @property
    def valid(self) -> np.ndarray:
        valid = self._valid
        if valid is None:
            block = self._block
            valid = self._valid = (
                np.zeros(self.rows, dtype=bool) if block is None else block.valid[:, self._j]
            )
        return valid

    @valid.setter
    def valid(self, valid: np.ndarray) -> None:
        self.detach()
        self._valid = valid

    @property
    def text(self) -> np.ndarray | None:
        return self._text

    @text.setter
    def text(self, text: np.ndarray | None) -> None:
        if text is not None and self._block is not None:
            self._block.has_text = True
        self._text = text

    @property
    def block(self) -> ColumnBlock | None:
        """The block this column reads from (None when it owns its arrays)."""
        return self._block

    def attach(self, block: ColumnBlock, j: int) -> None:
        """Make this column ``block[:, j]`` (views are made lazily)."""
        if self._block is not None:
            self._block.detached += 1
        self._block, self._j = block, j
        self._values = self._valid = None
        if self._text is not None:
            block.has_text = True

    def replace(self, values: np.ndarray | None, valid: np.ndarray) -> None:
        """Own new ``values`` and ``valid`` (leaving a block without copying what is replaced)."""
        if self._block is not None:
            self._block.detached += 1
            self._block = None
        self._values, self._valid = values, valid

    def detach(self) -> None:
        """Leave the block, keeping private copies of this column's cells."""
        block = self._block
        if block is None:
            return
        self._values = block.values[:, self._j].copy()
        self._valid = block.valid[:, self._j].copy()
        self._block = None
        block.detached += 1

    @property
    def dim(self) -> int:
        """Vector length of a fixed-width vector column (0 when scalar or not yet written)."""
        values = self.values
        if values is None or values.ndim < 2:
            return 0
        return int(values.shape[1])

    def has_text(self) -> bool:
        return self._text is not None


def attach_all(cols: list[Column], block: ColumnBlock) -> None:
    """``cols[j].attach(block, j)`` for every column; a column in no block and holding no request text
    (the usual case: just declared) is attached without the method call."""
    for j, col in enumerate(cols):
        if col._block is None and col._text is None:
            col._block, col._j = block, j
            col._values = col._valid = None
        else:
            col.attach(block, j)
