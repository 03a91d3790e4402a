"""The schema and the reads of a matrix: :class:`ColumnTable` declares and looks up columns and reads them
converted to a type, with the request-text fallback (see the package docstring)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from ..dtypes import DataType, DataTypeError, array_to_cells, cast_array, format_column, parse_text_column
from .columns import Column, ColumnBlock, empty_values

__all__ = ["ColumnTable"]


class ColumnTable:
    """``rows`` rows and named typed columns: declaration, look-up and reads (writes: ComponentMatrix)."""

    def __init__(self, rows: int) -> None:
        if rows < 0:
            raise ValueError("rows must be >= 0")
        self.rows = rows
        self._cols: dict[str, Column] = {}

    # -- schema -------------------------------------------------------------------------------
    def declare(self, name: str, dtype: DataType) -> Column:
        """Create column ``name`` of ``dtype`` (all missing), or return it if it exists.

        A column that so far holds only request text takes the declared type (the text stays as
        fallback). Redeclaring a typed column with another type is an error.
        """
        col = self._cols.get(name)
        if col is None:
            col = Column(name, dtype, self.rows)
            self._cols[name] = col
            return col
        if col.dtype is not dtype:
            if col.values is None or (col.dtype is DataType.STRING and col.text is not None):
                col.dtype, col.values, col.valid = dtype, None, np.zeros(self.rows, dtype=bool)
            else:
                raise DataTypeError(
                    f"column {name!r} is {col.dtype.wire_name}, cannot redeclare as {dtype.wire_name}"
                )
        return col

    def declare_missing(self, decls: Sequence[tuple[str, DataType]]) -> list[int]:
        """Create every column of ``decls`` (name, type) that does not exist yet (all missing); returns
        the positions in ``decls`` of those that exist, for :meth:`declare` to check their type."""
        cols, rows = self._cols, self.rows
        existing: list[int] = []
        for i, (name, dtype) in enumerate(decls):
            if name in cols:
                existing.append(i)
            else:
                cols[name] = Column(name, dtype, rows)
        return existing

    def has(self, name: str) -> bool:
        return name in self._cols

    def column(self, name: str) -> Column:
        try:
            return self._cols[name]
        except KeyError:
            raise KeyError(f"matrix has no column {name!r}") from None

    def __iter__(self) -> Iterator[Column]:
        return iter(self._cols.values())

    @property
    def names(self) -> list[str]:
        return list(self._cols)

    # -- reads --------------------------------------------------------------------------------
    def read(self, name: str, dtype: DataType | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(values, valid)`` of column ``name`` converted to ``dtype`` (default: its own type).

        Missing typed cells fall back to the request text where one was sent. Cells that cannot be
        converted are returned invalid. A column that does not exist raises KeyError.
        """
        col = self.column(name)
        want = dtype or col.dtype
        if want is DataType.STRING and col.dtype is not DataType.STRING:
            return self._read_as_text(col)
        values, valid = self._own_values(col)
        if want is not col.dtype:
            if col.values is None and col.text is not None:
                values, valid = parse_text_column(list(col.text), want)
                return values, valid
            try:
                values = cast_array(values, col.dtype, want)
            except DataTypeError:
                values, valid = parse_text_column(format_column(values, valid, col.dtype), want)
        return values, valid

    def read_filled(self, name: str, dtype: DataType | None = None) -> np.ndarray:
        """Like :meth:`read` with missing cells set to the type's default (go-compatibility §4.5: zeros)."""
        values, valid = self.read(name, dtype)
        if valid.all():
            return values
        out = values.copy()
        if out.dtype == object:
            out[~valid] = "" if (dtype or self.column(name).dtype) is DataType.STRING else None
        else:
            out[~valid] = 0
        return out

    def read_many(self, names: Sequence[str], dtype: DataType | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(values (rows, k), valid (rows, k))`` of scalar columns ``names`` as ``dtype`` (default: the
        first column's type), with the semantics of :meth:`read` for each column.

        Zero-copy when ``names`` are consecutive columns of one :class:`ColumnBlock` of type ``dtype``
        and no request-text fallback applies (no block column has text, or every cell is present): the
        result is then a view of the block — treat it as read-only. Consecutive block columns of another
        fixed-width type are converted with one cast; otherwise columns are read one by one and stacked.
        """
        key = names if isinstance(names, tuple) else tuple(names)
        cols = self._cols
        k = len(key)
        if not k:
            want = dtype or DataType.FP32
            empty = np.zeros((self.rows, 0), dtype=want.numpy_dtype if want.is_fixed_width else object)
            return empty, np.zeros((self.rows, 0), dtype=bool)
        first = cols.get(key[0])
        if first is None:
            raise KeyError(f"matrix has no column {key[0]!r}")
        want = dtype or first.dtype
        got = self._from_block(first, key, want)
        if got is not None:
            return got
        pieces: list[tuple[np.ndarray, np.ndarray]] = []  # names spanning blocks: one piece per block
        i = start = 0
        while i < k:
            col = self._cols.get(key[i])
            block = None if col is None else col.block
            got = None
            if col is not None and block is not None:
                span = key[i : i + len(block.names) - col._j]
                got = self._from_block(col, span, want)
            if got is None:
                i += 1
                continue
            if start < i:
                pieces.append(self._stack(key[start:i], want))
            pieces.append(got)
            i = start = i + len(span)
        if not pieces:
            return self._stack(key, want)
        if start < k:
            pieces.append(self._stack(key[start:], want))
        return np.concatenate([v for v, _ in pieces], axis=1), np.concatenate(
            [ok for _, ok in pieces], axis=1
        )

    def read_blocks(
        self, names: Sequence[str], dtype: DataType | None = None, filled: bool = False
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """:meth:`read_many` of ``names`` when every name is a column of a :class:`ColumnBlock` read
        without the request-text fallback (runs written by ``set_block``): each block's view, joined
        with one ``concatenate`` when there are several; None as soon as one name is not, with no
        per-column work (the caller then reads as it would otherwise). ``filled``: missing cells set
        to 0 as :meth:`read_filled_many` does (then the values are a copy when any cell is missing)."""
        key = names if isinstance(names, tuple) else tuple(names)
        k = len(key)
        cols = self._cols
        first = cols.get(key[0]) if k else None
        if first is None:
            return None
        want = dtype or first.dtype
        pieces: list[tuple[np.ndarray, np.ndarray]] = []
        i = 0
        while i < k:
            col = cols.get(key[i])
            block = None if col is None else col.block
            if col is None or block is None:
                return None
            span = key[i : i + len(block.names) - col._j]
            got = self._from_block(col, span, want)
            if got is None:
                return None
            pieces.append(got)
            i += len(span)
        if len(pieces) == 1:
            values, valid = pieces[0]
        else:
            values = np.concatenate([v for v, _ in pieces], axis=1)
            valid = np.concatenate([ok for _, ok in pieces], axis=1)
        if filled and not valid.all():
            values = values.copy()
            values[~valid] = 0
        return values, valid

    def _from_block(
        self, first: Column, key: tuple[str, ...], want: DataType
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """``key`` read from ``first``'s block when it names consecutive attached block columns and no
        request-text fallback applies: a view (or one cast); None otherwise."""
        block = first.block
        if block is None:
            return None
        j0, k = first._j, len(key)
        if block.names[j0 : j0 + k] != key or (block.detached and not self._attached(block, key, j0)):
            return None
        valid = block.valid[:, j0 : j0 + k]
        if block.has_text and not valid.all():
            return None
        values = block.values[:, j0 : j0 + k]
        if want is block.dtype:
            return values, valid
        if want.is_fixed_width and not want.is_vector:
            return cast_array(values, block.dtype, want), valid
        return None

    def _attached(self, block: ColumnBlock, key: tuple[str, ...], j0: int) -> bool:
        cols = self._cols
        return all(cols[n].block is block and cols[n]._j == j0 + i for i, n in enumerate(key))

    def _stack(self, key: tuple[str, ...], want: DataType) -> tuple[np.ndarray, np.ndarray]:
        """Column by column: a column already of type ``want`` with nothing to take from request text is
        used as is, others go through :meth:`read`; stacked feature-major (contiguous copies), returned
        transposed to ``(rows, k)``."""
        values_list, valid_list = [], []
        for name in key:
            col = self.column(name)
            values, valid = col.values, col.valid
            if values is None or col.dtype is not want or (col.text is not None and not valid.all()):
                values, valid = self.read(name, want)
            if values.ndim != 1:
                raise DataTypeError(f"read_many: column {name!r} is not a scalar column")
            values_list.append(values)
            valid_list.append(valid)
        return np.vstack(values_list).T, np.vstack(valid_list).T

    def read_filled_many(self, names: Sequence[str], dtype: DataType | None = None) -> np.ndarray:
        """Like :meth:`read_many` with missing cells set to the type's default (go-compatibility §4.5: zeros,
        "" for STRING). A view of the block when every cell is present — treat it as read-only."""
        values, valid = self.read_many(names, dtype)
        if valid.all():
            return values
        out = values.copy()
        if out.dtype == object:
            want = dtype or self.column(names[0]).dtype
            out[~valid] = "" if want is DataType.STRING else None
        else:
            out[~valid] = 0
        return out

    def _own_values(self, col: Column) -> tuple[np.ndarray, np.ndarray]:
        if col.values is None:
            if col.text is not None:
                col_values, col_valid = parse_text_column(list(col.text), col.dtype)
                return col_values, col_valid
            return empty_values(col.dtype, self.rows), np.zeros(self.rows, dtype=bool)
        if col.text is None or col.valid.all() or col.dtype is DataType.STRING:
            return col.values, col.valid
        # fallback: parse request text for the missing cells only
        missing = np.flatnonzero(~col.valid)
        texts = col.text[missing]
        has = texts != ""
        if not has.any():
            return col.values, col.valid
        parsed, ok = parse_text_column(list(texts[has]), col.dtype)
        values, valid = col.values.copy(), col.valid.copy()
        target = missing[has]
        if parsed.ndim == 2 and values.ndim == 2 and parsed.shape[1] != values.shape[1]:
            return col.values, col.valid
        values[target[ok]] = parsed[ok]
        valid[target[ok]] = True
        return values, valid

    def _read_as_text(self, col: Column) -> tuple[np.ndarray, np.ndarray]:
        values, valid = self._own_values(col)
        texts = format_column(values, valid, col.dtype)
        out = np.empty(self.rows, dtype=object)
        out[:] = texts
        if col.text is not None:
            fill = (~valid) & (col.text != "")
            out[fill] = col.text[fill]
            valid = valid | fill
        return out, valid

    def cells(self, name: str, dtype: DataType | None = None) -> list[bytes]:
        """Per-row wire bytes of column ``name`` as ``dtype`` (little-endian; b"" where missing)."""
        want = dtype or self.column(name).dtype
        values, valid = self.read(name, want)
        return array_to_cells(values, valid, want)

    def texts(self, name: str) -> list[str]:
        """Per-row text form of column ``name`` ("" where missing)."""
        values, valid = self.read(name, DataType.STRING)
        return [v if ok else "" for v, ok in zip(values.tolist(), valid.tolist(), strict=True)]
