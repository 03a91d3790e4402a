"""Inference logging end to end: the gRPC Predict API of a real in-process server, the inferflow-logging
plugin registered as the entry point registers it, its Kafka sink against a real Tansu broker.

A typed test component writes columns of several types (some cells missing); every logged message is
consumed from the topic and decoded, and each logged cell must equal the cell the gRPC response carried
for that target (response ``output_values`` are the same go-compatibility §4.4 wire cells). The log format is
switched through the service config (``v2-logging-type``) by hot reload, so one server serves all three.
"""

from __future__ import annotations

import json
from typing import Any

import inferflow_logging.plugin as logging_plugin
import pytest
from iflog_support import Broker, TypedPlugin, broker, consume
from inferflow_logging.envelope import unwrap
from inferflow_logging.formats import FORMATS
from inferflow_logging.schema import derive_schema, unpack_metadata

from inferflow_core import testing
from inferflow_core._proto import predict_pb2, predict_pb2_grpc
from inferflow_core.runtime import Runtime
from inferflow_core.testing.server import RunningServer, running_server

__all__ = ["broker"]  # the Tansu fixture (a uniquely named support module of the plugin's tests)

pytestmark = pytest.mark.integration

PREFIX = "inferflow/services/inferflow/model-config/"
TOPIC = "served_inference_logs"
TYPES = ["FP32", "INT64", "FP16", "BOOL", "String", "FP32Vector", "StringVector", "UINT8Vector"]
FEATURES = [f"f_{t.lower()}" for t in TYPES]
ROWS = 9


def model(pairs: bool) -> str:
    """Typed target columns (every 4th row missing); with ``pairs`` also a pair (slate) score."""
    outputs = [{"name": n, "data_type": t} for n, t in zip(FEATURES, TYPES, strict=True)]
    dag: dict[str, list[str]] = {"typed": ["feature_initializer"]}
    comps: dict[str, Any] = {
        "feature_components": [{"component": "typed", "outputs": outputs, "missing_every": 4}]
    }
    features = ["catalog_id", *FEATURES]
    if pairs:
        dag["pairs"] = ["typed"]
        score = {"name": "pair_score", "data_type": "FP32"}
        comps["typed_components"] = [
            {"component": "pairs", "slate": True, "missing_every": 0, "outputs": [score]}
        ]
        features.append("pair_score")
    return json.dumps(
        {
            "dag_execution_config": {"component_dependency": dag},
            "component_config": comps,
            "response_config": {"features": features, "logging_perc": 100},
        }
    )


def tree(fmt: str) -> dict[str, str]:
    return {
        PREFIX + "config-map/typed": model(pairs=False),
        PREFIX + "config-map/typed_pairs": model(pairs=True),
        PREFIX + "service-config": json.dumps({"v2-logging-type": fmt}),
    }


def make_runtime() -> Runtime:
    # "logging": what the `inferflow = logging` entry point loads
    return testing.make_runtime(typed=TypedPlugin(), logging=logging_plugin)


def point_request(tracking_id: str) -> Any:
    return predict_pb2.PointWiseRequest(
        model_config_id="typed",
        tracking_id=tracking_id,
        targets=[predict_pb2.Target(id=f"{tracking_id}-{i}") for i in range(ROWS)],
    )


def decode_topic(
    broker: Broker, count: int, srv: RunningServer, model_id: str = "typed"
) -> dict[tuple[str, str], list[tuple]]:
    """{(tracking id, event name): [(entity, {feature: cell}), ...]} of ``count`` consumed messages."""
    values = consume(broker.bootstrap, TOPIC, count, timeout=30)
    assert len(values) == count, f"consumed {len(values)} of {count} log messages"
    schema = derive_schema(srv.runtime.store.current.model(model_id))
    out: dict[tuple[str, str], list[tuple]] = {}
    for value in values:
        event, log = unwrap(value)
        assert log.model_config_id == model_id
        assert event.event_id == log.tracking_id
        fmt = unpack_metadata(log.metadata)[2]
        slate = event.event_name.endswith("slate_logs")
        entries = schema.slate_entries if slate else schema.entries
        rows = FORMATS[fmt].decode([f.encoded_features for f in log.features], entries)
        ents = list(log.entities)  # one per decoded row (zip strict checks it)
        named = [
            (e, {en.name: c for en, c in zip(entries, row, strict=True)})
            for e, row in zip(ents, rows, strict=True)
        ]
        out.setdefault((log.tracking_id, event.event_name), []).extend(named)
    return out


def assert_logged_equals_response(
    logged: list[tuple], targets: list[Any], names: list[str], fmt: str
) -> None:
    assert len(logged) == len(targets)
    for (entity, cells), target in zip(logged, targets, strict=True):
        assert names[0] == "catalog_id"
        assert target.output_values[0] == entity.encode()
        assert set(FEATURES) <= set(cells), sorted(cells)
        for name, value in zip(names, target.output_values, strict=True):
            if name not in cells:
                continue
            got = cells[name]
            if value:
                assert got == value, (fmt, entity, name, got, value)
            elif fmt == "proto" and name == "f_string":
                assert got == b"0.0", (entity, got)  # go-compatibility §4.5: a missing String logs "0.0"
            elif (
                fmt == "proto"
                and got is not None
                and name not in ("f_fp32vector", "f_stringvector", "f_uint8vector")
            ):
                assert got == b"\0" * len(got), (entity, name, got)  # missing fixed scalar: zeros
            else:
                assert got is None, (fmt, entity, name, got)


@pytest.mark.parametrize("fmt", ["proto", "arrow", "parquet"])
async def test_pointwise_logs_reach_kafka_and_equal_the_response(
    broker: Broker, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    broker.create_topic(TOPIC)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", broker.bootstrap)
    monkeypatch.setenv("KAFKA_LOGGING_TOPIC", TOPIC)
    monkeypatch.setenv("KAFKA_COMPRESSION_TYPE", "zstd")
    async with running_server(make_runtime(), tree(fmt), http=False) as srv:
        stub = predict_pb2_grpc.PredictStub(srv.channel)
        responses = {}
        for k in range(3):
            tracking = f"{fmt}-trk-{k}"
            resp = await stub.InferPointWise(point_request(tracking), timeout=10)
            assert resp.request_error == ""
            responses[tracking] = resp
        untracked = point_request("")
        await stub.InferPointWise(untracked, timeout=10)  # no tracking id: never logged
        logged = decode_topic(broker, 3, srv)
    assert set(logged) == {(t, "inferflow_inference_logs") for t in responses}
    for tracking, resp in responses.items():
        names = [s.name for s in resp.target_output_schema]
        assert names == ["catalog_id", *FEATURES]
        rows = logged[(tracking, "inferflow_inference_logs")]
        assert [e for e, _ in rows] == [f"{tracking}-{i}" for i in range(ROWS)]
        assert_logged_equals_response(rows, list(resp.target_scores), names, fmt)
        present = sum(1 for _, cells in rows for c in cells.values() if c)
        assert present > ROWS * len(FEATURES) // 2  # the comparison really saw logged values


async def test_pairwise_logs_its_target_matrix_and_pairs(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker.create_topic(TOPIC)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", broker.bootstrap)
    monkeypatch.setenv("KAFKA_LOGGING_TOPIC", TOPIC)
    async with running_server(make_runtime(), tree("proto"), http=False) as srv:
        stub = predict_pb2_grpc.PredictStub(srv.channel)
        req = predict_pb2.PairWiseRequest(
            model_config_id="typed_pairs",
            tracking_id="pair-trk",
            targets=[predict_pb2.Target(id=f"p{i}") for i in range(4)],
            pairs=[
                predict_pb2.TargetPair(first_target_index=0, second_target_index=1),
                predict_pb2.TargetPair(first_target_index=3, second_target_index=2),
            ],
        )
        resp = await stub.InferPairWise(req, timeout=10)
        assert resp.request_error == ""
        logged = decode_topic(broker, 2, srv, "typed_pairs")  # the target log and the pair (slate) log
    targets = logged[("pair-trk", "inferflow_inference_logs")]
    assert [e for e, _ in targets] == [f"p{i}" for i in range(4)]
    names = [s.name for s in resp.target_output_schema]
    assert_logged_equals_response(targets, list(resp.target_scores), names, "proto")
    pairs = logged[("pair-trk", "inferflow_inference_slate_logs")]
    assert [e for e, _ in pairs] == ["p0,p1", "p3,p2"]
    pair_names = [s.name for s in resp.pair_output_schema]
    assert pair_names == ["pair_score"]
    assert [cells["pair_score"] for _, cells in pairs] == [p.output_values[0] for p in resp.pair_scores]
