"""The schema and the reads of a matrix: :class:`ColumnTable` declares and looks up columns and reads them
converted to a type, with the request-text fallback (see the package docstring)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from ..dtypes import DataType, DataTypeError, array_to_cells, cast_array, format_column, parse_text_column
from .columns import Column, ColumnBlock, empty_values

__all__ = ["ColumnTable"]


class ColumnTable:
    """``rows`` rows and named typed columns: declaration, look-up and reads (writes: ComponentMatrix).

    ``_cols`` maps each name, in declaration order, to its :class:`Column`, or to a stand-in until the
    column is asked for by name: its :class:`DataType` (declared by :meth:`declare_missing`, all missing,
    no text) or the :class:`ColumnBlock` it is a column of (written by ``set_block`` while it was such a
    declaration). :meth:`column` (and every write but ``set_block``'s) replaces a stand-in with the
    Column it stands for, in place; a request's ~100 declared columns mostly never are.
    """

    def __init__(self, rows: int) -> None:
        if rows < 0:
            raise ValueError("rows must be >= 0")
        self.rows = rows
        self._cols: dict[str, Column | DataType | ColumnBlock] = {}

    # -- schema -------------------------------------------------------------------------------
    def declare(self, name: str, dtype: DataType) -> Column:
        """Create column ``name`` of ``dtype`` (all missing), or return it if it exists.

        A column that so far holds only request text takes the declared type (the text stays as
        fallback). Redeclaring a typed column with another type is an error.
        """
        got = self._cols.get(name)
        if got is None:
            col = Column(name, dtype, self.rows)
            self._cols[name] = col
            return col
        col = got if isinstance(got, Column) else self._materialise(name, got)
        if col.dtype is not dtype:
            if col.values is None or (col.dtype is DataType.STRING and col.text is not None):
                col.dtype, col.values, col.valid = dtype, None, np.zeros(self.rows, dtype=bool)
            else:
                raise DataTypeError(
                    f"column {name!r} is {col.dtype.wire_name}, cannot redeclare as {dtype.wire_name}"
                )
        return col

    def declare_missing(self, decls: Mapping[str, DataType]) -> list[str]:
        """Declare every column of ``decls`` (name -> type) that does not exist yet (all missing, after
        the existing columns, in ``decls`` order); returns the names of those that exist, in ``decls``
        order, for :meth:`declare` to check their type. Dict operations only: no Column is made
        until one is asked for (see the class docstring)."""
        cols = self._cols
        existing = cols.keys() & decls.keys()
        if not existing:
            cols.update(decls)
            return []
        kept = {name: cols[name] for name in existing}
        cols.update(decls)
        cols.update(kept)
        return sorted(existing, key=list(decls).index)

    def has(self, name: str) -> bool:
        return name in self._cols

    def column(self, name: str) -> Column:
        got = self._cols.get(name)
        if isinstance(got, Column):
            return got
        if got is None:
            raise KeyError(f"matrix has no column {name!r}")
        return self._materialise(name, got)

    def _materialise(self, name: str, stand_in: DataType | ColumnBlock) -> Column:
        """Replace the stand-in of column ``name`` with its Column (see the class docstring)."""
        if isinstance(stand_in, ColumnBlock):
            col = Column(name, stand_in.dtype, self.rows)
            col._block, col._j = stand_in, stand_in.names.index(name)
        else:
            col = Column(name, stand_in, self.rows)
        self._cols[name] = col
        return col

    def _columns(self) -> dict[str, Column]:
        """``_cols`` with every stand-in replaced by its Column."""
        cols = self._cols
        for name, got in list(cols.items()):
            if not isinstance(got, Column):
                self._materialise(name, got)
        return cols  # type: ignore[return-value]  # no stand-in left

    def _place(self, name: str) -> tuple[ColumnBlock, int] | None:
        """The block column ``name`` reads from and its index there (None: no block, or no column)."""
        got = self._cols.get(name)
        if isinstance(got, ColumnBlock):
            return got, got.names.index(name)
        if isinstance(got, Column) and got._block is not None:
            return got._block, got._j
        return None

    def __iter__(self) -> Iterator[Column]:
        return iter(self._columns().values())

    @property
    def names(self) -> list[str]:
        return list(self._cols)

    # -- reads --------------------------------------------------------------------------------
    def read(self, name: str, dtype: DataType | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(values, valid)`` of column ``name`` converted to ``dtype`` (default: its own type).

        Missing typed cells fall back to the request text where one was sent. Cells that cannot be
        converted are returned invalid. A column that does not exist raises KeyError.
        """
        col = self._cols.get(name)
        if (  # its own arrays, no conversion, no text fallback to look at: returned as they are
            type(col) is Column
            and (dtype is None or dtype is col.dtype)
            and col._values is not None
            and col._valid is not None
            and (col._text is None or col.dtype is DataType.STRING)
        ):
            return col._values, col._valid
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
        k = len(key)
        if not k:
            want = dtype or DataType.FP32
            empty = np.zeros((self.rows, 0), dtype=want.numpy_dtype if want.is_fixed_width else object)
            return empty, np.zeros((self.rows, 0), dtype=bool)
        if key[0] not in self._cols:
            raise KeyError(f"matrix has no column {key[0]!r}")
        want = dtype or self._dtype(key[0])
        place = self._place(key[0])
        got = None if place is None else self._from_block(place[0], place[1], key, want)
        if got is not None:
            return got
        pieces: list[tuple[np.ndarray, np.ndarray]] = []  # names spanning blocks: one piece per block
        i = start = 0
        while i < k:
            place = self._place(key[i])
            got = None
            if place is not None:
                block, j = place
                span = key[i : i + len(block.names) - j]
                got = self._from_block(block, j, span, want)
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
        if not k or key[0] not in self._cols:
            return None
        want = dtype or self._dtype(key[0])
        pieces: list[tuple[np.ndarray, np.ndarray]] = []
        i = 0
        while i < k:
            place = self._place(key[i])
            if place is None:
                return None
            block, j = place
            span = key[i : i + len(block.names) - j]
            got = self._from_block(block, j, span, want)
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
        self, block: ColumnBlock, j0: int, key: tuple[str, ...], want: DataType
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """``key`` read from ``block`` (``key[0]`` is its column ``j0``) when it names consecutive
        attached block columns and no request-text fallback applies: a view (or one cast); None
        otherwise."""
        k = len(key)
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
        for i, name in enumerate(key):
            got = cols.get(name)
            if got is block:  # a stand-in: the column of the block its name is at
                continue
            if not (isinstance(got, Column) and got._block is block and got._j == j0 + i):
                return False
        return True

    def _dtype(self, name: str) -> DataType:
        """The type of column ``name`` (which exists), without making its Column."""
        got = self._cols[name]
        if isinstance(got, DataType):
            return got
        return got.dtype

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
        if col.text is None or col.dtype is DataType.STRING or col.valid.all():
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
        if valid.all():
            return values.tolist()
        return [v if ok else "" for v, ok in zip(values.tolist(), valid.tolist(), strict=True)]
