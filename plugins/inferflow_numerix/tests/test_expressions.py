"""The expression table: every operator, literals, token resolution order, every error rule, fp32 and
fp64, many rows — evaluated by the embedded evaluator and through the gRPC client against
``inferflow-numerix serve``, with identical results both ways."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from inferflow_numerix.client import NumerixClient
from inferflow_numerix.language import ExpressionError, parse
from inferflow_numerix.settings import NumerixSettings
from inferflow_numerix.wire import STRING, WireError

from inferflow_core.api import DataType
from inferflow_core.testing import write_config_dir

RNG = np.random.default_rng(7)
BIG_A, BIG_B, BIG_C = RNG.random(5000), RNG.random(5000), 1 + RNG.random(5000)
SPREAD = np.arange(101.0)[RNG.permutation(101)]


@dataclass
class Case:
    id: str
    expression: str
    columns: dict[str, list[float] | np.ndarray]
    expected: list[float] | np.ndarray | None = None
    error: str | None = None  # substring of the error message (names the token)
    extra: dict = field(default_factory=dict)


A3, B3 = [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]
CASES = [
    # binary operators (operand order: "a b -" is a - b)
    Case("add", "a b +", {"a": A3, "b": B3}, [5, 7, 9]),
    Case("sub_order", "b a -", {"a": A3, "b": B3}, [3, 3, 3]),
    Case("mul", "a b *", {"a": A3, "b": B3}, [4, 10, 18]),
    Case("div", "a b /", {"a": A3, "b": B3}, [0.25, 0.4, 0.5]),
    Case("pow", "a b ^", {"a": [2.0, 3.0, 4.0], "b": [3.0, 0.5, -1.0]}, [8, math.sqrt(3), 0.25]),
    Case("gt", "a b >", {"a": [1.0, 5.0, 3.0], "b": [2.0, 2.0, 3.0]}, [0, 1, 0]),
    Case("lt", "a b <", {"a": [1.0, 5.0, 3.0], "b": [2.0, 2.0, 3.0]}, [1, 0, 0]),
    Case("ge", "a b >=", {"a": [1.0, 5.0, 3.0], "b": [2.0, 2.0, 3.0]}, [0, 1, 1]),
    Case("le", "a b <=", {"a": [1.0, 5.0, 3.0], "b": [2.0, 2.0, 3.0]}, [1, 0, 1]),
    Case("eq", "a b ==", {"a": [1.0, 5.0, 3.0], "b": [2.0, 2.0, 3.0]}, [0, 0, 1]),
    Case("min", "a b min", {"a": [1.0, 5.0, -3.0], "b": [2.0, 2.0, 3.0]}, [1, 2, -3]),
    Case("max", "a b max", {"a": [1.0, 5.0, -3.0], "b": [2.0, 2.0, 3.0]}, [2, 5, 3]),
    Case("and", "a b &", {"a": [0.0, 1.0, 1.0, 0.0], "b": [0.0, 0.0, 1.0, 1.0]}, [0, 0, 1, 0]),
    Case("or", "a b |", {"a": [0.0, 1.0, 1.0, 0.0], "b": [0.0, 0.0, 1.0, 1.0]}, [0, 1, 1, 1]),
    # unary operators
    Case("exp", "a exp", {"a": [0.0, 1.0, -1.0]}, [1, math.e, 1 / math.e]),
    Case("log", "a log", {"a": [1.0, math.e, 10.0]}, [0, 1, math.log(10)]),
    Case("abs", "a abs", {"a": [-1.5, 0.0, 2.0]}, [1.5, 0, 2]),
    Case("norm_min_max", "a norm_min_max", {"a": [2.0, 4.0, 6.0, 10.0]}, [0, 0.25, 0.5, 1]),
    Case("norm_min_max_flat", "a norm_min_max", {"a": [3.0, 3.0]}, [0, 0]),
    Case("percentile_rank_ties", "a percentile_rank", {"a": [30.0, 10.0, 20.0, 20.0]}, [1, 0, 0.5, 0.5]),
    Case("percentile_rank_one", "a percentile_rank", {"a": [42.0]}, [0]),
    Case("norm_percentile_0_99", "a norm_percentile_0_99", {"a": SPREAD}, np.minimum(SPREAD, 99) / 99),
    Case("norm_percentile_5_95", "a norm_percentile_5_95", {"a": SPREAD}, (np.clip(SPREAD, 5, 95) - 5) / 90),
    Case("norm_of_literal", "2 norm_min_max a +", {"a": A3}, A3),
    # literals
    Case("literal_int", "a 2 *", {"a": A3}, [2, 4, 6]),
    Case("literal_decimal", "a 0.25 +", {"a": A3}, [1.25, 2.25, 3.25]),
    Case("literal_negative", "a -1.5 *", {"a": A3}, [-1.5, -3, -4.5]),
    Case("minus_then_literal", "a -1 -", {"a": A3}, [2, 3, 4]),
    Case("literal_only", "3", {"a": A3}, [3, 3, 3]),
    Case(
        "s1_final",
        "pctr price 2 + log /",
        {"pctr": [0.5, 0.2], "price": [1.0, 3.0]},
        [0.5 / math.log(3), 0.2 / math.log(5)],
    ),
    # token resolution order: binary op > unary op > literal > column name
    Case("literal_beats_column", "a 2 +", {"a": A3, "2": [100.0, 100.0, 100.0]}, [3, 4, 5]),
    Case("binary_beats_column", "a b min", {"a": A3, "b": B3, "min": [-9.0, -9.0, -9.0]}, [1, 2, 3]),
    Case("unary_beats_column", "a exp", {"a": [0.0], "exp": [5.0]}, [1]),
    Case("digits_in_identifier", "x2 1 +", {"x2": A3}, [2, 3, 4]),
    Case("column_named_like_number_part", "v1.5 2 *", {"v1.5": A3}, [2, 4, 6]),
    # errors (each names its token)
    Case("err_div_zero_one_row", "a b /", {"a": A3, "b": [1.0, 0.0, 2.0]}, error="'/'"),
    Case("err_log_zero", "a log", {"a": [1.0, 0.0]}, error="'log'"),
    Case("err_log_negative", "a log", {"a": [1.0, -2.0]}, error="non-positive"),
    Case("err_unknown_token", "a zz +", {"a": A3}, error="'zz'"),
    Case("err_exponent_not_literal", "a 1e3 +", {"a": A3}, error="'1e3'"),
    Case("err_underflow", "a + b", {"a": A3, "b": B3}, error="underflow at token '+'"),
    Case("err_underflow_unary", "log", {"a": A3}, error="'log'"),
    Case("err_leftover", "a b c +", {"a": A3, "b": B3, "c": A3}, error="left on the stack"),
    Case("err_and_not_boolean", "a b &", {"a": [0.0, 2.0], "b": [1.0, 1.0]}, error="'&'"),
    Case("err_empty", "   ", {"a": A3}, error="empty"),
    # many rows
    Case("many_rows", "a b * c + log", {"a": BIG_A, "b": BIG_B, "c": BIG_C}, np.log(BIG_A * BIG_B + BIG_C)),
    Case("many_rows_rank", "a percentile_rank", {"a": BIG_A}, np.argsort(np.argsort(BIG_A)) / 4999),
]
DTYPES = [DataType.FP32, DataType.FP64]


def _embedded(case: Case, dt: DataType) -> np.ndarray:
    rows = len(next(iter(case.columns.values())))
    cols = {k: np.asarray(v, dtype=dt.numpy_dtype) for k, v in case.columns.items()}
    return parse(case.expression).evaluate(cols, rows, dt.numpy_dtype)


def _check(case: Case, dt: DataType, got: np.ndarray) -> None:
    assert got.dtype == dt.numpy_dtype
    rtol = 2e-6 if dt is DataType.FP32 else 1e-12
    np.testing.assert_allclose(got, np.asarray(case.expected, dtype=np.float64), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dt", DTYPES, ids=["fp32", "fp64"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_embedded(case: Case, dt: DataType) -> None:
    if case.error:
        with pytest.raises(ExpressionError, match=None) as info:
            _embedded(case, dt)
        assert case.error in str(info.value)
    else:
        _check(case, dt, _embedded(case, dt))


def test_result_never_aliases_an_input() -> None:
    a = np.array([1.0, 2.0], dtype=np.float32)
    out = parse("a").evaluate({"a": a}, 2, np.float32)
    out[0] = 99
    assert a[0] == 1.0


# ----------------------------------------------------------------------------- remote: the same table
@pytest.fixture(scope="module")
def server(start_numerix_server, tmp_path_factory) -> int:
    root: Path = tmp_path_factory.mktemp("numerix_cfg")
    tree = {f"numerix/expression-config/{c.id}": json.dumps({"expression": c.expression}) for c in CASES}
    write_config_dir(root, tree)
    return start_numerix_server(root)


async def _remote(port: int, case: Case, dt: DataType, fmt: str = "byte") -> np.ndarray:
    client = NumerixClient(NumerixSettings(host="127.0.0.1", port=port, plaintext=True))
    try:
        names = list(case.columns)
        rows = len(case.columns[names[0]])
        cols = [np.asarray(case.columns[n], dtype=dt.numpy_dtype) for n in names]
        ids = [f"id{i}" for i in range(rows)]
        return await client.compute(case.id, ["catalog_id", *names], ids, cols, dt, timeout=10, fmt=fmt)
    finally:
        await client.close()


@pytest.mark.integration
@pytest.mark.parametrize("dt", DTYPES, ids=["fp32", "fp64"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_remote_matches_embedded(server: int, case: Case, dt: DataType) -> None:
    if case.error:
        with pytest.raises(WireError) as info:
            await _remote(server, case, dt)
        assert case.error in str(info.value)
        with pytest.raises(ExpressionError) as local:
            _embedded(case, dt)
        assert str(local.value) in str(info.value)
    else:
        got = await _remote(server, case, dt)
        _check(case, dt, got)
        np.testing.assert_array_equal(got, _embedded(case, dt))  # bit-identical both ways


@pytest.mark.integration
@pytest.mark.parametrize("dt", DTYPES, ids=["fp32", "fp64"])
async def test_remote_string_matrix_format(server: int, dt: DataType) -> None:
    case = next(c for c in CASES if c.id == "s1_final")
    got = await _remote(server, case, dt, fmt=STRING)
    _check(case, dt, got)


@pytest.mark.integration
async def test_remote_unknown_compute_id_and_bad_cells(server: int) -> None:
    case = Case("no_such_id", "a", {"a": A3})
    with pytest.raises(WireError, match="no expression configured for compute_id 'no_such_id'"):
        await _remote(server, case, DataType.FP32)
    from inferflow_numerix._proto import numerix_pb2 as pb

    client = NumerixClient(NumerixSettings(host="127.0.0.1", port=server, plaintext=True))
    try:
        bad = pb.NumerixRequestProto(
            entity_score_data=pb.EntityScoreData(
                schema=["id", "a", "b"],
                compute_id="add",
                data_type="fp32",
                entity_scores=[pb.Score(byte_data=pb.ByteList(values=[b"x", b"\0\0\x80?", b"\0\0"]))],
            )
        )
        resp = await client._get_stub().Compute(bad, timeout=5)
        assert resp.WhichOneof("response") == "error"
        assert "column 'b' row 0: 2 bytes" in resp.error.message
    finally:
        await client.close()


@pytest.mark.integration
async def test_server_hot_reloads_expressions(start_numerix_server, tmp_path: Path) -> None:
    import asyncio

    write_config_dir(tmp_path, {"numerix/expression-config/x": json.dumps({"expression": "a 1 +"})})
    port = start_numerix_server(tmp_path)
    case = Case("x", "", {"a": A3})
    np.testing.assert_array_equal(await _remote(port, case, DataType.FP32), [2, 3, 4])
    write_config_dir(tmp_path, {"numerix/expression-config/x": json.dumps({"expression": "a 10 *"})})
    for _ in range(50):  # bounded: the server polls every 0.2 s
        got = await _remote(port, case, DataType.FP32)
        if got[0] == 10:
            break
        await asyncio.sleep(0.1)
    np.testing.assert_array_equal(got, [10, 20, 30])


@pytest.mark.parametrize("dt", DTYPES, ids=["fp32", "fp64"])
@pytest.mark.parametrize("rows", [0, 1, 200])
def test_direct_request_encoding_equals_protobuf(dt: DataType, rows: int) -> None:
    from inferflow_numerix._proto import numerix_pb2 as pb
    from inferflow_numerix.wire import encode_request, encode_request_bytes

    ids = [f"id-{i}" * (i % 40) for i in range(rows)]  # incl. empty ids and ids > 127 bytes
    cols = [RNG.standard_normal(rows), np.zeros(rows), np.full(rows, -0.0)]
    schema = ["catalog_id", "a", "b", "c"]
    fast = pb.NumerixRequestProto.FromString(encode_request_bytes("s1", schema, ids, cols, dt))
    assert fast == encode_request("s1", schema, ids, cols, dt)


@pytest.mark.parametrize("dt", DTYPES, ids=["fp32", "fp64"])
@pytest.mark.parametrize(
    "ids",
    [
        [f"{i * 7919}" for i in range(200)],  # short ASCII ids: laid out by numpy
        ["", "a", "b" * 90],  # an empty id, and the longest that fits one-byte lengths
        ["é", "ü-1"],  # non-ASCII: written per row
        ["x" * 130],  # a length over one byte: written per row
    ],
    ids=["ascii", "edges", "utf8", "long"],
)
def test_direct_request_bytes_equal_protobuf_bytes(dt: DataType, ids: list[str]) -> None:
    from inferflow_numerix.wire import encode_request, encode_request_bytes

    cols = [RNG.standard_normal(len(ids)), np.arange(len(ids), dtype=np.float64)]
    schema = ["catalog_id", "a", "b"]
    assert encode_request_bytes("s1", schema, ids, cols, dt) == (
        encode_request("s1", schema, ids, cols, dt).SerializeToString()
    )


def _response(dt: DataType, ids: list[str], scores: np.ndarray, fmt: str = "byte") -> bytes:
    from inferflow_numerix._proto import numerix_pb2 as pb

    rows = []
    for ident, score in zip(ids, scores, strict=True):
        if fmt == "byte":
            cell = np.asarray(score, dtype=dt.numpy_dtype).astype(dt.numpy_dtype.newbyteorder("<")).tobytes()
            rows.append(pb.Score(byte_data=pb.ByteList(values=[ident.encode(), cell])))
        else:
            rows.append(pb.Score(string_data=pb.StringList(values=[ident, repr(float(score))])))
    data = pb.ComputationScoreData(schema=["catalog_id", "score"], computation_scores=rows)
    return pb.NumerixResponseProto(computation_score_data=data).SerializeToString()


@pytest.mark.parametrize("dt", DTYPES, ids=["fp32", "fp64"])
@pytest.mark.parametrize(
    "ids", [[str(i) for i in range(200)], ["", "é" * 40], ["x" * 200]], ids=["short", "edges", "long"]
)
@pytest.mark.parametrize("fmt", ["byte", "string"])
def test_response_bytes_decode_like_the_message(dt: DataType, ids: list[str], fmt: str) -> None:
    from inferflow_numerix._proto import numerix_pb2 as pb
    from inferflow_numerix.wire import _byte_scores, decode_response, decode_response_bytes

    raw = _response(dt, ids, RNG.standard_normal(len(ids)), fmt)
    fast_path = fmt == "byte" and len(ids[-1]) < 100  # else the full parse answers
    assert (_byte_scores(raw, len(ids), dt.itemsize) is not None) == fast_path
    fast = decode_response_bytes(raw, len(ids), dt)
    slow = decode_response(pb.NumerixResponseProto.FromString(raw), len(ids), dt)
    assert fast.dtype == slow.dtype == dt.numpy_dtype
    assert fast.tobytes() == slow.tobytes()


def test_bad_response_bytes_are_wire_errors() -> None:
    from inferflow_numerix._proto import numerix_pb2 as pb
    from inferflow_numerix.wire import WireError, decode_response_bytes

    dt = DataType.FP32
    good = _response(dt, ["a", "b"], np.ones(2))
    error = pb.NumerixResponseProto(error=pb.Error(message="no such compute id")).SerializeToString()
    short = pb.NumerixResponseProto(
        computation_score_data=pb.ComputationScoreData(
            computation_scores=[pb.Score(byte_data=pb.ByteList(values=[b"a"]))] * 2
        )
    ).SerializeToString()
    wide = _response(DataType.FP64, ["a", "b"], np.ones(2))  # 8-byte scores where 4 are expected
    cases = {
        b"\xff\xff\xff": "does not parse",
        error: "no such compute id",
        b"": "empty response",
        good: "2 scores for 3 rows",
        short: "without its",
        wide: "16 score bytes for 2 fp32 rows",
    }
    for raw, message in cases.items():
        rows = 3 if raw is good else 2
        with pytest.raises(WireError, match=message):
            decode_response_bytes(raw, rows, dt)
