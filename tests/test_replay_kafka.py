"""``inferflow replay kafka://...``: model A served with its logs going to a real Kafka-protocol broker
(Tansu), the topic range replayed against model B; the report checked against a direct computation and
against replaying the same records from a log file."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from iflog_support import Broker, broker
from inferflow_logging.envelope import unwrap
from inferflow_logging.replay import config_schemas, main, replay
from inferflow_logging.sinks import schema_path, varint

from inferflow_core._proto import predict_pb2_grpc
from inferflow_core.testing import pick_free_port, write_config_dir
from inferflow_core.testing.server import running_server
from tests.shadow_support import (
    N_REQUESTS,
    candidate,
    expected,
    make_runtime,
    model_config,
    request,
    tree,
)

__all__ = ["broker"]  # the Tansu fixture (a uniquely named support module of the plugin's tests)

pytestmark = pytest.mark.integration


def create_topic(broker: Broker, topic: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(10)


async def kafka_logs(
    repo: Path, tmp_path: Path, monkeypatch: Any, broker: Broker, topic: str, partitions: int, batch: int
) -> Path:
    """Serve model A (log_features on, ``batch`` rows per message) logging to ``topic``; its config dir."""
    create_topic(broker, topic, partitions)
    config = json.loads(model_config(f"onnx://{repo}", "lin_a"))
    config["response_config"]["log_batch_size"] = batch
    served = tree(json.dumps(config))
    write_config_dir(tmp_path / "served", served)
    env = {
        "INFERFLOW_LOG_SINK": "kafka",
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        # Tansu 0.6.0 reports a partition's high watermark as the base offset of its last record batch
        # + 1 (not the last record's offset + 1): one message per batch keeps it exact, as Kafka's is.
        # No stickiness: the key-less log messages go to random partitions, so the chunks of one request
        # are spread over several and the reader must regroup them.
        "INFERFLOW_KAFKA_CONFIG": json.dumps({"batch.num.messages": 1, "sticky.partitioning.linger.ms": 0}),
    }
    runtime = make_runtime(monkeypatch, tmp_path / "unused", KAFKA_LOGGING_TOPIC=topic, **env)
    async with running_server(runtime, served) as srv:  # stopping the server flushes the producer
        stub = predict_pb2_grpc.PredictStub(srv.channel)
        for i in range(N_REQUESTS):
            await stub.InferPointWise(request(i, f"req-{i}"))
        want = N_REQUESTS * (-(-20 // batch) if batch else 1)
        deadline = time.monotonic() + 30
        while sum(high_watermarks(broker, topic, partitions)) < want and time.monotonic() < deadline:
            await asyncio.sleep(0.1)  # the logging worker and the producer deliver after the responses
    assert sum(high_watermarks(broker, topic, partitions)) == want
    return tmp_path / "served"


def high_watermarks(broker: Broker, topic: str, partitions: int) -> list[int]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"t-{time.monotonic_ns()}"})
    try:
        return [
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)
        ]
    finally:
        consumer.close()


def topic_values(broker: Broker, topic: str, partitions: int) -> list[bytes]:
    """Every message value of the topic (all partitions), read with a plain consumer."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    out: list[bytes] = []
    for p in range(partitions):
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"t-{time.monotonic_ns()}"})
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING)])
        got = 0
        deadline = time.monotonic() + 20
        while got < high and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and not msg.error():
                out.append(msg.value())
                got += 1
        consumer.close()
        assert got == high
    return out


def check_against_direct(s: dict[str, Any], which: list[int]) -> None:
    want = expected()
    rows = 20
    idx = np.concatenate([np.arange(i * rows, (i + 1) * rows) for i in which])
    old, new = want["old"][idx], want["new"][idx]
    delta = new - old
    assert s["requests"] == len(which)
    assert s["rows_replayed"] == len(idx)
    assert s["rows_skipped"] == {}
    assert s["delta_mean"] == pytest.approx(delta.mean(), abs=1e-6)
    assert s["abs_delta_p50"] == pytest.approx(np.percentile(np.abs(delta), 50), abs=1e-6)
    assert s["abs_delta_p99"] == pytest.approx(np.percentile(np.abs(delta), 99), abs=1e-6)
    assert s["sign_flips"] == int(((old >= 0.5) != (new >= 0.5)).sum())
    # one rank statistic per request: a request split over partitions and not regrouped would add more
    assert s["spearman_per_request"]["mean"] == pytest.approx(np.mean([want["rho"][i] for i in which]))
    assert s["kendall_per_request"]["mean"] == pytest.approx(np.mean([want["tau"][i] for i in which]))
    assert s["top5_overlap_per_request"]["mean"] == pytest.approx(np.mean([want["top"][i] for i in which]))


async def test_kafka_range_replays_like_the_same_records_from_a_file(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broker: Broker
) -> None:
    topic, partitions = "replay_logs", 3
    served = await kafka_logs(repo, tmp_path, monkeypatch, broker, topic, partitions, batch=7)
    cand = tmp_path / "cand"
    candidate(repo, cand)
    values = topic_values(broker, topic, partitions)
    assert (
        sum(1 for n in high_watermarks(broker, topic, partitions) if n) > 1
    )  # requests split over partitions
    assert len(values) == N_REQUESTS * 3  # 20 rows in chunks of 7: three messages per request

    url = f"kafka://{broker.bootstrap}/{topic}"
    kafka = await asyncio.to_thread(replay, [url], str(cand), None, None, None, 0.5, 5, None, str(served))
    s = kafka["m"].summary(0.5, 5)
    check_against_direct(s, list(range(N_REQUESTS)))

    log = tmp_path / "logs" / "copy.binpb"  # the same records as the file sink would have written them
    log.parent.mkdir()
    values.sort(key=lambda v: unwrap(v)[1].tracking_id)  # the file sink writes a request's chunks together
    log.write_bytes(b"".join(varint(len(v)) + v for v in values))
    schemas = {k: [[e.name, e.dtype.wire_name] for e in v] for k, v in config_schemas(str(served)).items()}
    schema_path(log).write_text(json.dumps({"schemas": schemas}))
    from_file = await asyncio.to_thread(replay, [str(log)], str(cand), None, None, None, 0.5, 5)
    assert from_file["m"].summary(0.5, 5) == s
    assert sorted(zip(from_file["m"].targets, from_file["m"].new, strict=True)) == sorted(
        zip(kafka["m"].targets, kafka["m"].new, strict=True)
    )

    png = tmp_path / "kafka.png"  # the CLI, with the JSON report and a plot
    argv = [url, "--config-dir", str(cand), "--log-config-dir", str(served), "--top-k", "5", "--json"]
    assert await asyncio.to_thread(main, [*argv, "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_offset_bounds_select_the_requests_of_the_range(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broker: Broker, capsys: Any
) -> None:
    topic = "replay_range"
    served = await kafka_logs(repo, tmp_path, monkeypatch, broker, topic, 1, batch=0)  # one message each
    cand = tmp_path / "cand"
    candidate(repo, cand)
    base = f"kafka://{broker.bootstrap}/{topic}"
    for query, which in [("?from=2&to=4", [2, 3]), ("?from=4", [4, 5]), ("?to=1&partition=0", [0])]:
        args = (None, None, None, 0.5, 5, None, str(served))
        report = (await asyncio.to_thread(replay, [base + query], str(cand), *args))["m"]
        assert sorted(set(report.requests)) == [f"req-{i}" for i in which], query
        check_against_direct(report.summary(0.5, 5), which)

    code = await asyncio.to_thread(
        main, [base + "?from=6", "--config-dir", str(cand), "--log-config-dir", str(served)]
    )
    err = capsys.readouterr().err  # past the high watermark
    assert code == 1, err
    assert "?from=6: the range holds no message (partition: offsets held: 0: [0, 6))" in err, err


async def test_clear_errors_for_an_unreachable_broker_a_missing_topic_and_no_schema(
    repo: Path, tmp_path: Path, broker: Broker, capsys: Any
) -> None:
    cand = tmp_path / "cand"
    candidate(repo, cand)
    common = ["--config-dir", str(cand), "--log-config-dir", str(cand), "--kafka-timeout", "2"]

    t0 = time.monotonic()
    code = await asyncio.to_thread(main, [f"kafka://127.0.0.1:{pick_free_port()}/logs", *common])
    err = capsys.readouterr().err
    assert code == 1
    assert time.monotonic() - t0 < 10
    assert err.count("\n") == 1, err
    assert "cannot reach the broker within 2 s" in err, err

    code = await asyncio.to_thread(main, [f"kafka://{broker.bootstrap}/no_such_topic", *common])
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.count("\n") == 1, err
    assert "topic 'no_such_topic' does not exist" in err, err

    code = await asyncio.to_thread(main, [f"kafka://{broker.bootstrap}/logs", "--config-dir", str(cand)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "Kafka messages carry no schema: pass --log-config-dir" in err, err

    code = await asyncio.to_thread(main, [f"kafka://{broker.bootstrap}/logs?since=1", *common])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "unknown parameter 'since'" in err, err
