"""Every malformed request gets INVALID_ARGUMENT naming the field, and the server stays healthy."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inferflow_core._proto import inferflow_pb2, predict_pb2
from inferflow_core.testing.server import running_server
from tests.serving_support import TREE, make_runtime, point_request

pytestmark = pytest.mark.integration

P = predict_pb2
E = inferflow_pb2.InferflowRequestProto.Entity


def _schema(*names: str) -> list[Any]:
    return [P.FeatureSchema(name=n, data_type=P.DataTypeFP32) for n in names]


def _targets(n: int, values: int = 0) -> list[Any]:
    return [P.Target(id=str(i), feature_values=[b"1"] * values) for i in range(n)]


CASES: list[tuple[str, str, Any, str]] = [
    ("empty targets", "InferPointWise", P.PointWiseRequest(model_config_id="point"), "targets"),
    (
        "value count mismatch",
        "InferPointWise",
        P.PointWiseRequest(
            model_config_id="point", target_input_schema=_schema("price"), targets=_targets(2, 2)
        ),
        "targets[0].feature_values",
    ),
    (
        "duplicate schema names",
        "InferPointWise",
        P.PointWiseRequest(
            model_config_id="point", target_input_schema=_schema("a", "a"), targets=_targets(1, 2)
        ),
        "target_input_schema[1].name",
    ),
    (
        "duplicate context names",
        "InferPointWise",
        P.PointWiseRequest(
            model_config_id="point",
            targets=_targets(1),
            context_features=[P.ContextFeature(name="u", value=b"1"), P.ContextFeature(name="u", value=b"2")],
        ),
        "context_features[1].name",
    ),
    (
        "undecodable context value",
        "InferPointWise",
        P.PointWiseRequest(
            model_config_id="point",
            targets=_targets(1),
            context_features=[P.ContextFeature(name="u", value=b"x", data_type=P.DataTypeInt32)],
        ),
        "context_features[0].value",
    ),
    (
        "unknown data type",
        "InferPointWise",
        P.PointWiseRequest(
            model_config_id="point",
            target_input_schema=[P.FeatureSchema(name="a", data_type=99)],
            targets=_targets(1, 1),
        ),
        "target_input_schema[0].data_type",
    ),
    (
        "empty pairs",
        "InferPairWise",
        P.PairWiseRequest(model_config_id="slate", targets=_targets(2)),
        "pairs",
    ),
    (
        "pair index out of range",
        "InferPairWise",
        P.PairWiseRequest(
            model_config_id="slate",
            targets=_targets(2),
            pairs=[
                P.TargetPair(first_target_index=0, second_target_index=1),
                P.TargetPair(first_target_index=0, second_target_index=2),
            ],
        ),
        "pairs[1].second_target_index",
    ),
    (
        "pair without targets",
        "InferPairWise",
        P.PairWiseRequest(model_config_id="slate", pairs=[P.TargetPair()]),
        "targets",
    ),
    (
        "pair feature count mismatch",
        "InferPairWise",
        P.PairWiseRequest(
            model_config_id="slate",
            targets=_targets(2),
            pair_input_schema=_schema("x"),
            pairs=[P.TargetPair(first_target_index=0, second_target_index=1)],
        ),
        "pairs[0].feature_values",
    ),
    (
        "slate index out of range",
        "InferSlateWise",
        P.SlateWiseRequest(
            model_config_id="slate", targets=_targets(2), slates=[P.TargetSlate(target_indices=[0, -1])]
        ),
        "slates[0].target_indices[1]",
    ),
    (
        "empty slates",
        "InferSlateWise",
        P.SlateWiseRequest(model_config_id="slate", targets=_targets(1)),
        "slates",
    ),
    (
        "no entities",
        "RetrieveModelScore",
        inferflow_pb2.InferflowRequestProto(model_config_id="point"),
        "entities",
    ),
    (
        "entity id count mismatch",
        "RetrieveModelScore",
        inferflow_pb2.InferflowRequestProto(
            model_config_id="point",
            entities=[E(entity="a", ids=["1", "2", "3"]), E(entity="b", ids=["1", "2"])],
        ),
        "entities[1]",
    ),
    (
        "feature value count mismatch",
        "RetrieveModelScore",
        inferflow_pb2.InferflowRequestProto(
            model_config_id="point",
            entities=[E(entity="a", ids=["1", "2"], features=[E.Feature(name="f", ids_feature_value=["1"])])],
        ),
        "entities[0].features[0]",
    ),
    (
        "empty model id",
        "RetrieveModelScore",
        inferflow_pb2.InferflowRequestProto(entities=[E(entity="a", ids=["1"])]),
        "model_config_id",
    ),
]


def _method(channel: grpc.aio.Channel, name: str) -> Any:
    service = "Inferflow" if name == "RetrieveModelScore" else "Predict"
    return channel.unary_unary(f"/{service}/{name}", request_serializer=None, response_deserializer=None)


async def _assert_healthy(srv: Any) -> None:
    got = await health_pb2_grpc.HealthStub(srv.channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert got.status == health_pb2.HealthCheckResponse.SERVING
    raw = await _method(srv.channel, "InferPointWise")(
        point_request(prices=(b"1",)).SerializeToString(), timeout=5
    )
    assert P.PointWiseResponse.FromString(raw).target_scores[0].output_values[0] == b"100"


async def test_malformed_requests_are_invalid_argument() -> None:
    async with running_server(make_runtime(max_message_bytes=64 * 1024), TREE) as srv:
        for label, method, request, field in CASES:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await _method(srv.channel, method)(request.SerializeToString(), timeout=5)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (label, err.value)
            assert field in err.value.details(), (label, err.value.details())
            await _assert_healthy(srv)

        # not a protobuf message at all
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _method(srv.channel, "InferPointWise")(b"\xff\xff\xff", timeout=5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "request" in err.value.details()
        await _assert_healthy(srv)

        # oversized: over INFERFLOW_MAX_MESSAGE_BYTES (64 KiB here). The transport refuses it before
        # buffering it (its receive limit is the application's limit, issue 19), so RESOURCE_EXHAUSTED
        big = P.PointWiseRequest(
            model_config_id="point", targets=[P.Target(id="x" * 1000) for _ in range(100)]
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _method(srv.channel, "InferPointWise")(big.SerializeToString(), timeout=5)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "65536" in err.value.details()
        await _assert_healthy(srv)
        errors = srv.runtime.metrics.value("api_errors", api="pointwise", status="INVALID_ARGUMENT")
        assert errors >= 7  # the oversized one never reaches the application
