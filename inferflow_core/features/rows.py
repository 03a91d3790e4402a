"""FeatureFrame rows <-> L2 cache rows: an entity as one structured row (fixed-width values and validity per
block), with its string cells beside it — see cache.py."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .frame import Block, FeatureFrame, from_raw, raw_dtype, to_raw


def row_dtype(signature: tuple) -> np.dtype:
    """Structured dtype of one entity of frames with ``signature`` (fixed-width blocks only)."""
    fields: list = []
    for b, (dt, shape, k) in enumerate(signature[0]):
        if dt.is_fixed_width:
            fields.append((f"v{b}", raw_dtype(dt), shape))
            fields.append((f"m{b}", np.dtype(np.bool_), (k,)))
    return np.dtype(fields)


def pack_rows(frame: FeatureFrame) -> tuple[np.ndarray, list | None]:
    """The frame's rows as a structured array, and per-row string cells (None when it has none)."""
    arr = np.empty(frame.n, dtype=row_dtype(frame.signature))
    for b, block in enumerate(frame.blocks):
        if block.fixed:
            arr[f"v{b}"] = to_raw(block.values, block.dtype)
            arr[f"m{b}"] = block.valid
    var = [b for b, block in enumerate(frame.blocks) if not block.fixed]
    if not var:
        return arr, None
    objs = [
        tuple((frame.blocks[b].values[i], bool(frame.blocks[b].valid[i, 0])) for b in var)
        for i in range(frame.n)
    ]
    return arr, objs


def unpack_rows(signature: tuple, arr: np.ndarray, objs: Sequence[tuple] | None) -> FeatureFrame:
    """Inverse of :func:`pack_rows` (``arr`` is a structured array of :func:`row_dtype`)."""
    block_specs, slots = signature
    n = len(arr)
    blocks = []
    var_i = 0
    for b, (dt, _shape, _k) in enumerate(block_specs):
        if dt.is_fixed_width:
            blocks.append(Block(dt, from_raw(arr[f"v{b}"], dt), arr[f"m{b}"]))
            continue
        values = np.empty(n, dtype=object)
        valid = np.zeros((n, 1), dtype=bool)
        for i, row in enumerate(objs or ()):
            values[i], valid[i, 0] = row[var_i]
        blocks.append(Block(dt, values, valid))
        var_i += 1
    return FeatureFrame(n, blocks, slots)
