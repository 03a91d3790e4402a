"""``inferflow-onfs import``: build the embedded store's ``<label>.parquet`` from CSV / Parquet files.

Each input file holds rows of one entity label: key column(s) and feature columns. A feature column is
named ``<group>:<feature>`` in the store: ``--map src=group:feature`` renames, other columns without a
``:`` get ``--group`` (default: the label) as their group, ``--drop`` leaves columns out. Types:
``--type column=fp32`` (any spelling the core accepts; the column named as in the store or the input),
else Parquet's own type, else inferred from the CSV text (every value ``true``/``false`` -> BOOL, integers
-> INT64, decimals -> FP32, or FP64 when a value does not fit FP32, ``:``-separated numbers ->
FP32_VECTOR, anything else -> STRING). Text is parsed with the core's parser, so a value the server
would reject is rejected here: every problem is reported with its file, line (row) and column, and
nothing is written. Keys must be present and unique.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from inferflow_core.api import DataType, DataTypeError, codecs

from .store import arrow_dtype

_ARROW_OF: dict[DataType, pa.DataType] = {
    DataType.FP16: pa.float16(), DataType.FP32: pa.float32(), DataType.FP64: pa.float64(),
    DataType.INT8: pa.int8(), DataType.INT16: pa.int16(), DataType.INT32: pa.int32(),
    DataType.INT64: pa.int64(),
    DataType.UINT8: pa.uint8(), DataType.UINT16: pa.uint16(), DataType.UINT32: pa.uint32(),
    DataType.UINT64: pa.uint64(), DataType.BOOL: pa.bool_(), DataType.FP8E4M3: pa.uint8(),
    DataType.FP8E5M2: pa.uint8(), DataType.STRING: pa.string(),
}  # fmt: skip


class StoreImportError(ValueError):
    """The input does not make a valid store; ``problems`` lists every ``file:line: column: message``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s); first: {problems[0]}")
        self.problems = problems


@dataclass
class Chunk:
    """One input file's values of one output column: text (CSV, or Parquet given a type) or Arrow."""

    file: str
    first_line: int  # the line (CSV) or row (Parquet, 0-based) of the chunk's first value
    values: pa.Array
    text: bool


@dataclass
class Summary:
    label: str
    output: str
    rows: int = 0
    files: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    features: dict[str, str] = field(default_factory=dict)  # column -> wire type name
    bytes: int = 0
    seconds: float = 0.0


def read_input(path: str) -> tuple[pa.Table, bool]:
    """A CSV (every column as text, empty = missing) or Parquet file; (table, is_text)."""
    if path.endswith((".parquet", ".pq")) or os.path.isdir(path):
        return pq.read_table(path), False
    with open(path, newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh), None)
    if not header:
        raise StoreImportError([f"{path}: empty file (no header row)"])
    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in header}, strings_can_be_null=True, null_values=[""]
    )
    try:
        return pacsv.read_csv(path, convert_options=convert), True
    except pa.ArrowInvalid as exc:
        raise StoreImportError([f"{path}: {exc}"]) from None


def store_name(column: str, mapping: dict[str, str], group: str) -> str:
    if column in mapping:
        return mapping[column]
    return column if ":" in column else f"{group}:{column}"


def infer(texts: list[str]) -> DataType:
    """The narrowest type every (non-empty) text parses as; see the module doc."""
    if not texts:
        return DataType.STRING
    for dt in (DataType.BOOL, DataType.INT64):
        if codecs.parse_text_column(texts, dt)[1].all():
            return dt
    if codecs.parse_text_column(texts, DataType.FP64)[1].all():
        return DataType.FP32 if codecs.parse_text_column(texts, DataType.FP32)[1].all() else DataType.FP64
    if any(":" in t for t in texts) and codecs.parse_text_column(texts, DataType.FP32_VECTOR)[1].all():
        return DataType.FP32_VECTOR
    return DataType.STRING


def _where(chunk: Chunk, row: int) -> str:
    if chunk.text and chunk.file.endswith((".parquet", ".pq")):
        return f"{chunk.file}:row {chunk.first_line + row}"
    return f"{chunk.file}:{'line' if chunk.text else 'row'} {chunk.first_line + row}"


def to_arrow(name: str, dt: DataType, chunks: list[Chunk], problems: list[str]) -> pa.Array:
    """One output column: every chunk parsed / cast to ``dt``; problems appended, never raised here."""
    parts = []
    for chunk in chunks:
        if not chunk.text:
            parts.append(chunk.values)
            continue
        texts = [v if v is not None else "" for v in chunk.values.to_pylist()]
        values, valid = codecs.parse_text_column(texts, dt)
        bad = np.flatnonzero(np.fromiter(map(bool, texts), bool, len(texts)) & ~valid)
        for row in bad[:20].tolist():
            why = f"{texts[row][:40]!r} is not a {dt.wire_name}"
            if dt.is_vector and dt.is_fixed_width and values.ndim == 2:
                why += f" of {values.shape[1]} elements"
            problems.append(f"{_where(chunk, row)}: column {name!r}: {why}")
        if bad.size > 20:
            problems.append(f"{chunk.file}: column {name!r}: {bad.size - 20} more bad values")
        parts.append(_array(values, valid, dt))
    if len({p.type for p in parts}) > 1:
        types = ", ".join(sorted({str(p.type) for p in parts}))
        problems.append(f"column {name!r}: the input files disagree on its type ({types}); give --type")
        return parts[0]
    return pa.chunked_array(parts).combine_chunks() if parts else pa.array([], _ARROW_OF[DataType.STRING])


def _array(values: np.ndarray, valid: np.ndarray, dt: DataType) -> pa.Array:
    mask = pa.array(~valid)
    if dt.scalar is DataType.STRING:
        rows = [list(v) if dt.is_vector else v for v in values]
        typ = pa.list_(pa.string()) if dt.is_vector else pa.string()
        return pa.array([r if ok else None for r, ok in zip(rows, valid, strict=True)], typ)
    raw = values.view(np.uint8) if dt.scalar in (DataType.FP8E4M3, DataType.FP8E5M2) else values
    if dt.is_vector:
        flat = pa.array(np.ascontiguousarray(raw).reshape(-1), _ARROW_OF[dt.scalar])
        return pa.FixedSizeListArray.from_arrays(flat, values.shape[1], mask=mask)
    return pa.array(raw, _ARROW_OF[dt], mask=np.asarray(~valid))


def _field(name: str, arr: pa.Array, dt: DataType) -> pa.Field:
    meta = (
        {b"inferflow.dtype": dt.wire_name.encode()}
        if dt.scalar in (DataType.FP8E4M3, DataType.FP8E5M2)
        else None
    )
    return pa.field(name, arr.type, metadata=meta)


def _progress(items: list, desc: str):
    try:
        import sys

        from tqdm import tqdm

        return tqdm(items, desc=desc, leave=False, disable=not sys.stderr.isatty())
    except ImportError:  # pragma: no cover
        return items


def _collect(
    files: Sequence[str], keys: Sequence[str], mapping: dict[str, str], drop: set[str], group: str
) -> tuple[dict[str, list[Chunk]], list[str], int]:
    """Read every file; per output column its chunks (in file order). Returns (columns, problems, rows)."""
    columns: dict[str, list[Chunk]] = {}
    problems: list[str] = []
    rows = 0
    for path in _progress(list(files), "reading"):
        table, text = read_input(path)
        names = [c for c in table.column_names if c not in drop]
        for missing in [k for k in keys if k not in names]:
            problems.append(f"{path}: no key column {missing!r} (columns: {', '.join(names)})")
        for col in names:
            out = col if col in keys else store_name(col, mapping, group)
            chunk = Chunk(path, 2 if text else 0, table.column(col).combine_chunks(), text)
            columns.setdefault(out, []).append(chunk)
        rows += table.num_rows
    for name, chunks in columns.items():
        if sum(len(c.values) for c in chunks) != rows:
            problems.append(f"column {name!r} is not in every input file")
    return columns, problems, rows


def _check_keys(keys: Sequence[str], columns: dict[str, list[Chunk]], problems: list[str]) -> list[pa.Array]:
    out = []
    for key in keys:
        chunks = columns.pop(key, [])
        for chunk in chunks:
            values = (
                chunk.values.cast(pa.string()) if not pa.types.is_string(chunk.values.type) else chunk.values
            )
            for row in np.flatnonzero(~np.asarray(values.is_valid()))[:20].tolist():
                problems.append(f"{_where(chunk, row)}: column {key!r}: key is empty")
        if chunks:
            out.append(pa.chunked_array([c.values.cast(pa.string()) for c in chunks]).combine_chunks())
    if out and len(out) == len(keys):
        tuples = list(zip(*[a.to_pylist() for a in out], strict=True))
        first: dict[tuple, int] = {}
        for i, tup in enumerate(tuples):
            if tup in first and None not in tup:
                shown = tup if len(tup) > 1 else tup[0]
                problems.append(f"key {shown!r} appears in rows {first[tup]} and {i} (0-based, all files)")
                if len(problems) > 100:
                    break
            first.setdefault(tup, i)
    return out


def build_store(
    files: Sequence[str],
    out_dir: str,
    label: str,
    keys: Sequence[str],
    mapping: dict[str, str] | None = None,
    drop: Sequence[str] = (),
    types: dict[str, str] | None = None,
    group: str | None = None,
    overwrite: bool = False,
) -> Summary:
    """Build ``<out_dir>/<label>.parquet``; raise :class:`StoreImportError` listing every problem."""
    t0 = time.perf_counter()
    mapping = dict(mapping or {})
    output = os.path.join(out_dir, f"{label}.parquet")
    if os.path.exists(output) and not overwrite:
        raise StoreImportError([f"{output} exists (--overwrite replaces it)"])
    columns, problems, rows = _collect(files, keys, mapping, set(drop), group or label)
    declared: dict[str, DataType] = {}
    for col, spelling in (types or {}).items():
        name = col if col in columns else store_name(col, mapping, group or label)
        if name not in columns:
            problems.append(f"--type {col}: no such column")
            continue
        try:
            declared[name] = codecs.parse_dtype(spelling)
        except DataTypeError as exc:
            problems.append(f"--type {col}: {exc}")
    key_arrays = _check_keys(keys, columns, problems)
    arrays: dict[str, tuple[pa.Array, DataType]] = {}
    for name, chunks in _progress(list(columns.items()), "columns"):
        if ":" not in name:
            problems.append(f"column {name!r}: a feature column must be named group:feature (use --map)")
            continue
        dt = declared.get(name) or _natural(name, chunks, problems)
        if dt is None:
            continue
        if name in declared or any(c.text for c in chunks):  # Parquet values go through the parser too
            chunks = [_as_text(c) for c in chunks]
        arrays[name] = (to_arrow(name, dt, chunks, problems), dt)
    if problems:
        raise StoreImportError(problems)
    fields = [pa.field(k, pa.string()) for k in keys] + [_field(n, a, dt) for n, (a, dt) in arrays.items()]
    table = pa.Table.from_arrays([*key_arrays, *(a for a, _ in arrays.values())], schema=pa.schema(fields))
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    tmp = output + ".tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, output)
    return Summary(
        label, output, rows, list(files), list(keys),
        {n: arrow_dtype(table.schema.field(n)).wire_name for n in arrays}, os.path.getsize(output),
        round(time.perf_counter() - t0, 2),
    )  # fmt: skip


def _natural(name: str, chunks: list[Chunk], problems: list[str]) -> DataType | None:
    """The type a column brings: Parquet's own (checked), or inferred from every file's text."""
    if not any(c.text for c in chunks):
        try:
            return arrow_dtype(pa.field(name, chunks[0].values.type))
        except DataTypeError as exc:
            problems.append(f"{chunks[0].file}: {exc} (give --type)")
            return None
    texts = [t for c in map(_as_text, chunks) if c.text for t in c.values.to_pylist() if t]
    return infer(texts)


def _as_text(chunk: Chunk) -> Chunk:
    if chunk.text or pa.types.is_list(chunk.values.type) or pa.types.is_fixed_size_list(chunk.values.type):
        return chunk
    return Chunk(chunk.file, chunk.first_line, chunk.values.cast(pa.string()), True)
