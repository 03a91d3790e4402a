"""ComponentMatrix: typed columns, validity, request-text fallback, defaults, slates."""

from __future__ import annotations

import numpy as np
import pytest

from inferflow_core.dtypes import DataType, DataTypeError
from inferflow_core.matrix import ComponentMatrix, SlateMatrix


def test_scalar_column_set_rows_and_cells() -> None:
    m = ComponentMatrix(4)
    m.declare("pctr", DataType.FP32)
    m.set_rows("pctr", [1, 3], np.array([0.5, 2.0], dtype=np.float32))
    values, valid = m.read("pctr")
    assert valid.tolist() == [False, True, False, True]
    assert values[3] == np.float32(2.0)
    cells = m.cells("pctr")
    assert cells == [b"", b"\x00\x00\x00\x3f", b"", b"\x00\x00\x00\x40"]
    assert m.texts("pctr") == ["", "0.5", "", "2"]


def test_vector_column_dim_fixed_by_first_write() -> None:
    m = ComponentMatrix(3)
    m.declare("emb", DataType.FP32_VECTOR)
    m.set_rows("emb", [0, 2], np.ones((2, 4), dtype=np.float32))
    assert m.column("emb").dim == 4
    with pytest.raises(DataTypeError):
        m.set_rows("emb", [1], np.ones((1, 3), dtype=np.float32))
    filled = m.read_filled("emb")
    assert filled.shape == (3, 4) and filled[1].sum() == 0


def test_request_text_is_a_fallback_for_missing_typed_cells() -> None:
    m = ComponentMatrix(2)
    m.set_text("price", ["199", ""])  # request feature, text encoding
    m.declare("price", DataType.FP32)  # an FS feature of the same name
    values, valid = m.read("price")
    assert valid.tolist() == [True, False] and values[0] == 199
    m.set_rows("price", [1], np.array([5.0], dtype=np.float32))
    m.set_rows("price", [0], np.array([7.0], dtype=np.float32))
    assert m.read("price")[0].tolist() == [7.0, 5.0]  # fetched values win


def test_conversion_on_read() -> None:
    m = ComponentMatrix(3)
    m.declare("n", DataType.INT64)
    m.set_column("n", np.array([1, 2, 3]), np.array([True, False, True]))
    values, valid = m.read("n", DataType.FP32)
    assert values.dtype == np.float32 and valid.tolist() == [True, False, True]
    texts, tvalid = m.read("n", DataType.STRING)
    assert texts[0] == "1" and not tvalid[1]


def test_string_column_and_text_parse_errors_are_invalid() -> None:
    m = ComponentMatrix(3)
    m.set_text("id", ["a", "", "c"])
    assert m.read("id")[1].tolist() == [True, False, True]
    m.set_text("age", ["3", "x", ""])
    values, valid = m.read("age", DataType.INT32)
    assert valid.tolist() == [True, False, False] and values[0] == 3


def test_redeclare_conflict_is_an_error() -> None:
    m = ComponentMatrix(1)
    m.declare("x", DataType.FP32)
    m.set_column("x", np.zeros(1, dtype=np.float32))
    with pytest.raises(DataTypeError, match="'x'"):
        m.declare("x", DataType.INT32)


def test_take_and_slate_matrix() -> None:
    m = ComponentMatrix(4)
    m.declare("v", DataType.INT32)
    m.set_column("v", np.arange(4, dtype=np.int32))
    sub = m.take([3, 1])
    assert sub.rows == 2 and sub.read("v")[0].tolist() == [3, 1]
    s = SlateMatrix([np.array([0, 2]), np.array([], dtype=int)])
    assert s.rows == 2 and s.texts("slate_target_indices") == ["0,2", ""]


def test_broadcast() -> None:
    m = ComponentMatrix(3)
    m.declare("model", DataType.STRING)
    m.broadcast("model", "ctr_v1")
    assert m.texts("model") == ["ctr_v1"] * 3
