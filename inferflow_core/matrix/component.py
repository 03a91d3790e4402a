"""ComponentMatrix: the table a request's components read and write (the writes and sub-matrices)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from operator import attrgetter

import numpy as np

from ..dtypes import DataType, DataTypeError
from .columns import Column, ColumnBlock, attach_all, empty_values
from .table import ColumnTable

__all__ = ["ComponentMatrix"]

_DTYPE = attrgetter("dtype")

# set_block's checks that depend only on (names, type): distinct names of one fixed-width scalar type
# -> the type's numpy dtype, else False. Names come from configs; the cap bounds odd callers.
_BLOCK_PLANS: dict[tuple[tuple[str, ...], DataType], np.dtype | bool] = {}
_BLOCK_PLANS_MAX = 4096


def _block_plan(key: tuple[str, ...], dtype: DataType) -> np.dtype | bool:
    plan = (
        dtype.numpy_dtype
        if len(set(key)) == len(key) and dtype.is_fixed_width and not dtype.is_vector
        else False
    )
    if len(_BLOCK_PLANS) < _BLOCK_PLANS_MAX:
        _BLOCK_PLANS[(key, dtype)] = plan
    return plan


class ComponentMatrix(ColumnTable):
    """A table of ``rows`` rows and named typed columns. See the package docstring."""

    # -- writes -------------------------------------------------------------------------------
    def set_text(self, name: str, texts: Sequence[str] | np.ndarray | str) -> None:
        """Store request text for ``name`` (a sequence per row, or one string broadcast)."""
        col = self.column(name) if name in self._cols else self.declare(name, DataType.STRING)
        arr = np.empty(self.rows, dtype=object)
        if isinstance(texts, str):
            arr[:] = texts
            present = np.full(self.rows, texts != "")
        else:
            if len(texts) != self.rows:
                raise ValueError(f"column {name!r}: {len(texts)} texts for {self.rows} rows")
            arr[:] = list(texts) if not isinstance(texts, np.ndarray) else texts
            present = None
        col.text = arr
        if col.dtype is DataType.STRING:
            col.values = arr
            col.valid = arr != "" if present is None else present

    def set_column(self, name: str, values: np.ndarray, valid: np.ndarray | None = None) -> None:
        """Replace the whole typed column. ``valid`` defaults to all present."""
        col = self.column(name)
        values = self._coerce(col, values)
        if len(values) != self.rows:
            raise ValueError(f"column {name!r}: {len(values)} values for {self.rows} rows")
        col.replace(
            values, np.ones(self.rows, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
        )

    def set_block(
        self, names: Sequence[str], values: np.ndarray, valid: np.ndarray | None = None
    ) -> ColumnBlock:
        """Replace several declared scalar columns of one fixed-width type at once.

        ``values`` is ``(rows, len(names))``: column ``names[j]`` becomes ``values[:, j]`` (a view, no
        copy; converted once when ``values`` has another element type). ``valid`` is ``(rows, k)``, or
        ``(rows,)`` for one mask shared by every column, or None (all present). The arrays are kept, not
        copied, and never written by the matrix: a later per-column write (``set_column``, ``set_rows``,
        ``broadcast``, assigning ``Column.values``) detaches that column with its own copy
        (copy-on-write), the other columns keep reading the block. See :meth:`read_many`.
        """
        key = names if isinstance(names, tuple) else tuple(names)
        k = len(key)
        cols = self._cols
        got = list(map(cols.get, key))
        first = got[0] if k else None
        # the usual case: every column declared by declare_missing and not touched since (all the same
        # stand-in type): the block goes in as their stand-in, no Column made
        if isinstance(first, DataType) and got.count(first) == k:
            np_dtype = _BLOCK_PLANS.get((key, first))
            if np_dtype is None:
                np_dtype = _block_plan(key, first)
            if np_dtype is not False:
                rows = self.rows
                if (  # arrays as the plan needs them (the usual case): kept as they are
                    type(values) is np.ndarray
                    and type(valid) is np.ndarray
                    and values.dtype == np_dtype
                    and valid.dtype == np.bool_
                    and values.shape == (rows, k)
                    and valid.shape == (rows, k)
                ):
                    block = ColumnBlock(first, values, valid, key)
                else:
                    block = ColumnBlock(first, *self._block_arrays(key, first, values, valid), key)
                cols.update(zip(key, repeat(block)))  # every name is in cols: values replaced in place
                return block
        columns = [self.column(n) for n in key]  # raises, naming a missing column
        if len(set(key)) != k:
            raise ValueError(f"set_block: repeated column names in {list(key)}")
        dtype = columns[0].dtype if columns else DataType.UNKNOWN
        if not dtype.is_fixed_width or dtype.is_vector or set(map(_DTYPE, columns)) != {dtype}:
            kinds = sorted({c.dtype.wire_name for c in columns})
            raise DataTypeError(
                f"set_block: columns {list(key)} must share one fixed-width scalar type: {kinds}"
            )
        values, valid2 = self._block_arrays(key, dtype, values, valid)
        block = ColumnBlock(dtype, values, valid2, key)
        attach_all(columns, block)
        return block

    def _block_arrays(
        self, key: tuple[str, ...], dtype: DataType, values: np.ndarray, valid: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``set_block``'s ``values`` as ``dtype`` and ``valid`` as ``(rows, k)``, shapes checked."""
        k = len(key)
        values = np.asarray(values)
        if values.dtype != dtype.numpy_dtype:
            values = values.astype(dtype.numpy_dtype)
        if values.shape != (self.rows, k):
            raise ValueError(f"set_block {list(key)}: values {values.shape}, need {(self.rows, k)}")
        if valid is None:
            valid2 = np.ones((self.rows, k), dtype=bool)
        else:
            valid2 = np.asarray(valid, dtype=bool)
            if valid2.ndim == 1 and len(valid2) == self.rows:
                valid2 = np.repeat(valid2[:, None], k, axis=1)
            elif valid2.shape != (self.rows, k):
                raise ValueError(f"set_block {list(key)}: valid {valid2.shape}, need {(self.rows, k)}")
        return values, valid2

    def set_rows(
        self, name: str, rows: np.ndarray | Sequence[int], values: np.ndarray, valid: np.ndarray | None = None
    ) -> None:
        """Write ``values`` into the given row positions of column ``name``."""
        col = self.column(name)
        values = self._coerce(col, values)
        idx = np.asarray(rows, dtype=np.intp)
        col.detach()  # copy-on-write: never write into a block (or the other columns sharing it)
        if col.values is None:
            dim = values.shape[1] if values.ndim == 2 else 0
            col.values = empty_values(col.dtype, self.rows, dim)
        elif col.values.ndim == 2 and values.ndim == 2 and values.shape[1] != col.values.shape[1]:
            raise DataTypeError(
                f"column {name!r} holds vectors of {col.values.shape[1]}, got {values.shape[1]}"
            )
        col.values[idx] = values
        col.valid[idx] = True if valid is None else np.asarray(valid, dtype=bool)

    def broadcast(self, name: str, value: np.ndarray | object) -> None:
        """Write one value into every row of ``name``."""
        col = self.column(name)
        one = self._coerce(col, np.asarray([value], dtype=object if not col.dtype.is_fixed_width else None))
        self.set_column(name, np.repeat(one, self.rows, axis=0))

    @staticmethod
    def _coerce(col: Column, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values) if not isinstance(values, np.ndarray) else values
        if col.dtype.is_fixed_width:
            want = col.dtype.numpy_dtype
            if values.dtype != want:
                values = values.astype(want)
            if col.dtype.is_vector and values.ndim != 2:
                raise DataTypeError(f"column {col.name!r} is a vector column: expected a 2-D array")
        elif values.dtype != object:
            values = values.astype(object)
        return values

    # -- sub-matrices -------------------------------------------------------------------------
    def take(self, rows: np.ndarray | Sequence[int]) -> ComponentMatrix:
        """A copy holding only ``rows`` (in that order); used to run a component on one slate."""
        idx = np.asarray(rows, dtype=np.intp)
        sub = ComponentMatrix(len(idx))
        blocks: dict[int, ColumnBlock] = {}  # one gather per block; its columns stay a block
        for name, got in self._cols.items():
            if isinstance(got, DataType):  # declared, untouched: the same stand-in
                sub._cols[name] = got
                continue
            if isinstance(got, ColumnBlock):  # a block's stand-in: the taken block's
                taken = self._taken(blocks, got, idx)
                taken.detached -= 1
                sub._cols[name] = taken
                continue
            col = got
            text = None if col.text is None else col.text[idx]
            new = Column(col.name, col.dtype, len(idx), text=text)
            block = col.block
            if block is not None:
                taken = self._taken(blocks, block, idx)
                taken.detached -= 1
                new.attach(taken, col._j)
            else:
                values = col.values
                new.replace(None if values is None else values[idx], col.valid[idx])
            sub._cols[name] = new
        return sub

    @staticmethod
    def _taken(blocks: dict[int, ColumnBlock], block: ColumnBlock, idx: np.ndarray) -> ColumnBlock:
        taken = blocks.get(id(block))
        if taken is None:
            taken = ColumnBlock(block.dtype, block.values[idx], block.valid[idx], block.names)
            taken.detached = len(block.names)  # counted down as columns attach
            blocks[id(block)] = taken
        return taken
