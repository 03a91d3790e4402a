"""The four RPCs on a real grpc.aio server over loopback, called through stubs built from our protos.

The models' DAGs use the probe component of tests/helpers.py, registered through a test plugin.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from inferflow_core._proto import inferflow_pb2, inferflow_pb2_grpc, predict_pb2, predict_pb2_grpc
from inferflow_core.testing.server import running_server
from tests.helpers import TRACE
from tests.serving_support import FP32, POINT, PREFIX, STRING, TREE, Recorder, make_runtime, point_request

pytestmark = pytest.mark.integration


@pytest.fixture
async def srv():
    recorder = Recorder()
    async with running_server(make_runtime(recorder), TREE) as server:
        server.recorder = recorder  # type: ignore[attr-defined]
        yield server
    assert recorder.stopped


def f32(x: float) -> bytes:
    return np.float32(x).tobytes()


async def test_pointwise_decodes_by_type_and_reports_bad_values(srv) -> None:
    stub = predict_pb2_grpc.PredictStub(srv.channel)
    resp = await stub.InferPointWise(point_request(), timeout=5)
    schema = [(s.name, s.data_type) for s in resp.target_output_schema]
    assert schema == [("catalog_id", STRING), ("score", FP32), ("price_x2", FP32), ("price", FP32)]
    rows = [list(t.output_values) for t in resp.target_scores]
    assert rows[0] == [b"100", f32(0.5), f32(5.0), f32(2.5)]
    assert rows[1] == [b"101", f32(0.5), b"", b""]  # empty text = missing, not an error
    assert resp.target_scores[1].error == ""
    assert rows[2] == [b"102", f32(0.5), b"", b""]  # "abc" is not FP32: an error, not a zero
    assert "price" in resp.target_scores[2].error
    assert "DataTypeFP32" in resp.target_scores[2].error
    assert "do not decode" in resp.request_error
    served = srv.recorder.seen[-1]
    assert srv.recorder.started
    assert served.ctx.model_id == "point"
    assert served.ctx.request.tracking_id == "trk"
    assert srv.recorder.host.metrics is not None  # the observer got the process metrics at start


async def test_predict_service_name_is_served_too(srv) -> None:
    stub = predict_pb2_grpc.PredictServiceStub(srv.channel)
    resp = await stub.InferPointWise(point_request(prices=(b"1",)), timeout=5)
    assert list(resp.target_scores[0].output_values) == [b"100", f32(0.5), f32(2.0), f32(1.0)]
    assert resp.request_error == ""


async def test_binary_value_encoding() -> None:
    async with running_server(make_runtime(request_value_encoding="binary"), TREE) as server:
        stub = predict_pb2_grpc.PredictStub(server.channel)
        resp = await stub.InferPointWise(point_request(prices=(f32(1.5), b"\x00\x01")), timeout=5)
        assert list(resp.target_scores[0].output_values)[2] == f32(3.0)
        assert "price" in resp.target_scores[1].error  # 2 bytes is not an FP32 cell


async def test_pairwise(srv) -> None:
    stub = predict_pb2_grpc.PredictStub(srv.channel)
    req = predict_pb2.PairWiseRequest(
        model_config_id="slate",
        targets=[predict_pb2.Target(id=str(i)) for i in range(3)],
        pairs=[
            predict_pb2.TargetPair(first_target_index=0, second_target_index=1),
            predict_pb2.TargetPair(first_target_index=2, second_target_index=0),
        ],
    )
    resp = await stub.InferPairWise(req, timeout=5)
    assert [(s.name, s.data_type) for s in resp.pair_output_schema] == [("slate_score", FP32)]
    assert [list(p.output_values) for p in resp.pair_scores] == [[f32(2.0)], [f32(2.0)]]
    assert [s.name for s in resp.target_output_schema] == ["catalog_id", "score"]
    assert [list(t.output_values) for t in resp.target_scores] == [
        [str(i).encode(), f32(0.5)] for i in range(3)
    ]


async def test_slatewise(srv) -> None:
    stub = predict_pb2_grpc.PredictServiceStub(srv.channel)
    req = predict_pb2.SlateWiseRequest(
        model_config_id="slate",
        targets=[predict_pb2.Target(id=str(i)) for i in range(3)],
        slates=[
            predict_pb2.TargetSlate(target_indices=[0, 1, 2]),
            predict_pb2.TargetSlate(target_indices=[1]),
            predict_pb2.TargetSlate(target_indices=[]),
        ],
    )
    resp = await stub.InferSlateWise(req, timeout=5)
    assert [list(s.output_values) for s in resp.slate_scores] == [[f32(3.0)], [f32(1.0)], [f32(0.0)]]
    assert len(resp.target_scores) == 3


async def test_retrieve_model_score(srv) -> None:
    stub = inferflow_pb2_grpc.InferflowStub(srv.channel)
    ent = inferflow_pb2.InferflowRequestProto.Entity
    req = inferflow_pb2.InferflowRequestProto(
        model_config_id="point",
        entities=[
            ent(
                entity="catalog_id",
                ids=["7", "8"],
                features=[ent.Feature(name="price", ids_feature_value=["3", ""])],
            )
        ],
    )
    resp = await stub.RetrieveModelScore(req, metadata=(("user-id", "98765"),), timeout=5)
    rows = [list(r.data) for r in resp.component_data]
    assert rows == [
        ["catalog_id", "score", "price_x2", "price"],
        ["7", "0.5", "6", "3"],
        ["8", "0.5", "", ""],
    ]
    assert srv.recorder.seen[-1].ctx.request.user_id == "98765"


async def test_component_failure_fills_item_errors(srv) -> None:
    stub = predict_pb2_grpc.PredictStub(srv.channel)
    req = predict_pb2.PointWiseRequest(model_config_id="broken", targets=[predict_pb2.Target(id="1")])
    resp = await stub.InferPointWise(req, timeout=5)
    assert list(resp.target_scores[0].output_values) == [b"1", f32(1.0), b""]
    assert "broken" in resp.target_scores[0].error
    assert "told to fail" in resp.target_scores[0].error
    assert "broken" in resp.request_error


async def test_unknown_and_rejected_models(srv) -> None:
    stub = predict_pb2_grpc.PredictStub(srv.channel)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.InferPointWise(point_request("nope"), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == "model config not found or invalid for id: nope"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.InferPointWise(point_request("rejected"), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "invalid for id: rejected" in err.value.details()
    assert "ghost" in err.value.details()


async def test_client_deadline_bounds_and_cancels_the_dag(srv) -> None:
    stub = predict_pb2_grpc.PredictStub(srv.channel)
    TRACE.clear()
    t0 = time.perf_counter()
    gave_up: grpc.aio.AioRpcError | None = None
    try:
        resp = await stub.InferPointWise(point_request("slow"), timeout=0.3)
    except grpc.aio.AioRpcError as err:  # the client may give up first on a loaded machine
        gave_up = err
    if gave_up is not None:
        assert gave_up.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    else:  # usually the server answers just before the deadline, with the item errors filled
        assert "deadline" in resp.target_scores[0].error
        assert "sleeper" in resp.request_error
    await asyncio.sleep(0.3)
    ends = [t for name, kind, t in TRACE if name == "sleeper" and kind == "end"]
    assert ends, "the sleeping component was not cancelled at the deadline"
    assert ends[0] - t0 < 1.0, "the sleeping component was not cancelled at the deadline"


async def test_default_deadline_applies_without_client_deadline() -> None:
    async with running_server(make_runtime(default_deadline_ms=200), TREE) as server:
        stub = predict_pb2_grpc.PredictStub(server.channel)
        t0 = time.perf_counter()
        resp = await stub.InferPointWise(point_request("slow", prices=(b"1",)))
        assert time.perf_counter() - t0 < 1.5
        assert "deadline" in resp.target_scores[0].error


def _http(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


async def test_health_reflection_http_and_metrics(srv) -> None:
    health = health_pb2_grpc.HealthStub(srv.channel)
    got = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert got.status == health_pb2.HealthCheckResponse.SERVING
    refl = reflection_pb2_grpc.ServerReflectionStub(srv.channel)
    call = refl.ServerReflectionInfo()
    await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    listed = await call.read()
    await call.done_writing()
    names = {s.name for s in listed.list_services_response.service}
    assert {"Predict", "PredictService", "Inferflow", "grpc.health.v1.Health"} <= names
    await predict_pb2_grpc.PredictStub(srv.channel).InferPointWise(point_request(), timeout=5)
    assert await asyncio.to_thread(_http, srv.http_port, "/health/self") == (200, b"true")
    status, body = await asyncio.to_thread(_http, srv.http_port, "/health/ready")
    details = json.loads(body)
    # a rejected model in the config source makes the pod not ready, saying which and why
    assert status == 503
    assert not details["ready"]
    assert "point" in details["models"]
    assert "ghost" in details["rejected_models"]["rejected"]
    assert any("'rejected'" in r and "ghost" in r for r in details["not_ready_because"]), details
    status, body = await asyncio.to_thread(_http, srv.http_port, "/metrics")
    sample = b'inferflow_api_requests_total{api="pointwise",status="OK",transport="grpc"}'
    assert status == 200
    assert sample in body
    assert (await asyncio.to_thread(_http, srv.http_port, "/nope"))[0] == 404


async def test_directory_hot_reload(srv) -> None:
    stub = predict_pb2_grpc.PredictStub(srv.channel)
    changed = POINT.replace('"value": 0.5', '"value": 0.25')
    await srv.update({PREFIX + "point": changed})
    resp = await stub.InferPointWise(point_request(prices=(b"1",)), timeout=5)
    assert list(resp.target_scores[0].output_values)[1] == f32(0.25)
