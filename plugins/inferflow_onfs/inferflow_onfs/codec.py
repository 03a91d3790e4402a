"""Wire cells <-> FeatureFrame (the general path), and FeatureFrame rows <-> L2 cache rows.

Decoding (go-compatibility §4.4 encodings; answers that fit a ``wire.RowTemplate`` never get here): rows whose
fixed-width cells all have the expected size are decoded together — their cells joined into one buffer and
read with a single ``np.frombuffer`` over a structured dtype with one field per block. Only the other rows
(missing cells, wrong sizes) and string features go through ``api.codecs.cells_to_array`` column by column. No
per-cell Python for fixed-width types.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from operator import itemgetter

import numpy as np

from inferflow_core.api import DataType, codecs, features


def _mode_width(lens: np.ndarray, size: int) -> int:
    usable = lens[(lens > 0) & (lens % size == 0)]
    if not usable.size:
        return 0
    vals, counts = np.unique(usable, return_counts=True)
    return int(vals[len(counts) - 1 - int(np.argmax(counts[::-1]))])


def decode_rows(cols_per_row: Sequence[Sequence[bytes]], dtypes: Sequence[DataType]) -> features.FeatureFrame:
    """Decode ``n`` rows of ``len(dtypes)`` byte cells each (callers check the column count)."""
    n, nfeat = len(cols_per_row), len(dtypes)
    flat = list(itertools.chain.from_iterable(cols_per_row))
    lens = np.fromiter(map(len, flat), dtype=np.int64, count=n * nfeat).reshape(n, nfeat)
    fixed = [j for j, dt in enumerate(dtypes) if dt.is_fixed_width]
    widths = np.zeros(nfeat, dtype=np.int64)
    for j in fixed:
        dt = dtypes[j]
        widths[j] = _mode_width(lens[:, j], dt.itemsize) if dt.is_vector else dt.itemsize
    columns: list[tuple[np.ndarray, np.ndarray] | None] = [None] * nfeat
    for j, dt in enumerate(dtypes):
        if not dt.is_fixed_width:
            columns[j] = codecs.cells_to_array(flat[j::nfeat], dt)
    if fixed:
        ok = (lens[:, fixed] == widths[fixed]) & (widths[fixed] > 0)
        full = ok.all(axis=1)
        _decode_fixed(cols_per_row, flat, dtypes, fixed, widths, ok, full, columns)
    return features.FeatureFrame.from_columns(dtypes, columns)  # type: ignore[arg-type]


def _decode_fixed(
    cols_per_row: Sequence[Sequence[bytes]],
    flat: list[bytes],
    dtypes: Sequence[DataType],
    fixed: list[int],
    widths: np.ndarray,
    ok: np.ndarray,
    full: np.ndarray,
    columns: list[tuple[np.ndarray, np.ndarray] | None],
) -> None:
    n, nfeat = len(cols_per_row), len(dtypes)
    outs = {}
    for k, j in enumerate(fixed):
        dt = dtypes[j]
        dim = int(widths[j]) // dt.itemsize if dt.is_vector else 0
        shape = (n, dim) if dt.is_vector else (n,)
        outs[j] = (np.zeros(shape, dtype=dt.numpy_dtype), ok[:, k].copy())
    full_rows = np.flatnonzero(full)
    if full_rows.size:
        if len(fixed) == nfeat and full_rows.size == n:
            buf = b"".join(flat)
        else:
            pick = itemgetter(*fixed) if len(fixed) > 1 else (lambda row: (row[fixed[0]],))
            buf = b"".join(itertools.chain.from_iterable(pick(cols_per_row[i]) for i in full_rows.tolist()))
        fields = [
            (f"f{j}", features.raw_dtype(dtypes[j]), (int(widths[j]) // dtypes[j].itemsize,)) for j in fixed
        ]
        arr = np.frombuffer(buf, dtype=np.dtype(fields))
        for j in fixed:
            values = features.from_raw(arr[f"f{j}"], dtypes[j])
            target = outs[j][0]
            target[full_rows] = values if dtypes[j].is_vector else values[:, 0]
    rest = np.flatnonzero(~full & ok.any(axis=1))
    for k, j in enumerate(fixed):
        rows = rest[ok[rest, k]]
        if rows.size:
            dt = dtypes[j]
            buf = b"".join(flat[i * nfeat + j] for i in rows.tolist())
            raw = np.frombuffer(buf, dtype=features.raw_dtype(dt))
            values = features.from_raw(raw, dt)
            outs[j][0][rows] = values.reshape(rows.size, -1) if dt.is_vector else values
        columns[j] = outs[j]


def encode_columns(frame: features.FeatureFrame, dtypes: Sequence[DataType]) -> list[list[bytes]]:
    """Per feature, the per-row wire cells (``b""`` where missing)."""
    out = []
    for j, dt in enumerate(dtypes):
        values, valid = frame.column(j)
        out.append(codecs.array_to_cells(values, valid, dt))
    return out
