"""ComponentMatrix: the columnar, numpy-backed table a request's components read and write.

Rows are targets (or slates / pairs in a :class:`SlateMatrix`). Each column has a name, a declared
:class:`DataType`, a typed value array and a validity mask:

* fixed-width scalars: 1-D array of the type's numpy dtype;
* fixed-width vectors: 2-D array ``(rows, dim)`` (``dim`` is fixed by the first write);
* strings and string vectors: object arrays.

A column may also hold the request's *text* for a feature (what existing Inferflow clients send). Text
is kept as sent and used as a fallback: a typed cell that is present wins, a missing typed cell is
parsed from the text when a consumer reads the column (Go Inferflow's "request feature as fallback" rule).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from .dtypes import (
    DataType,
    DataTypeError,
    array_to_cells,
    cast_array,
    format_column,
    parse_text_column,
)

__all__ = ["Column", "ColumnBlock", "ComponentMatrix", "SlateMatrix", "empty_values"]


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


class ComponentMatrix:
    """A table of ``rows`` rows and named typed columns. See the module docstring."""

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

    # -- writes -------------------------------------------------------------------------------
    def set_text(self, name: str, texts: Sequence[str] | np.ndarray | str) -> None:
        """Store request text for ``name`` (a sequence per row, or one string broadcast)."""
        col = self._cols.get(name) or self.declare(name, DataType.STRING)
        arr = np.empty(self.rows, dtype=object)
        if isinstance(texts, str):
            arr[:] = texts
        else:
            if len(texts) != self.rows:
                raise ValueError(f"column {name!r}: {len(texts)} texts for {self.rows} rows")
            arr[:] = list(texts) if not isinstance(texts, np.ndarray) else texts
        col.text = arr
        if col.dtype is DataType.STRING:
            col.values = arr
            col.valid = arr != ""

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
        key = tuple(names)
        k = len(key)
        cols = [self.column(n) for n in key]
        if len(set(key)) != k:
            raise ValueError(f"set_block: repeated column names in {list(key)}")
        dtype = cols[0].dtype if cols else DataType.UNKNOWN
        if not dtype.is_fixed_width or dtype.is_vector or any(c.dtype is not dtype for c in cols):
            kinds = sorted({c.dtype.wire_name for c in cols})
            raise DataTypeError(
                f"set_block: columns {list(key)} must share one fixed-width scalar type: {kinds}"
            )
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
        block = ColumnBlock(dtype, values, valid2, key)
        for j, col in enumerate(cols):
            col.attach(block, j)
        return block

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

    # -- sub-matrices -------------------------------------------------------------------------
    def take(self, rows: np.ndarray | Sequence[int]) -> ComponentMatrix:
        """A copy holding only ``rows`` (in that order); used to run a component on one slate."""
        idx = np.asarray(rows, dtype=np.intp)
        sub = ComponentMatrix(len(idx))
        blocks: dict[int, ColumnBlock] = {}  # one gather per block; its columns stay a block
        for col in self._cols.values():
            text = None if col.text is None else col.text[idx]
            new = Column(col.name, col.dtype, len(idx), text=text)
            block = col.block
            if block is not None:
                taken = blocks.get(id(block))
                if taken is None:
                    taken = ColumnBlock(block.dtype, block.values[idx], block.valid[idx], block.names)
                    taken.detached = len(block.names)  # counted down as columns attach below
                    blocks[id(block)] = taken
                taken.detached -= 1
                new.attach(taken, col._j)
            else:
                values = col.values
                new.replace(None if values is None else values[idx], col.valid[idx])
            sub._cols[col.name] = new
        return sub


class SlateMatrix(ComponentMatrix):
    """One row per slate (or pair); ``target_indices[i]`` are the target rows of slate ``i``."""

    def __init__(self, target_indices: Sequence[np.ndarray]) -> None:
        super().__init__(len(target_indices))
        self.target_indices = [np.asarray(t, dtype=np.intp) for t in target_indices]
        self.set_text("slate_target_indices", [",".join(map(str, t.tolist())) for t in self.target_indices])

    def slate_supplies(self, target: ComponentMatrix, name: str) -> bool:
        """Whether a slate component reading ``name`` gets it from this matrix: the slate matrix has it
        and the target matrix has no value of it (absent, or declared but empty)."""
        if not self.has(name) or name == "slate_target_indices":
            return False
        return not target.has(name) or not target.read(name)[1].any()

    def slate_rows(
        self, target: ComponentMatrix, slate: int, rows: np.ndarray, names: Sequence[str]
    ) -> ComponentMatrix:
        """``target.take(rows)`` (the target rows of slate ``slate``) where each of ``names`` the slate
        matrix supplies (:meth:`slate_supplies`) is the slate's own cell repeated on every row."""
        sub = target.take(rows)
        supplied = [n for n in names if self.slate_supplies(target, n)]
        if supplied:
            repeated = self.take(np.full(len(rows), slate, dtype=np.intp))
            for name in supplied:
                sub._cols[name] = repeated._cols[name]
        return sub
