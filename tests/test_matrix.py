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
    assert filled.shape == (3, 4)
    assert filled[1].sum() == 0


def test_request_text_is_a_fallback_for_missing_typed_cells() -> None:
    m = ComponentMatrix(2)
    m.set_text("price", ["199", ""])  # request feature, text encoding
    m.declare("price", DataType.FP32)  # an FS feature of the same name
    values, valid = m.read("price")
    assert valid.tolist() == [True, False]
    assert values[0] == 199
    m.set_rows("price", [1], np.array([5.0], dtype=np.float32))
    m.set_rows("price", [0], np.array([7.0], dtype=np.float32))
    assert m.read("price")[0].tolist() == [7.0, 5.0]  # fetched values win


def test_conversion_on_read() -> None:
    m = ComponentMatrix(3)
    m.declare("n", DataType.INT64)
    m.set_column("n", np.array([1, 2, 3]), np.array([True, False, True]))
    values, valid = m.read("n", DataType.FP32)
    assert values.dtype == np.float32
    assert valid.tolist() == [True, False, True]
    texts, tvalid = m.read("n", DataType.STRING)
    assert texts[0] == "1"
    assert not tvalid[1]


def test_string_column_and_text_parse_errors_are_invalid() -> None:
    m = ComponentMatrix(3)
    m.set_text("id", ["a", "", "c"])
    assert m.read("id")[1].tolist() == [True, False, True]
    m.set_text("age", ["3", "x", ""])
    values, valid = m.read("age", DataType.INT32)
    assert valid.tolist() == [True, False, False]
    assert values[0] == 3


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
    assert sub.rows == 2
    assert sub.read("v")[0].tolist() == [3, 1]
    s = SlateMatrix([np.array([0, 2]), np.array([], dtype=int)])
    assert s.rows == 2
    assert s.texts("slate_target_indices") == ["0,2", ""]


def test_broadcast() -> None:
    m = ComponentMatrix(3)
    m.declare("model", DataType.STRING)
    m.broadcast("model", "ctr_v1")
    assert m.texts("model") == ["ctr_v1"] * 3


# -- column blocks ----------------------------------------------------------------------------------
def _block_matrix(rows: int = 4, k: int = 3) -> tuple[ComponentMatrix, np.ndarray, list[str]]:
    m = ComponentMatrix(rows)
    names = [f"f{j}" for j in range(k)]
    for n in names:
        m.declare(n, DataType.FP32)
    values = np.arange(rows * k, dtype=np.float32).reshape(rows, k)
    m.set_block(names, values)
    return m, values, names


def test_block_columns_are_views_and_read_many_is_zero_copy() -> None:
    m, values, names = _block_matrix()
    assert np.shares_memory(m.column("f1").values, values)
    assert m.read("f1")[0].tolist() == [1, 4, 7, 10]
    got, valid = m.read_many(names[1:])
    assert np.shares_memory(got, values)
    assert got.shape == (4, 2)
    assert valid.all()
    assert got.tolist() == values[:, 1:].tolist()
    assert m.read_filled_many(names) is not None
    assert np.shares_memory(m.read_filled_many(names), values)
    # not consecutive in the block: stacked copies, same content
    got, _ = m.read_many(["f2", "f0"])
    assert not np.shares_memory(got, values)
    assert got.tolist() == values[:, [2, 0]].tolist()


def test_per_column_writes_after_a_block_write_copy_on_write() -> None:
    m, values, names = _block_matrix()
    before = values.copy()
    m.set_rows("f1", [0], np.array([99.0], dtype=np.float32))
    assert np.array_equal(values, before)  # the block is never written
    assert m.read("f1")[0].tolist() == [99, 4, 7, 10]
    assert m.column("f1").block is None
    assert m.column("f0").block is not None
    got, valid = m.read_many(names)  # f1 left the block: stacked, with the new cell
    assert not np.shares_memory(got, values)
    assert got[:, 1].tolist() == [99, 4, 7, 10]
    assert valid.all()
    assert np.shares_memory(m.read_many(["f2"])[0], values)  # the rest still read the block
    m.set_column("f2", np.zeros(4, dtype=np.float32), np.array([True, False, True, True]))
    assert np.array_equal(values, before)
    assert m.read("f2")[1].tolist() == [True, False, True, True]
    m.broadcast("f0", 5.0)
    assert np.array_equal(values, before)
    assert m.read("f0")[0].tolist() == [5.0] * 4
    assert m.read_many(names)[0].tolist() == [[5, 99, 0], [5, 4, 0], [5, 7, 0], [5, 10, 0]]


def test_block_partial_validity_and_text_fallback() -> None:
    m = ComponentMatrix(3)
    m.set_text("b", ["", "", "42"])  # request text for b: a fallback for its missing cells
    for n in ("a", "b"):
        m.declare(n, DataType.FP32)
    values = np.array([[1, 2], [3, 4], [5, 6]], dtype=np.float32)
    valid = np.array([[True, True], [False, True], [True, False]])
    m.set_block(["a", "b"], values, valid)
    assert m.read("a")[1].tolist() == [True, False, True]
    got, ok = m.read_many(["a", "b"])
    assert ok.tolist() == [[True, True], [False, True], [True, True]]
    assert got[2, 1] == 42
    assert m.read_filled_many(["a", "b"]).tolist() == [[1, 2], [0, 4], [5, 42]]
    assert np.array_equal(values, [[1, 2], [3, 4], [5, 6]])
    # one mask shared by all columns; no text: a view even with missing cells
    m2, _, names = _block_matrix(3, 2)
    m2.set_block(names, np.ones((3, 2), dtype=np.float32), np.array([True, False, True]))
    got, ok = m2.read_many(names)
    assert ok.tolist() == [[True, True], [False, False], [True, True]]
    assert m2.read_filled_many(names).tolist() == [[1, 1], [0, 0], [1, 1]]


def test_block_conversion_on_read_and_errors() -> None:
    m = ComponentMatrix(2)
    for n in ("x", "y"):
        m.declare(n, DataType.INT64)
    m.set_block(["x", "y"], np.array([[1, 2], [3, 4]]), np.array([[True, False], [True, True]]))
    got, ok = m.read_many(["x", "y"], DataType.FP32)
    assert got.dtype == np.float32
    assert got.tolist() == [[1, 2], [3, 4]]
    assert ok[0].tolist() == [True, False]
    texts, tok = m.read_many(["x", "y"], DataType.STRING)
    assert texts.tolist() == [["1", ""], ["3", "4"]]
    assert not tok[0, 1]
    assert m.read_filled_many(["x", "y"], DataType.STRING)[0].tolist() == ["1", ""]
    m.declare("s", DataType.STRING)
    with pytest.raises(DataTypeError):
        m.set_block(["x", "s"], np.zeros((2, 2)))
    m.declare("v", DataType.FP32_VECTOR)
    m.set_column("v", np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(DataTypeError, match="'v'"):
        m.read_many(["x", "v"])
    with pytest.raises(KeyError):
        m.read_many(["nope"])


def test_take_of_a_block_backed_matrix_keeps_the_block() -> None:
    m, values, names = _block_matrix()
    m.set_rows("f0", [3], np.array([-1.0], dtype=np.float32))  # f0 detached before take
    sub = m.take([3, 1])
    got, ok = sub.read_many(names[1:])
    assert got.tolist() == [[10, 11], [4, 5]]
    assert ok.all()
    assert sub.column("f1").block is sub.column("f2").block is not None
    assert not np.shares_memory(got, values)  # take() gathers a copy of the block
    assert np.shares_memory(got, sub.column("f1").block.values)  # type: ignore[union-attr]
    assert sub.read("f0")[0].tolist() == [-1, 3]
    assert sub.column("f0").block is None
    assert sub.read_many(names)[0].tolist() == [[-1, 10, 11], [3, 4, 5]]


def test_read_many_across_blocks_and_plain_columns() -> None:
    m = ComponentMatrix(2)
    names = ["a0", "a1", "b0", "b1", "p", "c0"]
    for n in names:
        m.declare(n, DataType.FP32)
    a = np.array([[1, 2], [3, 4]], dtype=np.float32)
    b = np.array([[5, 6], [7, 8]], dtype=np.float32)
    m.set_block(["a0", "a1"], a)
    m.set_block(["b0", "b1"], b, np.array([[True, False], [True, True]]))
    m.set_column("p", np.array([9, 10], dtype=np.float32))
    m.set_block(["c0"], np.array([[11], [12]], dtype=np.float32))
    got, ok = m.read_many(names)
    assert got.tolist() == [[1, 2, 5, 6, 9, 11], [3, 4, 7, 8, 10, 12]]
    assert ok.tolist() == [[True, True, True, False, True, True], [True] * 6]
    assert m.read_many(["a1", "b0"])[0].tolist() == [[2, 5], [4, 7]]  # a block's tail, then another block
    assert m.read_filled_many(["b1", "p"]).tolist() == [[0, 9], [8, 10]]


def test_block_rewrite_and_undeclared_column() -> None:
    m, _, names = _block_matrix(2, 2)
    first = m.set_block(names, np.array([[1, 2], [3, 4]], dtype=np.float32))
    second = m.set_block(names, np.array([[5, 6], [7, 8]], dtype=np.float32))
    assert first.detached == 2  # both columns left the first block for the second
    assert second.detached == 0
    assert m.read_many(names)[0].tolist() == [[5, 6], [7, 8]]
    with pytest.raises(KeyError, match="'missing'"):
        m.set_block([names[0], "missing"], np.zeros((2, 2), dtype=np.float32))


def test_read_blocks_only_when_every_name_is_a_block_column() -> None:
    m = ComponentMatrix(2)
    for n in ("a0", "a1", "b0", "b1", "c"):
        m.declare(n, DataType.FP32)
    m.set_block(["a0", "a1"], np.array([[1, 2], [3, 4]], dtype=np.float32))
    m.set_block(["b0", "b1"], np.array([[5, 6], [7, 8]]), np.array([[True, False], [True, True]]))
    m.set_column("c", np.array([9, 10], dtype=np.float32))
    values, valid = m.read_blocks(["a0", "a1", "b0"]) or (None, None)
    assert values is not None
    assert values.tolist() == [[1, 2, 5], [3, 4, 7]]
    assert valid.all()
    filled = m.read_blocks(["a1", "b0", "b1"], DataType.FP64, filled=True)
    assert filled is not None
    assert filled[0].dtype == np.float64
    assert filled[0].tolist() == [[2, 5, 0], [4, 7, 8]]
    assert filled[0].tolist() == m.read_filled_many(["a1", "b0", "b1"], DataType.FP64).tolist()
    assert m.read_blocks(["a0", "c"]) is None  # c is a column of its own
    assert m.read_blocks(["a0", "nope"]) is None
    reordered = m.read_blocks(["a1", "a0"])  # one piece per block run
    assert reordered is not None
    assert reordered[0].tolist() == [[2, 1], [4, 3]]
    assert m.read_blocks([]) is None
    m.set_column("a1", np.zeros(2, dtype=np.float32))  # a1 leaves its block
    assert m.read_blocks(["a0", "a1"]) is None


def test_declared_columns_are_stand_ins_until_asked_for_and_behave_like_declared_ones() -> None:
    """declare_missing (the feature initializer's) makes no Column per name: a name maps to its type,
    and ``set_block`` over such names to the block, until ``column()`` asks; every read and write gives
    what ``declare`` + the same writes give."""
    names = ("f0", "f1", "f2")
    decls = {"user_id": DataType.STRING, **dict.fromkeys(names, DataType.FP32), "s": DataType.INT64}
    plain, lazy = ComponentMatrix(3), ComponentMatrix(3)
    plain.set_text("user_id", "u1")
    lazy.set_text("user_id", "u1")
    for name, dtype in decls.items():
        plain.declare(name, dtype)
    assert lazy.declare_missing(decls) == ["user_id"]  # the names that existed, for declare()
    assert lazy.names == plain.names == ["user_id", "f0", "f1", "f2", "s"]
    assert type(lazy._cols["f0"]) is DataType  # a stand-in, no Column yet
    values = np.arange(9, dtype=np.float32).reshape(3, 3)
    valid = np.array([[True, False, True], [True, True, True], [False, True, True]])
    blocks = [m.set_block(names, values, valid) for m in (plain, lazy)]
    assert lazy._cols["f1"] is blocks[1]  # the block stands in for its columns
    for m in (plain, lazy):
        assert m.read_blocks(names) is not None
        assert m.read_many(["f1", "f2"])[0].tolist() == [[1, 2], [4, 5], [7, 8]]
        assert m.read("f0")[1].tolist() == [True, True, False]
        assert m.read_filled_many(names).tolist() == [[0, 0, 2], [3, 4, 5], [0, 7, 8]]
        assert m.read("s")[1].tolist() == [False] * 3
    col = lazy.column("f1")  # materialised in place: attached to the block, same position
    assert (col.block, col._j) == (blocks[1], 1)
    assert lazy.names == plain.names
    assert lazy.column("f1") is col
    for m in (plain, lazy):
        m.set_rows("f2", [0], np.array([-1.0], dtype=np.float32))  # copy-on-write out of the block
    assert values[0, 2] == 2  # the caller's block array is never written
    assert lazy.read_many(names)[0].tolist() == plain.read_many(names)[0].tolist()
    again = lazy.set_block(names, values + 10)  # over a Column and block stand-ins: all leave the old
    assert blocks[1].detached == 3
    assert lazy.column("f0").block is again
    assert lazy.read_blocks(names)[0].tolist() == (values + 10).tolist()  # type: ignore[index]
    subs = [m.take([2, 0]) for m in (plain, lazy)]
    assert subs[1].read_many(["f0", "f1"])[0].tolist() == [[16, 17], [10, 11]]
    assert subs[1].read("s")[1].tolist() == subs[0].read("s")[1].tolist() == [False, False]
    assert [c.name for c in lazy] == plain.names
    assert all(c.rows == 3 for c in lazy)
    with pytest.raises(KeyError, match="'nope'"):
        lazy.column("nope")


def test_set_block_over_stand_ins_checks_what_set_block_over_columns_does() -> None:
    m = ComponentMatrix(2)
    decls = {"a": DataType.FP32, "b": DataType.FP32, "t": DataType.STRING, "v": DataType.FP32_VECTOR}
    m.declare_missing(decls)
    with pytest.raises(ValueError, match="repeated"):
        m.set_block(["a", "a"], np.zeros((2, 2), dtype=np.float32))
    with pytest.raises(DataTypeError, match="one fixed-width scalar type"):
        m.set_block(["a", "t"], np.zeros((2, 2)))
    with pytest.raises(DataTypeError, match="one fixed-width scalar type"):
        m.set_block(["v"], np.zeros((2, 1)))
    m2 = ComponentMatrix(2)
    m2.declare_missing({"a": DataType.FP32, "b": DataType.FP32})
    with pytest.raises(ValueError, match=r"values \(2, 3\)"):
        m2.set_block(["a", "b"], np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"valid \(3,\)"):
        m2.set_block(["a", "b"], np.zeros((2, 2)), np.ones(3, dtype=bool))
    block = m2.set_block(["a", "b"], np.array([[1, 2], [3, 4]]), np.array([True, False]))  # ints cast once
    assert block.values.dtype == np.float32
    assert m2.read("b")[1].tolist() == [True, False]


def test_set_block_on_declared_stand_ins_checks_every_call_alike() -> None:
    """The (names, type) checks set_block caches answer the second call as the first."""
    for _ in range(2):
        m = ComponentMatrix(2)
        m.declare_missing({"p": DataType.FP32, "q": DataType.FP32, "v": DataType.FP32_VECTOR})
        m.declare_missing({"w": DataType.FP32_VECTOR})
        with pytest.raises(ValueError, match="repeated column names"):
            m.set_block(("p", "p"), np.zeros((2, 2), dtype=np.float32))
        with pytest.raises(DataTypeError, match="one fixed-width scalar type"):
            m.set_block(("v", "w"), np.zeros((2, 2), dtype=np.float32))
        with pytest.raises(ValueError, match="valid"):
            m.set_block(("p", "q"), np.zeros((2, 2), dtype=np.float32), np.ones((2, 3), dtype=bool))
        with pytest.raises(ValueError, match="values"):
            m.set_block(("p", "q"), np.zeros((3, 2), dtype=np.float32), np.ones((3, 2), dtype=bool))
        block = m.set_block(("p", "q"), np.array([[1, 2], [3, 4]]), np.array([[True, False], [True, True]]))
        assert block.values.dtype == np.float32
        assert m.read("p")[0].tolist() == [1.0, 3.0]
        assert m.read("q")[1].tolist() == [False, True]
