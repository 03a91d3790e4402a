"""Bounded fuzzing of the served API: mutated and oddly-valued requests never give INTERNAL/UNKNOWN, never
run past their deadline, and leave the server healthy. (It found a crash and an event-loop stall.)"""

from __future__ import annotations

import random
from typing import Any

import grpc
import pytest

from inferflow_core._proto import inferflow_pb2, predict_pb2
from inferflow_core.testing.server import running_server
from tests.test_serving import TREE, make_runtime, point_request

pytestmark = pytest.mark.integration
P = predict_pb2
I = inferflow_pb2  # noqa: E741
ALLOWED = {grpc.StatusCode.INVALID_ARGUMENT}
NAMES = ["id", "user_id", "price", "score", "", "slate_target_indices", "x"]


def _value(rng: random.Random) -> bytes:
    choices = [b"", b"1", b"2.5", b"-1e40", b"nan", b"abc", b"1:2:3", b"\xff\xfe", b"9" * 5000]
    return rng.choice([*choices, bytes(rng.randrange(256) for _ in range(rng.randint(0, 12)))])


def _odd_request(rng: random.Random) -> tuple[str, bytes]:
    kind = rng.random()
    if kind < 0.5:
        schema = [
            P.FeatureSchema(
                name=rng.choice(NAMES), data_type=rng.randrange(31), vector_dim=rng.randrange(-2, 4)
            )
            for _ in range(rng.randint(0, 3))
        ]
        n = rng.choice([0, 1, 3, 40])
        req = P.PointWiseRequest(
            model_config_id=rng.choice(["point", "point", "slate", "nope", ""]),
            tracking_id="t",
            target_input_schema=schema,
            context_features=[
                P.ContextFeature(name=rng.choice(NAMES), value=_value(rng), data_type=rng.randrange(31))
                for _ in range(rng.randint(0, 2))
            ],
            targets=[
                P.Target(id=rng.choice(["1", "", "é", str(j)]), feature_values=[_value(rng) for _ in schema])
                for j in range(n)
            ],
        )
        return "/Predict/InferPointWise", req.SerializeToString()
    if kind < 0.8:
        n = rng.randint(0, 5)
        req2 = P.SlateWiseRequest(
            model_config_id=rng.choice(["slate", "point"]),
            targets=[P.Target(id=str(j)) for j in range(n)],
            slates=[
                P.TargetSlate(target_indices=[rng.randrange(-2, n + 2) for _ in range(rng.randint(0, 4))])
                for _ in range(rng.randint(0, 3))
            ],
        )
        return "/Predict/InferSlateWise", req2.SerializeToString()
    entity = I.InferflowRequestProto.Entity
    ents = [
        entity(
            entity=rng.choice(NAMES),
            ids=[str(rng.randrange(9)) for _ in range(rng.randint(0, 3))],
            features=[entity.Feature(name=rng.choice(NAMES), ids_feature_value=["1"] * rng.randint(0, 3))],
        )
        for _ in range(rng.randint(0, 2))
    ]
    req3 = I.InferflowRequestProto(model_config_id=rng.choice(["point", "x"]), tracking_id="t", entities=ents)
    return "/Inferflow/RetrieveModelScore", req3.SerializeToString()


def _mutate(rng: random.Random, raw: bytes) -> bytes:
    buf = bytearray(raw)
    for _ in range(rng.randint(1, 5)):
        pos = rng.randrange(len(buf)) if buf else 0
        op = rng.random()
        if op < 0.5 and buf:
            buf[pos] = rng.randrange(256)
        elif op < 0.75:
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 6)))
        elif buf:
            del buf[pos : pos + rng.randint(1, 6)]
    return bytes(buf)


async def test_fuzzed_requests_never_crash_or_stall_the_server() -> None:
    rng = random.Random(20261126)
    seen: dict[Any, int] = {}
    async with running_server(make_runtime(), TREE) as srv:
        base = point_request().SerializeToString()
        for i in range(600):
            path, raw = _odd_request(rng) if i % 2 else ("/Predict/InferPointWise", _mutate(rng, base))
            call = srv.channel.unary_unary(path, request_serializer=None, response_deserializer=None)
            try:
                await call(raw, timeout=5)
                code = grpc.StatusCode.OK
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
                assert code in ALLOWED, f"request {i} to {path}: {code.name}: {exc.details()}"
            seen[code] = seen.get(code, 0) + 1
        # still serving a good request afterwards
        ok = await srv.channel.unary_unary(
            "/Predict/InferPointWise",
            request_serializer=P.PointWiseRequest.SerializeToString,
            response_deserializer=P.PointWiseResponse.FromString,
        )(point_request(), timeout=5)
        assert len(ok.target_scores) == 3
    assert seen.get(grpc.StatusCode.OK, 0) > 20 and seen.get(grpc.StatusCode.INVALID_ARGUMENT, 0) > 100
