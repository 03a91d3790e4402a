"""Against a real Kafka-protocol broker (Tansu): every format with zstd, and a broker outage."""

from __future__ import annotations

import time

import numpy as np
import pytest
from iflog_support import Broker, Served, all_types_model, consume
from inferflow_logging import InferenceLogger, LoggingSettings
from inferflow_logging.envelope import unwrap
from inferflow_logging.formats import FORMATS
from inferflow_logging.schema import derive_schema, unpack_metadata

from inferflow_core.api import Metrics

pytestmark = pytest.mark.integration


def kafka_logger(broker: Broker, topic: str, **extra: object) -> tuple[InferenceLogger, Metrics]:
    metrics = Metrics()
    settings = LoggingSettings(
        sink="kafka",
        kafka_bootstrap_servers=f" {broker.bootstrap} ,",  # comma-separated, whitespace tolerated
        topic=topic,
        kafka_compression="zstd",
        kafka_config=extra,  # type: ignore[arg-type]
    )
    return InferenceLogger(settings, metrics=metrics), metrics


async def wait_for(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    import asyncio

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


@pytest.mark.parametrize("encoder", ["thread", "process"])
@pytest.mark.parametrize("fmt", ["proto", "arrow", "parquet"])
async def test_every_format_reaches_the_topic_and_decodes(broker: Broker, fmt: str, encoder: str) -> None:
    topic = f"logs_{fmt}_{encoder}"
    broker.create_topic(topic)
    logger, metrics = kafka_logger(broker, topic)
    logger.settings.encoder = encoder  # type: ignore[assignment]
    await logger.start()
    served = Served(all_types_model(batch=3))
    reqs = [await served.request(7, fmt=fmt, tracking_id=f"trk-{k}") for k in range(3)]
    for req in reqs:
        logger.observe(req)
    await logger.stop(10)
    assert metrics.value("logging.kafka_sent", model_id="m1") == 9
    values = consume(broker.bootstrap, topic, 9)
    assert len(values) == 9
    schema = derive_schema(served.model)
    by_tracking: dict[str, list[tuple[list[str], list[list[bytes | None]]]]] = {}
    for value in values:
        event, log = unwrap(value)
        assert event.event_name == "inferflow_inference_logs"
        assert event.created_at == 1_700_000_000
        assert unpack_metadata(log.metadata)[2] == fmt
        rows = FORMATS[fmt].decode([f.encoded_features for f in log.features], schema.entries)
        by_tracking.setdefault(log.tracking_id, []).append((list(log.entities), rows))
    for k, req in enumerate(reqs):
        chunks = by_tracking[f"trk-{k}"]
        assert [len(ents) for ents, _ in chunks] == [3, 3, 1]  # log_batch_size 3
        rows = [r for _, rs in chunks for r in rs]
        assert [e for ents, _ in chunks for e in ents] == [f"t{i}" for i in range(7)]
        for j, entry in enumerate(schema.entries):
            want = req.ctx.matrix.cells(entry.name, entry.dtype)
            for i, cell in enumerate(want):
                if cell:
                    assert rows[i][j] == cell, (entry.name, i)


async def test_broker_outage_keeps_observe_fast_counts_failures_and_resumes(broker: Broker) -> None:
    topic = "logs_outage"
    broker.create_topic(topic)
    logger, metrics = kafka_logger(broker, topic, **{"message.timeout.ms": 2000})
    await logger.start()
    served = Served(all_types_model())
    broker.stop()
    req = await served.request(50, tracking_id="lost")
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        logger.observe(req)
        times.append(time.perf_counter() - t0)
    assert float(np.median(times)) < 0.001, times
    assert max(times) < 0.02, times  # no request waits on the sink
    failed = lambda: metrics.value("logging.error", model_id="m1", error_type="kafka-v2-error")  # noqa: E731
    assert await wait_for(lambda: failed() >= 20, 15), failed()
    assert metrics.value("logging.kafka_sent", model_id="m1") == 0

    broker.start(topics=(topic,))
    for k in range(3):
        logger.observe(await served.request(5, tracking_id=f"back-{k}"))
    assert await wait_for(lambda: metrics.value("logging.kafka_sent", model_id="m1") >= 3, 20)
    await logger.stop(5)
    values = consume(broker.bootstrap, topic, 3)
    assert sorted(unwrap(v)[1].tracking_id for v in values) == ["back-0", "back-1", "back-2"]
