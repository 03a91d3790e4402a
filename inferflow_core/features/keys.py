"""Entity keys of a feature component, read from matrix columns and deduplicated once per request.

Shared by the feature-source plugins (OnFS, Feast): a row's key is the tuple of its key columns' text
(a missing cell reads as ``""``); a key with an empty part is never sent to a store.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..dtypes import DataType
from ..matrix import ComponentMatrix


@dataclass(frozen=True)
class EntityKeys:
    rows: list[tuple[str, ...]]  # the key of every matrix row
    distinct: int  # how many different keys the rows hold (empty ones included)
    inverse: np.ndarray  # per row: the index of its key among the distinct keys
    unique: list[tuple[str, ...]]  # the distinct keys a store is asked for (no empty part)
    positions: np.ndarray  # per unique key: its index among the distinct keys

    def composite_ids(self) -> tuple[np.ndarray, np.ndarray]:
        """``"a|b"`` per row and its validity (a row whose key parts are all empty has none)."""
        joined = np.array(["|".join(k) for k in self.rows] + [None], dtype=object)[:-1]
        return joined, joined != ""


def read_keys(matrix: ComponentMatrix, key_cols: Sequence[str]) -> list[tuple[str, ...]]:
    """The key tuple of every row: one column read per key column, missing cells as ``""``."""
    texts = []
    for col in key_cols:
        values, valid = matrix.read(col, DataType.STRING)
        if valid.all():
            texts.append(values.tolist())
        else:
            texts.append([v if ok else "" for v, ok in zip(values.tolist(), valid.tolist(), strict=True)])
    return list(zip(*texts, strict=True))


def entity_keys(rows: list[tuple[str, ...]]) -> EntityKeys:
    """Deduplicate at C speed: ``dict.fromkeys`` keeps first-seen order, ``map`` looks every row up.

    Two layouts skip the per-row look-up: every row distinct (a target's own key: the inverse is
    ``arange``) and one key for every row (a context key: zeros)."""
    first = dict.fromkeys(rows)
    distinct = len(first)
    if distinct == len(rows):
        inverse = np.arange(distinct, dtype=np.intp)
    elif distinct == 1:
        inverse = np.zeros(len(rows), dtype=np.intp)
    else:
        index = dict(zip(first, itertools.count()))
        inverse = np.fromiter(map(index.__getitem__, rows), np.intp, len(rows))
    if rows and len(rows[0]) == 1:  # one key column: only ("",) has an empty part
        unique = list(first)
        if ("",) in first:
            unique.remove(("",))
    elif "" in itertools.chain.from_iterable(first):  # (a C-level scan of every part)
        unique = [k for k in first if all(k)]  # a key with an empty part is never sent
    else:
        unique = list(first)
    if len(unique) == distinct:
        positions = np.arange(distinct, dtype=np.intp)
    else:
        position = {k: i for i, k in enumerate(first)}
        positions = np.fromiter((position[k] for k in unique), np.intp, len(unique))
    return EntityKeys(rows, distinct, inverse, unique, positions)
