"""ComponentMatrix: the columnar, numpy-backed table a request's components read and write.

Rows are targets (or slates / pairs in a :class:`SlateMatrix`). Each column has a name, a declared
:class:`DataType`, a typed value array and a validity mask:

* fixed-width scalars: 1-D array of the type's numpy dtype;
* fixed-width vectors: 2-D array ``(rows, dim)`` (``dim`` is fixed by the first write);
* strings and string vectors: object arrays.

A column may also hold the request's *text* for a feature (what existing Inferflow clients send). Text
is kept as sent and used as a fallback: a typed cell that is present wins, a missing typed cell is
parsed from the text when a consumer reads the column (the anchor's "request feature as fallback" rule).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from .dtypes import (
    DataType,
    DataTypeError,
    array_to_cells,
    cast_array,
    format_column,
    parse_text_column,
)

__all__ = ["Column", "ComponentMatrix", "SlateMatrix", "empty_values"]


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


@dataclass(eq=False)
class Column:
    """One named, typed column. ``values`` is None until the first typed write."""

    name: str
    dtype: DataType
    rows: int
    values: np.ndarray | None = None
    valid: np.ndarray = field(default=None)  # type: ignore[arg-type]
    text: np.ndarray | None = None  # object array of str, "" = absent

    def __post_init__(self) -> None:
        if self.valid is None:
            self.valid = np.zeros(self.rows, dtype=bool)

    @property
    def dim(self) -> int:
        """Vector length of a fixed-width vector column (0 when scalar or not yet written)."""
        if self.values is None or self.values.ndim < 2:
            return 0
        return int(self.values.shape[1])

    def has_text(self) -> bool:
        return self.text is not None


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
        col.values = values
        col.valid = np.ones(self.rows, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)

    def set_rows(
        self, name: str, rows: np.ndarray | Sequence[int], values: np.ndarray, valid: np.ndarray | None = None
    ) -> None:
        """Write ``values`` into the given row positions of column ``name``."""
        col = self.column(name)
        values = self._coerce(col, values)
        idx = np.asarray(rows, dtype=np.intp)
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
        """Like :meth:`read` with missing cells set to the type's default (reference 4.5: zeros)."""
        values, valid = self.read(name, dtype)
        if valid.all():
            return values
        out = values.copy()
        if out.dtype == object:
            out[~valid] = "" if (dtype or self.column(name).dtype) is DataType.STRING else None
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
        for col in self._cols.values():
            new = Column(col.name, col.dtype, len(idx))
            if col.values is not None:
                new.values = col.values[idx]
            new.valid = col.valid[idx]
            if col.text is not None:
                new.text = col.text[idx]
            sub._cols[col.name] = new
        return sub


class SlateMatrix(ComponentMatrix):
    """One row per slate (or pair); ``target_indices[i]`` are the target rows of slate ``i``."""

    def __init__(self, target_indices: Sequence[np.ndarray]) -> None:
        super().__init__(len(target_indices))
        self.target_indices = [np.asarray(t, dtype=np.intp) for t in target_indices]
        self.set_text("slate_target_indices", [",".join(map(str, t.tolist())) for t in self.target_indices])
