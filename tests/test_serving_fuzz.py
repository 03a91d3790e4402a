"""Bounded fuzzing of the served API: mutated and oddly-valued requests never give INTERNAL/UNKNOWN, never
run past their deadline, and leave the server healthy. (It found a crash and an event-loop stall.)"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import random
from typing import Any

import grpc
import pytest

from inferflow_core._proto import inferflow_pb2, predict_pb2
from inferflow_core.cli import main as cli_main
from inferflow_core.config.sources import write_config_dir
from inferflow_core.errors import ConfigError
from inferflow_core.testing.server import running_server
from tests.serving_support import PREFIX, TREE, make_runtime, point_request

pytestmark = pytest.mark.integration
P = predict_pb2
I = inferflow_pb2  # noqa: E741
ALLOWED = {grpc.StatusCode.INVALID_ARGUMENT}  # the error codes a fuzzed request may get
ANSWERS = {grpc.StatusCode.OK, *ALLOWED}
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
            code, details = grpc.StatusCode.OK, ""
            try:
                await call(raw, timeout=5)
            except grpc.aio.AioRpcError as exc:
                code, details = exc.code(), exc.details()
            assert code in ANSWERS, f"request {i} to {path}: {code.name}: {details}"
            seen[code] = seen.get(code, 0) + 1
        # still serving a good request afterwards
        ok = await srv.channel.unary_unary(
            "/Predict/InferPointWise",
            request_serializer=P.PointWiseRequest.SerializeToString,
            response_deserializer=P.PointWiseResponse.FromString,
        )(point_request(), timeout=5)
        assert len(ok.target_scores) == 3
    assert seen.get(grpc.StatusCode.OK, 0) > 20
    assert seen.get(grpc.StatusCode.INVALID_ARGUMENT, 0) > 100


# ---- issue 19: 10,000 requests over the four APIs, 1,000 configs through validate and hot reload ----

HOSTILE_NAMES = [*NAMES, "score", "price_x2", "slate_score", "m" * 3000, "/etc/passwd/x.json"]


def _hostile_value(rng: random.Random, big: bool = False) -> bytes:
    kind = rng.random()
    if kind < 0.6:
        return _value(rng)
    if kind < 0.8:  # over the vector budget sometimes (context features only: keeps messages small)
        return b":".join([b"1.5"] * rng.choice([1, 2, 3, 70_000] if big else [1, 2, 3, 40]))
    return rng.choice([b"", b"1e308", b"-0", b"true", b"\x00" * 8, b"1:" * 10])


def _features(rng: random.Random, n: int) -> list[Any]:
    return [P.FeatureSchema(name=rng.choice(HOSTILE_NAMES), data_type=rng.randrange(31)) for _ in range(n)]


def _hostile_request(rng: random.Random) -> tuple[str, bytes]:
    kind = rng.randrange(4)
    model = rng.choice(["point", "slate", "broken", "nope", "m" * 5000])
    ntargets = rng.choice([0, 1, 3, 50, 400])
    schema = _features(rng, rng.randint(0, 2))
    targets = [
        P.Target(id=str(j), feature_values=[_hostile_value(rng) for _ in schema]) for j in range(ntargets)
    ]
    context = [
        P.ContextFeature(
            name=rng.choice(HOSTILE_NAMES), value=_hostile_value(rng, big=True), data_type=rng.randrange(31)
        )
        for _ in range(rng.randint(0, 2))
    ]
    if kind == 0:
        req: Any = P.PointWiseRequest(
            model_config_id=model, target_input_schema=schema, targets=targets, context_features=context
        )
        return "/Predict/InferPointWise", req.SerializeToString()
    if kind == 1:
        pschema = _features(rng, rng.randint(0, 1))
        pairs = [
            P.TargetPair(
                first_target_index=rng.randrange(-1, ntargets + 1),
                second_target_index=rng.randrange(0, max(1, ntargets)),
                feature_values=[_hostile_value(rng) for _ in pschema],
            )
            for _ in range(rng.choice([0, 1, 5, 200]))
        ]
        req = P.PairWiseRequest(
            model_config_id=model,
            target_input_schema=schema,
            targets=targets,
            pair_input_schema=pschema,
            pairs=pairs,
            context_features=context,
        )
        return "/Predict/InferPairWise", req.SerializeToString()
    if kind == 2:
        slates = [
            P.TargetSlate(target_indices=[rng.randrange(-1, ntargets + 1) for _ in range(rng.randint(0, 6))])
            for _ in range(rng.choice([0, 1, 4, 100]))
        ]
        req = P.SlateWiseRequest(
            model_config_id=model, targets=targets, slates=slates, context_features=context
        )
        return "/PredictService/InferSlateWise", req.SerializeToString()
    return _odd_request(rng)


async def test_ten_thousand_hostile_requests_over_the_four_apis() -> None:
    """Seeded; bounded (every call has a 5 s deadline); 0 INTERNAL/UNKNOWN, 0 hangs, server healthy.
    INFERFLOW_FUZZ_SEED=N runs another 10,000 (the 30,000 of the issue-19 audit = three seeds)."""
    rng = random.Random(int(os.environ.get("INFERFLOW_FUZZ_SEED") or 19_10_000))
    seen: dict[Any, int] = {}
    paths: set[str] = set()
    base = point_request().SerializeToString()
    async with running_server(make_runtime(), TREE) as srv:

        async def one(path: str, raw: bytes) -> None:
            call = srv.channel.unary_unary(path, request_serializer=None, response_deserializer=None)
            code, details = grpc.StatusCode.OK, ""
            try:
                await call(raw, timeout=5)
            except grpc.aio.AioRpcError as exc:
                code, details = exc.code(), exc.details() or ""
            assert code in ANSWERS, f"{path}: {code.name}: {details[:300]}"
            seen[code] = seen.get(code, 0) + 1
            paths.add(path)

        for _ in range(10_000 // 50):
            batch = []
            for _ in range(50):
                r = rng.random()
                if r < 0.3:
                    batch.append(("/Predict/InferPointWise", _mutate(rng, base)))
                else:
                    batch.append(_hostile_request(rng))
            await asyncio.gather(*(one(p, raw) for p, raw in batch))
        ok = await srv.channel.unary_unary(
            "/Predict/InferPointWise",
            request_serializer=P.PointWiseRequest.SerializeToString,
            response_deserializer=P.PointWiseResponse.FromString,
        )(point_request(), timeout=5)
        assert len(ok.target_scores) == 3
    assert sum(seen.values()) == 10_000
    assert {"/Predict/InferPointWise", "/Predict/InferPairWise", "/Inferflow/RetrieveModelScore"} <= paths
    assert seen.get(grpc.StatusCode.OK, 0) > 500
    assert seen.get(grpc.StatusCode.INVALID_ARGUMENT, 0) > 1000


def _fuzzed_config(rng: random.Random) -> str:
    """A model config mutated at the JSON level (most) or the byte level; some nested 1,000+ deep."""
    doc = json.loads(rng.choice([TREE[PREFIX + k] for k in ("point", "slate", "broken", "rejected")]))
    r = rng.random()
    if r < 0.05:
        return "[" * rng.choice([999, 1001, 50_000]) + "]" * rng.choice([0, 999, 1001])
    if r < 0.2:
        raw = bytearray(json.dumps(doc).encode())
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(raw))
            raw[pos] = rng.choice(b'{}[]",:0a\\\x00\xff')
        return raw.decode("utf-8", "replace")
    junk: list[Any] = [
        None,
        0,
        -1,
        1e308,
        "",
        "x" * 500,
        [],
        {},
        [1, "a"],
        {"a": {"b": []}},
        True,
        "DataTypeFP32",
    ]
    for _ in range(rng.randint(1, 4)):
        node: Any = doc
        path = []
        while isinstance(node, dict | list) and node and rng.random() < 0.7:
            key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
            path.append((node, key))
            node = node[key]
        if not path:
            continue
        parent, key = path[-1]
        op = rng.random()
        if op < 0.6:
            parent[key] = copy.deepcopy(rng.choice(junk))
        elif isinstance(parent, dict):
            del parent[key]
        else:
            parent.append(copy.deepcopy(rng.choice(junk)))
    return json.dumps(doc)


def test_one_thousand_fuzzed_configs_through_validate(tmp_path: Any, capsys: Any) -> None:
    """Each config compiles or is a ConfigError (never another exception); `inferflow validate` reports a
    sample of them (files and one directory) without a traceback."""
    rng = random.Random(19_1000)
    runtime = make_runtime()
    configs = [_fuzzed_config(rng) for _ in range(1000)]
    verdicts = {"ok": 0, "rejected": 0}
    for i, raw in enumerate(configs):
        rejected, message = False, ""
        try:
            runtime.compiler.compile(f"m{i}", raw, {})  # type: ignore[arg-type]
        except ConfigError as exc:
            rejected, message = True, exc.message
        verdicts["rejected" if rejected else "ok"] += 1
        assert "Traceback" not in message, message[:300]
        assert "cannot compile" not in message, message[:300]
    assert verdicts["rejected"] > 500
    assert verdicts["ok"] > 10
    root = tmp_path / "cfg"
    write_config_dir(root, {f"{PREFIX}m{i}": raw for i, raw in enumerate(configs[:200])})
    code = cli_main(["validate", str(root)])
    out = capsys.readouterr()
    assert code in (0, 1)
    assert "Traceback" not in out.out + out.err
    assert out.out.count("INVALID") > 50
    for i, raw in enumerate(configs[:40]):
        path = tmp_path / f"f{i}.json"
        path.write_text(raw, encoding="utf-8")
        assert cli_main(["validate", str(path)]) in (0, 1)
    assert "Traceback" not in capsys.readouterr().err


async def test_one_thousand_fuzzed_configs_through_hot_reload() -> None:
    """50 reloads of 20 fuzzed models each through the watched directory: every reload applies, the
    good model keeps serving, readiness stays up (with INFERFLOW_READY_WITH_REJECTED: a rejected model
    would otherwise make the pod not ready, by design)."""
    rng = random.Random(19_1001)
    async with running_server(make_runtime(ready_with_rejected=True), TREE) as srv:
        good = srv.channel.unary_unary(
            "/Predict/InferPointWise",
            request_serializer=P.PointWiseRequest.SerializeToString,
            response_deserializer=P.PointWiseResponse.FromString,
        )
        for batch in range(50):
            tree = {f"{PREFIX}f{j}": _fuzzed_config(rng) for j in range(20)}
            tree[PREFIX + "tick"] = TREE[PREFIX + "point"].replace("0.5", str(batch + 1))
            await srv.update(tree)
            snap = srv.runtime.store.current
            assert "tick" in snap.models
            assert "point" in snap.models
            assert len(snap.models) + len(snap.errors) >= 21
            assert len((await good(point_request(), timeout=5)).target_scores) == 3
        assert srv.server.readiness()[0]


# ---- issue 20: the same fuzzing over the HTTP API (protobuf and JSON bodies) ----

HTTP_PATHS = {
    "/Predict/InferPointWise": "pointwise",
    "/Predict/InferPairWise": "pairwise",
    "/PredictService/InferSlateWise": "slatewise",
    "/Predict/InferSlateWise": "slatewise",
    "/Inferflow/RetrieveModelScore": "retrieve",
}
JSON_JUNK: list[Any] = [
    None,
    0,
    -1,
    2**40,
    1e308,
    -1e308,
    "",
    "x" * 300,
    True,
    [],
    {},
    [1, "a"],
    [[1]],
    {"a": 1},
]


def _json_doc(rng: random.Random) -> Any:
    """A JSON request, mostly well-formed, with fields of the wrong JSON type and odd values mixed in."""
    n = rng.choice([0, 1, 3, 40])
    doc: dict[str, Any] = {
        "targets": [rng.choice([str(j), j, "", "é", "\ud800"]) for j in range(n)],
        "context": {rng.choice(NAMES): rng.choice([*JSON_JUNK, "42", 1.5, [1.5, 2.5]])},
        "features": {
            rng.choice(NAMES): [rng.choice([1.5, "2.5", "abc", None, [1, 2], True, 2**70]) for _ in range(n)]
        },
        "types": {
            rng.choice(NAMES): rng.choice(["fp32", "int64", "fp32_vector", "string", "bool", "nope", 3])
        },
        "pairs": [[rng.randrange(-1, n + 1), rng.randrange(-1, n + 1)] for _ in range(rng.randint(0, 3))],
        "slates": [[rng.randrange(-1, n + 1)] for _ in range(rng.randint(0, 3))],
        "tracking_id": rng.choice(["t", 5, None]),
    }
    for key in rng.sample(sorted(doc), rng.randint(0, 4)):
        doc[key] = rng.choice(JSON_JUNK)
    if rng.random() < 0.1:
        doc[rng.choice(["bogus", "entities"])] = {"catalog_id": ["1", "2"]}
    return doc


def _json_body(rng: random.Random) -> bytes:
    raw = json.dumps(_json_doc(rng)).encode()
    r = rng.random()
    if r < 0.15:  # broken JSON
        return _mutate(rng, raw)
    if r < 0.2:
        return rng.choice([b"", b"null", b"[]", b"\xff\xfe", b"[" * 50_000, b'{"targets": ' * 3000])
    return raw


def _http_post(port: int, path: str, body: bytes, ctype: str) -> int:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": ctype})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


async def test_fuzzed_http_requests_never_crash_or_stall_the_server() -> None:
    """Seeded, bounded (a 5 s timeout per call, about 1,200 calls): protobuf bodies from the gRPC fuzzers,
    JSON bodies with wrong types and broken syntax, bodies over the size limit. Only 200 / 400 / 413
    answers; the server keeps serving."""
    rng = random.Random(20_2012)
    seen: dict[int, int] = {}
    base = point_request().SerializeToString()
    async with running_server(make_runtime(max_message_bytes=256 * 1024), TREE) as srv:
        port = srv.http_port

        async def one(kind: str, body: bytes, ctype: str) -> None:
            path = f"/v1/models/{rng.choice(['point', 'slate', 'nope'])}/{kind}"
            status = await asyncio.to_thread(_http_post, port, path, body, ctype)
            assert status in (200, 400, 413), f"{path} ({ctype}): HTTP {status} for {body[:200]!r}"
            seen[status] = seen.get(status, 0) + 1

        for i in range(1200):
            r = i % 4
            if r == 0:
                await one("pointwise", _mutate(rng, base), "application/x-protobuf")
            elif r == 1:
                path, raw = _hostile_request(rng)
                await one(HTTP_PATHS[path], raw, "application/x-protobuf")
            else:
                kind = rng.choice(["pointwise", "pairwise", "slatewise", "retrieve"])
                await one(kind, _json_body(rng), "application/json")
            if i % 300 == 0:  # a body over the limit: refused before it is read
                await one("pointwise", b"[" + b"1," * 200_000 + b"1]", "application/json")
        status = await asyncio.to_thread(
            _http_post, port, "/v1/models/point/pointwise", base, "application/x-protobuf"
        )
        assert status == 200
    assert seen.get(200, 0) > 20, seen
    assert seen.get(400, 0) > 300, seen
    assert seen.get(413, 0) >= 4, seen
