"""The embedded feature store: one Parquet file (or folder of parts) per entity label, loaded once.

``<dir>/<label>.parquet`` holds the key columns (named as the ``keys_schema``) and one column per feature,
named ``<group>:<feature>``, typed by its Arrow type: float16/32/64, int8..64, uint8..64, bool, string/binary,
and (fixed-size or variable) lists of those for vectors. FP8 features are stored as uint8 (or lists of uint8)
with field metadata ``inferflow.dtype = FP8E4M3`` (Arrow has no float8). Null = missing cell.

Lookups: a dict from key (a string, or a tuple of strings for composite keys) to row number; the features a
component asks for are laid out once as a :class:`FeatureFrame` with an extra all-missing last row, so a
lookup is one dict pass over the unique keys and one ``take`` per block. An unknown entity is a missing row.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from inferflow_core.api import DataType, DataTypeError, cast_array, parse_dtype

from .frame import FeatureFrame, empty_objects

_ARROW: dict[str, DataType] = {
    "halffloat": DataType.FP16, "float": DataType.FP32, "double": DataType.FP64,
    "int8": DataType.INT8, "int16": DataType.INT16, "int32": DataType.INT32, "int64": DataType.INT64,
    "uint8": DataType.UINT8, "uint16": DataType.UINT16, "uint32": DataType.UINT32, "uint64": DataType.UINT64,
    "bool": DataType.BOOL, "string": DataType.STRING, "large_string": DataType.STRING,
    "binary": DataType.STRING, "large_binary": DataType.STRING,
}  # fmt: skip


class StoreError(LookupError):
    """A label or feature the store does not have (OnFS would reject the query)."""


def arrow_dtype(field: pa.Field) -> DataType:
    """The DataType of a feature column (field metadata ``inferflow.dtype`` wins)."""
    meta = field.metadata or {}
    if b"inferflow.dtype" in meta:
        return parse_dtype(meta[b"inferflow.dtype"].decode())
    typ = field.type
    if pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ):
        elem = _ARROW.get(str(typ.value_type))
        if elem is None:
            raise DataTypeError(f"column {field.name!r}: unsupported list element type {typ.value_type}")
        return elem.vector
    got = _ARROW.get(str(typ))
    if got is None:
        raise DataTypeError(f"column {field.name!r}: unsupported Arrow type {typ}")
    return got


def _filled(arr: pa.Array) -> np.ndarray:
    """Null-free numpy view of a primitive Arrow array (nulls -> 0 / False)."""
    if arr.null_count:
        zero = pa.scalar(False) if pa.types.is_boolean(arr.type) else pa.scalar(0, pa.int8()).cast(arr.type)
        arr = arr.fill_null(zero)
    return np.asarray(arr.to_numpy(zero_copy_only=False))


def _column(arr: pa.ChunkedArray, dt: DataType) -> tuple[np.ndarray, np.ndarray]:
    """Arrow column -> (values, valid) in the matrix layout (vectors 2-D at their most common length)."""
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    n = len(arr)
    valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    if not dt.is_fixed_width:
        values = empty_objects(n, dt.is_vector)
        for i, item in enumerate(arr.to_pylist()):
            if item is not None:
                values[i] = (
                    [x.decode() if isinstance(x, bytes) else str(x) for x in item]
                    if dt.is_vector
                    else (item.decode("utf-8", "surrogateescape") if isinstance(item, bytes) else item)
                )
        return values, valid
    store = np.uint8 if dt.scalar in (DataType.FP8E4M3, DataType.FP8E5M2) else dt.numpy_dtype
    if not dt.is_vector:
        raw = _filled(arr).astype(store, copy=False)
        return (raw.view(dt.numpy_dtype) if store is np.uint8 else raw), valid
    lens = np.asarray(pc.list_value_length(arr).fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
    dims, counts = np.unique(lens[valid & (lens > 0)], return_counts=True)
    dim = int(dims[len(counts) - 1 - int(np.argmax(counts[::-1]))]) if dims.size else 0
    valid &= lens == dim
    values = np.zeros((n, dim), dtype=dt.numpy_dtype)
    if valid.any():
        picked = arr.filter(pa.array(valid))
        raw = _filled(pc.list_flatten(picked)).astype(store, copy=False)
        values[valid] = (raw.view(dt.numpy_dtype) if store is np.uint8 else raw).reshape(-1, dim)
    return values, valid


@dataclass
class LabelTable:
    """One entity label: the key index, feature columns (read lazily) and its Arrow table."""

    label: str
    keys_schema: tuple[str, ...]
    index: dict
    table: pa.Table
    rows: int
    dtypes: dict[str, DataType] = field(default_factory=dict)

    def dtype(self, column: str) -> DataType:
        got = self.dtypes.get(column)
        if got is None:
            if column not in self.table.column_names:
                raise StoreError(f"entity {self.label!r} has no feature column {column!r}")
            got = self.dtypes[column] = arrow_dtype(self.table.schema.field(column))
        return got

    def feature_column(self, column: str, dtype: DataType | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Values of ``column`` (optionally cast to ``dtype``) with one extra all-missing last row."""
        own = self.dtype(column)
        values, valid = _column(self.table.column(column), own)
        if dtype is not None and dtype is not own:
            values = cast_array(values, own, dtype)
        pad = empty_objects(1, own.is_vector) if values.dtype == object else np.zeros_like(values[:1])
        return np.concatenate([values, pad]), np.append(valid, False)

    def positions(self, keys: Sequence[tuple[str, ...]]) -> np.ndarray:
        """Row of each key; unknown keys map to the all-missing last row."""
        get, miss = self.index.get, self.rows
        if len(self.keys_schema) == 1:
            return np.fromiter((get(k[0], miss) for k in keys), dtype=np.intp, count=len(keys))
        return np.fromiter((get(tuple(k), miss) for k in keys), dtype=np.intp, count=len(keys))


class LocalStore:
    """All labels of one directory, each loaded on first use and kept for the life of the process."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._tables: dict[str, LabelTable] = {}
        self._prepared: dict[tuple, FeatureFrame] = {}
        self._lock = threading.Lock()

    def table(self, label: str, keys_schema: Sequence[str]) -> LabelTable:
        with self._lock:
            got = self._tables.get(label)
            if got is None:
                got = self._load(label)
                self._tables[label] = got
        if got.keys_schema != tuple(keys_schema):
            # a different key order: re-index (rare; cached under its own name)
            alt = f"{label}\x00{'|'.join(keys_schema)}"
            with self._lock:
                if alt not in self._tables:
                    self._tables[alt] = self._index(label, got.table, tuple(keys_schema))
                return self._tables[alt]
        return got

    def _load(self, label: str) -> LabelTable:
        path = os.path.join(self.root, f"{label}.parquet")
        if not os.path.exists(path):
            raise StoreError(f"no data for entity {label!r}: {path} does not exist")
        table = pq.read_table(path)
        keys = tuple(c for c in table.column_names if ":" not in c)
        return self._index(label, table, keys)

    @staticmethod
    def _index(label: str, table: pa.Table, keys: tuple[str, ...]) -> LabelTable:
        missing = [k for k in keys if k not in table.column_names]
        if missing or not keys:
            raise StoreError(f"entity {label!r} has no key column(s) {missing or 'at all'}")
        cols = [[str(v) for v in table.column(k).to_pylist()] for k in keys]
        index: dict = (
            {v: i for i, v in enumerate(cols[0])}
            if len(keys) == 1
            else {t: i for i, t in enumerate(zip(*cols, strict=True))}
        )
        return LabelTable(label, keys, index, table, table.num_rows)

    def prepared(
        self, label: str, keys_schema: Sequence[str], columns: Sequence[tuple[str, DataType | None]]
    ) -> FeatureFrame:
        """The frame (all rows + missing row) of ``columns`` = ``(group:feature, cast-to dtype or None)``."""
        key = (label, tuple(keys_schema), tuple(columns))
        got = self._prepared.get(key)
        if got is not None:
            return got
        table = self.table(label, keys_schema)
        cols = [table.feature_column(name, dt) for name, dt in columns]
        dtypes = [dt or table.dtype(name) for name, dt in columns]
        frame = FeatureFrame.from_columns(dtypes, cols)
        with self._lock:
            self._prepared[key] = frame
        return frame
