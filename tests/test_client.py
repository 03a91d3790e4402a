"""inferflow_core.client against a real grpc.aio server (in-process, loopback): all four APIs, every
data type both ways (text and binary request encoding), inputs from lists / numpy / pandas, errors."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import numpy as np
import pytest

from inferflow_core.api import DataType
from inferflow_core.client import (
    AsyncInferflowClient,
    InferflowClient,
    PairwiseResult,
    PredictionError,
    RPCError,
)
from inferflow_core.testing.server import running_server
from tests.client_support import ECHO, SAMPLES, TREE, _runtime

pytestmark = pytest.mark.integration


def _expected(dt: DataType, values: Any) -> Any:
    if dt.scalar in (DataType.FP8E5M2, DataType.FP8E4M3, DataType.FP16, DataType.FP32):
        return np.asarray(values, dtype=np.float32).tolist()
    return values


@pytest.mark.parametrize(("encoding", "transport"), [("text", "grpc"), ("binary", "grpc"), ("text", "http")])
async def test_every_dtype_round_trips(encoding: str, transport: str) -> None:
    features = {name: values for name, values in zip(ECHO, SAMPLES.values(), strict=True)}
    types = {name: dt for name, dt in zip(ECHO, SAMPLES, strict=True)}
    async with running_server(_runtime(encoding), TREE) as srv:
        target = srv.address if transport == "grpc" else f"127.0.0.1:{srv.http_port}"
        with InferflowClient(target, encoding=encoding, raise_errors=True, transport=transport) as client:
            res = await asyncio.to_thread(
                client.pointwise,
                "echo",
                ["954", "614"],
                features=features,
                types=types,
                context={"user_id": "u1"},
            )
    assert res.ok
    assert len(res) == 2
    assert res.dtypes["score"] is DataType.FP32
    rows = res.to_dicts()
    assert [r["catalog_id"] for r in rows] == ["954", "614"]
    assert [r["user_id"] for r in rows] == ["u1", "u1"]
    for name, dt in types.items():
        assert res.dtypes[name] is dt, name
        got = [r[name] for r in rows]
        want = _expected(dt, SAMPLES[dt])
        if dt.scalar in (DataType.FP32, DataType.FP16, DataType.FP8E4M3, DataType.FP8E5M2):
            np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float), rtol=1e-6)
        else:
            assert got == want, name
    np.testing.assert_array_equal(res.to_numpy()["f_int32_vector"], np.array([[70000, 70000], [-2, -2]]))


async def test_types_inferred_from_numpy_and_missing_values() -> None:
    features = {
        "f_fp32": np.array([1.5, 2.5], dtype=np.float32),
        "f_int64": [7, None],
        "f_fp32_vector": np.ones((2, 3), dtype=np.float32),
        "f_string": ["x", "y"],
    }
    async with running_server(_runtime(), TREE) as srv:
        with InferflowClient(srv.address) as client:
            res = await asyncio.to_thread(client.pointwise, "echo", np.array([1, 2]), features=features)
    assert res.dtypes["f_fp32"] is DataType.FP32
    assert res.dtypes["f_int64"] is DataType.INT64
    assert res.dtypes["f_fp32_vector"] is DataType.FP32_VECTOR
    assert res.valid["f_int64"].tolist() == [True, False]
    assert res.to_dicts()[1]["f_int64"] is None
    assert np.isnan(res.to_numpy()["score"]).sum() == 0
    assert res.to_numpy()["f_fp64"].tolist() == [None, None]  # never sent: missing (typed STRING)
    assert np.isnan(res.to_numpy()["f_fp32"]).sum() == 0
    assert res.to_numpy()["f_fp32_vector"].shape == (2, 3)


async def test_dataframe_in_and_out() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"id": ["a", "b", "c"], "f_fp64": [1.0, 2.0, 3.0], "f_int16": [1, 2, 3]})
    async with running_server(_runtime(), TREE) as srv:
        with InferflowClient(srv.address) as client:
            res = await asyncio.to_thread(client.pointwise, "echo", frame, types={"f_int16": "int16"})
    df = res.to_pandas()
    assert list(df["catalog_id"]) == ["a", "b", "c"]
    assert df["f_fp64"].tolist() == [1.0, 2.0, 3.0]
    assert df["f_int16"].tolist() == [1, 2, 3]
    assert res.dtypes["f_int16"] is DataType.INT16
    assert df["f_int8"].isna().all()  # an integer column with missing cells is nullable


async def test_pandas_na_and_nan_are_missing() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"f_fp32": [1.0, np.nan, 2.0], "f_string": ["x", np.nan, "z"]})  # as read_csv gives
    async with running_server(_runtime(), TREE) as srv:
        with InferflowClient(srv.address) as client:
            res = await asyncio.to_thread(
                client.pointwise, "echo", pd.Series(["a", "b", "c"]), features=frame, types={"f_fp32": "fp32"}
            )
    assert res.valid["f_fp32"].tolist() == [True, False, True]
    assert [r["f_string"] for r in res.to_dicts()] == ["x", None, "z"]
    assert res["f_fp32"][0] == 1.0
    assert np.isnan(res["f_fp32"][1])


async def test_pairwise_slatewise_retrieve_sync_and_async() -> None:
    async with running_server(_runtime(), TREE) as srv:
        with InferflowClient(srv.address, raise_errors=True) as client:
            pairs = await asyncio.to_thread(client.pairwise, "slate", ["1", "2", "3"], [(0, 1), (2, 0)])
            slates = await asyncio.to_thread(client.slatewise, "slate", ["1", "2", "3"], [[0, 1, 2], [1]])
            legacy = await asyncio.to_thread(
                client.retrieve_model_score,
                "echo",
                {"catalog_id": ["1", "2"], "user_id": "u9"},
                features={"f_string": ["p", "q"]},
            )
        async with AsyncInferflowClient(srv.address, raise_errors=True) as aclient:
            apoint = await aclient.pointwise("echo", ["1"], context={"user_id": "u1"})
            apairs = await aclient.pairwise("slate", ["1", "2"], [(0, 1)])
            aslates = await aclient.slatewise("slate", ["1", "2"], [[0, 1]])
            alegacy = await aclient.retrieve_model_score("echo", {"catalog_id": ["1"]})
    assert isinstance(pairs, PairwiseResult)
    assert len(pairs) == 2
    assert pairs.pairs.to_numpy()["slate_score"].tolist() == [2.0, 2.0]
    assert pairs.targets.to_numpy()["score"].tolist() == [0.5, 0.5, 0.5]
    assert [r["slate_score"] for r in slates.to_dicts()] == [3.0, 1.0]
    assert legacy.names[:2] == ["catalog_id", "score"]
    assert legacy.to_dicts()[1]["catalog_id"] == "2"
    assert legacy.to_dicts()[0]["user_id"] == "u9"
    assert legacy.to_dicts()[0]["score"] == "0.5"
    assert [r["f_string"] for r in legacy.to_dicts()] == ["p", "q"]
    assert apoint.to_dicts()[0]["score"] == 0.5
    assert apoint.to_dicts()[0]["user_id"] == "u1"
    assert apairs.to_dicts() == [{"slate_score": 2.0}]
    assert aslates.slates.to_dicts() == [{"slate_score": 2.0}]
    assert alegacy.to_dicts()[0]["catalog_id"] == "1"


async def test_errors_surface_or_raise() -> None:
    async with running_server(_runtime(), TREE) as srv:
        with InferflowClient(srv.address) as client:
            res = await asyncio.to_thread(client.pointwise, "broken", ["1", "2"])
            assert not res.ok
            assert "broken" in res.request_error
            assert all("broken" in e for e in res.errors)
            assert res.to_dicts()[0] == {"catalog_id": "1", "score": 1.0, "bad": None}
            with pytest.raises(PredictionError, match="broken") as info:
                await asyncio.to_thread(client.pointwise, "broken", ["1"], raise_errors=True)
            assert info.value.result.request_error
            # a value that does not decode as its declared type: that target's error, not a zero
            bad = await asyncio.to_thread(
                client.pointwise,
                "echo",
                ["1", "2"],
                features={"f_int8": ["1", "x"]},
                types={"f_int8": "int8"},
            )
            assert bad.errors[0] == ""
            assert "f_int8" in bad.errors[1]
            assert bad.request_error
            with pytest.raises(RPCError) as rpc:
                await asyncio.to_thread(client.pointwise, "no_such_model", ["1"])
            assert rpc.value.code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)
            with pytest.raises(ValueError, match="2 values for 3 rows"):
                client.pointwise("echo", ["1", "2", "3"], features={"f_fp32": [1.0, 2.0]})
    with InferflowClient("127.0.0.1:1", timeout=2) as dead, pytest.raises(RPCError) as down:
        dead.pointwise("echo", ["1"])
    assert down.value.code is grpc.StatusCode.UNAVAILABLE


def test_binary_encoding_rejects_unparseable_text_locally() -> None:
    with (
        InferflowClient("127.0.0.1:1", encoding="binary") as client,
        pytest.raises(ValueError, match="row 1"),
    ):
        client.pointwise("m", ["1", "2"], features={"p": ["1.5", "abc"]}, types={"p": "fp32"})


async def test_http_transport_answers_like_grpc() -> None:
    """transport="http": the same results for the four APIs, the same errors (RPCError with its code)."""
    async with running_server(_runtime(), TREE) as srv:
        http_target = f"127.0.0.1:{srv.http_port}"
        calls: list[tuple[str, tuple, dict]] = [
            (
                "pointwise",
                ("echo", ["1", "2"]),
                {"context": {"user_id": "u1"}, "features": {"f_fp32": [1.5, 2.5]}},
            ),
            ("pairwise", ("slate", ["1", "2", "3"], [(0, 1), (2, 0)]), {}),
            ("slatewise", ("slate", ["1", "2", "3"], [[0, 1, 2], [1]]), {}),
            ("retrieve_model_score", ("echo", {"catalog_id": ["1", "2"]}), {"metadata": {"user-id": "u7"}}),
            ("pointwise", ("broken", ["1"]), {}),
        ]
        with (
            InferflowClient(srv.address) as grpc_client,
            InferflowClient(http_target, transport="http") as hc,
        ):
            for name, args, kw in calls:
                want = await asyncio.to_thread(getattr(grpc_client, name), *args, **kw)
                got = await asyncio.to_thread(getattr(hc, name), *args, **kw)
                assert got.to_dicts() == want.to_dicts(), name
                assert got.request_error == want.request_error, name
            for client in (grpc_client, hc):
                with pytest.raises(RPCError) as rpc:
                    await asyncio.to_thread(client.pointwise, "no_such_model", ["1"])
                assert rpc.value.code is grpc.StatusCode.INVALID_ARGUMENT
                assert rpc.value.details == "model config not found or invalid for id: no_such_model"
        async with AsyncInferflowClient(http_target, transport="http", raise_errors=True) as aclient:
            results = await asyncio.gather(*(aclient.pointwise("echo", [str(i)]) for i in range(8)))
            assert [r.to_dicts()[0]["catalog_id"] for r in results] == [str(i) for i in range(8)]
            slates = await aclient.slatewise("slate", ["1", "2"], [[0, 1]])
            assert slates.slates.to_dicts() == [{"slate_score": 2.0}]
    with InferflowClient("127.0.0.1:1", timeout=2, transport="http") as dead, pytest.raises(RPCError) as down:
        dead.pointwise("echo", ["1"])
    assert down.value.code is grpc.StatusCode.UNAVAILABLE
    with pytest.raises(ValueError, match="transport"):
        InferflowClient("127.0.0.1:1", transport="carrier-pigeon")


async def test_every_dtype_over_http_json_matches_grpc() -> None:
    """The JSON form in and out (blocks, vectors, FP8/FP16, strings, bools) gives what gRPC gives."""
    import http.client

    features = {name: values for name, values in zip(ECHO, SAMPLES.values(), strict=True)}
    types = {name: dt.wire_name for name, dt in zip(ECHO, SAMPLES, strict=True)}
    doc = {"targets": ["954", "614"], "features": features, "types": types, "context": {"user_id": "u1"}}

    def post(port: int) -> dict[str, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request(
            "POST", "/v1/models/echo/pointwise", json.dumps(doc), {"Content-Type": "application/json"}
        )
        resp = conn.getresponse()
        assert resp.status == 200
        return json.loads(resp.read())  # type: ignore[no-any-return]

    async with running_server(_runtime(), TREE) as srv:
        with InferflowClient(srv.address, raise_errors=True) as client:
            want = await asyncio.to_thread(
                client.pointwise,
                "echo",
                ["954", "614"],
                features=features,
                types=types,
                context={"user_id": "u1"},
            )
        got = await asyncio.to_thread(post, srv.http_port)
    assert got["targets"] == want.to_dicts()
    assert got["target_errors"] == ["", ""]
    assert [s["data_type"] for s in got["target_output_schema"]] == [d.wire_name for _, d in want.schema]
