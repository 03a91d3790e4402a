"""Entity-key deduplication (``features.entity_keys``) over the layouts it has fast paths for."""

from __future__ import annotations

import numpy as np
import pytest

from inferflow_core.features.keys import entity_keys


def _expected(rows: list[tuple[str, ...]]) -> tuple[int, list[int], list[tuple[str, ...]], list[int]]:
    order = list(dict.fromkeys(rows))
    unique = [k for k in order if all(k)]
    return len(order), [order.index(r) for r in rows], unique, [order.index(k) for k in unique]


@pytest.mark.parametrize(
    "rows",
    [
        [("a",), ("b",), ("c",)],  # every row distinct
        [("u",)] * 4,  # one key for every row
        [("",)] * 3,  # one empty key for every row
        [("a",), ("",), ("b",)],  # distinct, one empty
        [("a",), ("b",), ("a",), ("",), ("b",)],  # repeats and an empty key
        [("a", "x"), ("a", ""), ("b", "y"), ("a", "x")],  # two key columns, one with an empty part
        [("", "x"), ("a", "")],  # two key columns, every key with an empty part
        [("a", "x"), ("b", "y"), ("a", "x")],  # two key columns, no empty part
        [],
    ],
)
def test_entity_keys_dedupes_in_first_seen_order(rows: list[tuple[str, ...]]) -> None:
    distinct, inverse, unique, positions = _expected(rows)
    keys = entity_keys(rows)
    assert keys.rows == rows
    assert keys.distinct == distinct
    assert keys.inverse.dtype == np.intp
    assert keys.inverse.tolist() == inverse
    assert keys.unique == unique
    assert keys.positions.dtype == np.intp
    assert keys.positions.tolist() == positions
