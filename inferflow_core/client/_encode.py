"""Client inputs -> Predict request fields: columns from lists / numpy / pandas, typed and encoded.

Every conversion goes through :mod:`inferflow_core.dtypes` (the server's own codec): binary cells with
``array_to_cells``, text with ``format_column`` (vector elements joined with ``:``, the text format the
server parses), strings given for a numeric type with ``parse_text_column``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..dtypes import DataType, DataTypeError, array_to_cells, format_column, parse_dtype, parse_text_column

TEXT, BINARY = "text", "binary"
TypeSpec = str | DataType
_BY_NUMPY: dict[np.dtype, DataType] = {
    DataType(v).numpy_dtype: DataType(v) for v in range(1, 16) if DataType(v) is not DataType.STRING
}


def as_dtype(spec: TypeSpec) -> DataType:
    """``"fp32"``, ``"DataTypeFP32Vector"``, ``DataType.INT64`` ... -> DataType."""
    return spec if isinstance(spec, DataType) else parse_dtype(spec)


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    pd = sys.modules.get("pandas")  # pd.NA / NaT exist only once pandas is imported: never import it here
    return pd is not None and bool(value is pd.NA or value is pd.NaT)


def column(values: Any, rows: int | None, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``values`` (a list, numpy array, pandas Series, or one scalar to repeat) -> (array, valid).

    ``None`` / ``pd.NA`` mark a missing cell (sent as an empty value); in a pandas Series every value
    ``isna()`` is missing (NaN too, as pandas reads an empty CSV cell). 2-D arrays and lists of lists are
    vectors, one row each.
    """
    if hasattr(values, "isna") and hasattr(values, "to_numpy"):  # pandas Series / Index
        missing = np.asarray(values.isna(), dtype=bool)
        if missing.any():
            values = [
                None if gone else v for v, gone in zip(values.to_numpy(dtype=object), missing, strict=True)
            ]
        else:
            values = values.to_numpy(dtype=object) if values.dtype == object else values.to_numpy()
    scalar = isinstance(values, str | bytes) or np.ndim(values) == 0
    if scalar:
        if rows is None:
            raise ValueError(f"feature {name!r}: expected one value per row, got a single value")
        values = [values] * rows
    if isinstance(values, np.ndarray) and values.dtype != object:
        arr, valid = values, np.ones(len(values), dtype=bool)
    else:
        items = list(values)
        valid = np.array([not _is_missing(v) for v in items], dtype=bool)
        arr = _array([v for v, ok in zip(items, valid, strict=True) if ok], items, valid)
    if rows is not None and len(arr) != rows:
        raise ValueError(f"feature {name!r} has {len(arr)} values for {rows} rows")
    return arr, valid


def _array(present: list[Any], items: list[Any], valid: np.ndarray) -> np.ndarray:
    """A list with missing cells -> an array whose missing rows hold a placeholder of the right kind."""
    probe = np.asarray(present) if present else np.asarray([], dtype=object)
    if probe.dtype.kind in "biuf" and probe.ndim == 1:
        out = np.zeros(len(items), dtype=probe.dtype)
        out[valid] = probe
        return out
    if probe.dtype.kind in "biuf" and probe.ndim == 2 and valid.all():
        return probe
    out = np.empty(len(items), dtype=object)
    for i, (item, ok) in enumerate(zip(items, valid, strict=True)):
        out[i] = item if ok else None
    return out


def infer_dtype(arr: np.ndarray, valid: np.ndarray, name: str) -> DataType:
    """The DataType a column's values declare: numpy dtype (2-D = vector); Python str -> STRING;
    lists -> the vector of their elements' type."""
    if arr.dtype != object:
        if arr.dtype.kind in "US":
            return DataType.STRING
        dt = _BY_NUMPY.get(arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype)
        if dt is None:
            raise DataTypeError(f"feature {name!r}: numpy dtype {arr.dtype} has no Inferflow data type")
        return dt.vector if arr.ndim == 2 else dt
    present = [v for v, ok in zip(arr, valid, strict=True) if ok]
    if not present or all(isinstance(v, str | bytes) for v in present):
        return DataType.STRING
    first = next((v for v in present if np.size(v)), present[0])
    if isinstance(first, list | tuple | np.ndarray):
        elems = [e for v in present for e in np.asarray(v, dtype=object).ravel()]
        return infer_dtype(*column(elems, None, name), name).vector
    return infer_dtype(np.asarray(present), np.ones(len(present), dtype=bool), name)


def encode_column(
    values: Any, rows: int | None, name: str, dtype: TypeSpec | None, encoding: str
) -> tuple[DataType, list[bytes]]:
    """One feature column -> (its declared type, one wire value per row)."""
    arr, valid = column(values, rows, name)
    dt = as_dtype(dtype) if dtype is not None else infer_dtype(arr, valid, name)
    if dt is DataType.UNKNOWN:
        dt = DataType.STRING
    texts_given = arr.dtype.kind in "US" or (
        arr.dtype == object and all(isinstance(v, str) for v, ok in zip(arr, valid, strict=True) if ok)
    )
    if texts_given and dt is not DataType.STRING:
        texts = ["" if not ok else str(v) for v, ok in zip(arr, valid, strict=True)]
        if encoding == TEXT:  # the server parses them: send as given
            return dt, [t.encode("utf-8") for t in texts]
        arr, parsed = parse_text_column(texts, dt)
        bad = np.flatnonzero(valid & ~parsed)
        if bad.size:
            raise DataTypeError(
                f"feature {name!r} row {int(bad[0])}: {texts[int(bad[0])]!r} is not a {dt.wire_name}"
            )
    if dt.is_vector and arr.dtype == object and dt.is_fixed_width:
        arr = _vector_rows(arr, valid, dt)
    if encoding == BINARY:
        return dt, array_to_cells(arr, valid, dt)
    return dt, [t.encode("utf-8", "surrogateescape") for t in _texts(arr, valid, dt)]


def _vector_rows(arr: np.ndarray, valid: np.ndarray, dt: DataType) -> np.ndarray:
    """Object array of per-row sequences -> object array of per-row numpy vectors of ``dt``'s elements."""
    out = np.empty(len(arr), dtype=object)
    for i, (v, ok) in enumerate(zip(arr, valid, strict=True)):
        out[i] = np.asarray(v if ok else [], dtype=dt.numpy_dtype)
    return out


def _texts(arr: np.ndarray, valid: np.ndarray, dt: DataType) -> list[str]:
    """Per-row text in the format the server parses (vector elements separated by ``:``)."""
    if dt is DataType.STRING_VECTOR:
        return [":".join(map(str, v)) if ok else "" for v, ok in zip(arr, valid, strict=True)]
    texts = format_column(arr, valid, dt)
    return [t.replace(",", ":") for t in texts] if dt.is_vector else texts


def encode_features(
    features: Mapping[str, Any] | Any | None,
    rows: int,
    types: Mapping[str, TypeSpec],
    encoding: str,
) -> tuple[list[tuple[str, DataType]], list[list[bytes]]]:
    """``{name: column}`` (or a DataFrame) -> (schema, per-row value lists)."""
    if features is None:
        return [], [[] for _ in range(rows)]
    cols = _mapping(features)
    schema: list[tuple[str, DataType]] = []
    cells: list[list[bytes]] = []
    for name, values in cols.items():
        dt, col = encode_column(values, rows, name, types.get(name), encoding)
        schema.append((name, dt))
        cells.append(col)
    return schema, [list(row) for row in zip(*cells, strict=True)] if cells else [[] for _ in range(rows)]


def _mapping(features: Any) -> Mapping[str, Any]:
    if isinstance(features, Mapping):
        return features
    if hasattr(features, "columns") and hasattr(features, "__getitem__"):  # a pandas DataFrame
        return {str(c): features[c] for c in features.columns}
    raise TypeError(f"features must be a mapping of name -> values or a DataFrame, not {type(features)}")


def encode_context(
    context: Mapping[str, Any] | None, types: Mapping[str, TypeSpec], encoding: str
) -> list[tuple[str, DataType, bytes]]:
    """``{name: value}`` -> (name, type, wire value); a list / 1-D array value is one vector."""
    out = []
    for name, value in (context or {}).items():
        one = [list(value) if isinstance(value, list | tuple | np.ndarray) else value]
        dt, cells = encode_column(one, 1, name, types.get(name), encoding)
        out.append((name, dt, cells[0]))
    return out


def target_ids(targets: Any, id_column: str | None) -> tuple[list[str], Any]:
    """Target ids, and the DataFrame's other columns as features when ``targets`` is a DataFrame."""
    if hasattr(targets, "columns") and hasattr(targets, "index"):
        frame = targets
        key = id_column or ("id" if "id" in frame.columns else None)
        ids = frame[key] if key is not None else frame.index
        rest = frame.drop(columns=[key]) if key is not None else frame
        return [str(i) for i in ids], (rest if len(rest.columns) else None)
    if isinstance(targets, str | bytes):
        raise TypeError("targets must be a sequence of ids (got one string)")
    return [str(i) for i in (targets.tolist() if isinstance(targets, np.ndarray) else targets)], None


def check_types(types: Mapping[str, TypeSpec] | None) -> dict[str, DataType]:
    return {name: as_dtype(spec) for name, spec in (types or {}).items()}


def index_lists(groups: Sequence[Sequence[int]] | np.ndarray, what: str) -> list[list[int]]:
    out = [[int(i) for i in g] for g in groups]
    if not out:
        raise ValueError(f"{what}: at least one is required")
    return out
