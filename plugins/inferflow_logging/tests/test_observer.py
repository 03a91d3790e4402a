"""The observer on a served model: sampling, schema, chunking, queue bounds, slates, file sink + CLI."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from iflog_support import ALL_TYPES, SECTIONS, Served, all_types_model
from inferflow_logging import InferenceLogger, LoggingSettings
from inferflow_logging.envelope import SLATE_EVENT_NAME, unwrap
from inferflow_logging.formats import FORMATS
from inferflow_logging.records import encode_request
from inferflow_logging.sampling import user_day_enabled
from inferflow_logging.schema import derive_schema
from inferflow_logging.sinks import read_delimited

from inferflow_core.api import DataType, Metrics

FMTS = ("proto", "arrow", "parquet")


def file_logger(tmp_path: Path, **kw: object) -> tuple[InferenceLogger, Metrics]:
    metrics = Metrics()
    settings = LoggingSettings(sink="file", log_dir=str(tmp_path), **kw)  # type: ignore[arg-type]
    return InferenceLogger(settings, metrics=metrics), metrics


def test_schema_order_and_types_follow_the_reference() -> None:
    """FS outputs, numerix outputs, predator outputs, then numerix and predator inputs, typed by spec."""
    cfg = {
        "dag_execution_config": {
            "component_dependency": {"fs": ["feature_initializer"], "px": ["fs"], "nx": ["px"]}
        },
        "component_config": {
            "predator_components": [
                {
                    "component": "px",
                    "outputs": [{"name": "score", "data_type": "FP32"}],
                    "inputs": [
                        {"name": "u:emb", "data_type": "FP32Vector"},
                        {"name": "age", "data_type": "Int32"},
                    ],
                }
            ],
            "numerix_components": [
                {
                    "component": "nx",
                    "outputs": [{"name": "final", "data_type": "FP64"}],
                    "inputs": [
                        {"name": "score", "data_type": "FP32"},
                        {"name": "price", "data_type": "FP16"},
                    ],
                }
            ],
            "feature_components": [
                {
                    "component": "fs",
                    "outputs": [
                        {"name": "u:emb", "data_type": "FP32Vector"},
                        {"name": "u:n", "data_type": "Int64"},
                    ],
                    "inputs": [{"name": "user_id", "data_type": "String"}],
                }
            ],
        },
        "response_config": {"features": ["id", "final"], "logging_perc": 100},
    }
    model = Served(cfg).model
    schema = derive_schema(model)
    assert [(e.name, e.dtype) for e in schema.entries] == [
        ("u:emb", DataType.FP32_VECTOR),
        ("u:n", DataType.INT64),
        ("final", DataType.FP64),
        ("score", DataType.FP32),
        ("price", DataType.FP16),  # numerix input, typed by its column spec (Go Inferflow forced String)
        ("age", DataType.INT32),  # predator input
    ]
    cfg["response_config"]["log_features"] = True  # type: ignore[index]
    schema = derive_schema(Served(cfg).model)
    assert [(e.name, e.dtype) for e in schema.entries] == [("id", DataType.STRING), ("final", DataType.FP64)]
    assert SECTIONS  # the typed plugin registered every section used above


@pytest.mark.parametrize("fmt", FMTS)
async def test_logged_values_equal_matrix_values_and_chunking(fmt: str) -> None:
    served = Served(all_types_model(batch=4))
    req = await served.request(10, fmt=fmt)
    schema = derive_schema(served.model)
    metrics = Metrics()
    encoded = encode_request(req, schema, FORMATS[fmt], metrics)
    assert len(encoded.messages) == 3  # 10 rows in chunks of 4
    entities, cells = [], []
    for msg in encoded.messages:
        event, log = unwrap(msg.value)
        assert event.event_name == "inferflow_inference_logs"
        assert event.event_id == "trk-1"
        assert log.model_config_id == "m1"
        assert log.tracking_id == "trk-1"
        entities += list(log.entities)
        cells += FORMATS[fmt].decode([f.encoded_features for f in log.features], schema.entries)
    assert entities == [f"t{i}" for i in range(10)]
    for j, entry in enumerate(schema.entries):
        want = req.ctx.matrix.cells(entry.name, entry.dtype)
        got = [row[j] for row in cells]
        for i, (w, g) in enumerate(zip(want, got, strict=True)):
            if w:
                assert g == w, (entry.name, i)
            elif fmt != "proto" or entry.dtype.is_vector:
                assert g is None, (entry.name, i)
            elif entry.dtype is DataType.STRING:
                assert g == b"0.0"
            else:
                assert g == b"\0" * entry.dtype.itemsize


async def test_sampling_tracking_id_and_percentages(tmp_path: Path) -> None:
    logger, _ = file_logger(tmp_path)
    logger._thread = object()  # type: ignore[assignment]  # decisions only: no worker
    zero = Served(all_types_model(logging_perc=0))
    full = Served(all_types_model(logging_perc=100))
    half = Served(all_types_model(logging_perc=50))
    logger.observe(await zero.request(2))
    logger.observe(await full.request(2, tracking_id=""))
    assert logger.queue.qsize() == 0
    logger.observe(await full.request(2))
    assert logger.queue.qsize() == 1
    req = await half.request(2)
    for _ in range(400):
        logger.observe(req)
    assert 120 < logger.queue.qsize() - 1 < 280  # uniform 50 %
    # RetrieveModelScore: the user-day hash decides, the same for every request of the user today
    while not logger.queue.empty():
        logger.queue.get_nowait()
    users = [f"u{i}" for i in range(200)]
    chosen = [u for u in users if user_day_enabled(u, 50)]
    assert 60 < len(chosen) < 140
    for user in users:
        for _ in range(2):
            logger.observe(await half.request(1, api="retrieve_model_score", user_id=user))
    assert logger.queue.qsize() == 2 * len(chosen)


def test_user_day_hash_matches_the_rule() -> None:
    import mmh3

    now = time.mktime((2026, 3, 7, 12, 0, 0, 0, 0, -1))
    h = mmh3.hash("user-42" + "07032026", 0, signed=True)
    assert user_day_enabled("user-42", 100, now)
    assert user_day_enabled("user-42", abs(h) % 100 + 1, now)
    assert not user_day_enabled("user-42", abs(h) % 100, now)


async def test_full_queue_drops_and_counts_and_observe_stays_fast(tmp_path: Path) -> None:
    logger, metrics = file_logger(tmp_path, queue_size=4)
    logger._thread = object()  # type: ignore[assignment]  # no worker: the queue fills up
    req = await Served(all_types_model()).request(200)
    times = []
    for _ in range(50):
        t0 = time.perf_counter()
        logger.observe(req)
        times.append(time.perf_counter() - t0)
    assert logger.queue.qsize() == 4
    assert metrics.value("logging.dropped", reason="queue_full") == 46
    assert float(np.median(times)) < 0.001, times  # decides and enqueues only (~10-30 us here)


async def test_slate_requests_log_targets_and_slates(tmp_path: Path) -> None:
    cfg = all_types_model()
    cfg["dag_execution_config"]["component_dependency"]["sl"] = ["feature_initializer"]
    cfg["component_config"]["numerix_components"] = [
        {
            "component": "sl",
            "slate": True,
            "missing_every": 0,
            "outputs": [{"name": "slate_score", "data_type": "FP32"}],
        }
    ]
    served = Served(cfg)
    req = await served.request(4, fmt="proto", api="slatewise", slates=[np.array([0, 1]), np.array([2, 3])])
    schema = derive_schema(served.model)
    encoded = encode_request(req, schema, FORMATS["proto"], Metrics())
    events = [unwrap(m.value) for m in encoded.messages]
    assert [e.event_name for e, _ in events] == ["inferflow_inference_logs", SLATE_EVENT_NAME]
    slate_log = events[1][1]
    assert list(slate_log.entities) == ["t0,t1", "t2,t3"]
    rows = FORMATS["proto"].decode([f.encoded_features for f in slate_log.features], schema.slate_entries)
    assert rows == [[np.float32(0.25).tobytes()], [np.float32(0.75).tobytes()]]


@pytest.mark.parametrize("encoder", ["thread", "process"])
@pytest.mark.parametrize("fmt", FMTS)
async def test_file_sink_round_trip_through_cli(tmp_path: Path, fmt: str, encoder: str) -> None:
    logger, metrics = file_logger(tmp_path / "logs", encoder=encoder)
    await logger.start()
    served = Served(all_types_model(batch=3))
    reqs = [
        await served.request(5, fmt=fmt, tracking_id=f"trk-{k}", metadata={"clp_id": ["", "c9"]})
        for k in range(2)
    ]
    for req in reqs:
        logger.observe(req)
    await logger.stop(10)
    files = sorted((tmp_path / "logs").glob("inferflow_inference_logs-*-*.binpb"))
    assert len(files) == 1
    assert len(list(read_delimited(files[0]))) == 4
    assert metrics.value("logging.logged", model_id="m1", sink="file") == 4
    cli = Path(sys.executable).parent / "inferflow"
    out = await asyncio.to_thread(
        subprocess.run,
        [str(cli), "logs", "read", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ},
    )
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(x["tracking_id"], x["entity"]) for x in lines] == [
        (f"trk-{k}", f"t{i}") for k in range(2) for i in range(5)
    ]
    first = lines[0]
    assert first["model_config_id"] == "m1"
    assert first["format"] == fmt
    assert first["parent_entity"] == ["c9"]
    matrix = reqs[0].ctx.matrix
    for dt in ALL_TYPES:
        name = f"f_{dt.name.lower()}"
        assert first["features"][name] == matrix.texts(name)[0], name
    assert lines[3]["features"]["f_fp32_vector"] in (None,)  # row 3 is missing in every column


class _SlowFileSink:
    """The file sink with a write that takes 0.5 s: the worker is busy when shutdown comes."""

    name = "file"

    def create(self, settings: LoggingSettings, metrics: Metrics) -> object:
        from inferflow_logging.sinks import FileSink

        inner = FileSink().create(settings, metrics)
        real_write = inner.write

        def slow_write(messages: list) -> None:
            time.sleep(0.5)
            real_write(messages)

        inner.write = slow_write  # type: ignore[method-assign]
        return inner


async def test_logs_lost_at_shutdown_are_reported_with_counts(tmp_path: Path, caplog) -> None:
    import asyncio
    import logging

    settings = LoggingSettings(sink="file", log_dir=str(tmp_path), encoder="thread")
    metrics = Metrics()
    logger = InferenceLogger(settings, metrics=metrics, sinks={"file": _SlowFileSink()})
    await logger.start()
    req = await Served(all_types_model()).request(3)
    logger.observe(req)
    await asyncio.sleep(0.1)  # the worker takes it and is writing
    for _ in range(5):
        logger.observe(req)
    with caplog.at_level(logging.INFO, logger="inferflow.logging"):
        await logger.stop(0.1)
    lines = [r.getMessage() for r in caplog.records if "shutdown" in r.getMessage()]
    assert any("5 log record(s) lost at shutdown" in line and "still busy" in line for line in lines), lines
    assert metrics.value("logging.dropped", reason="shutdown") == 5


async def test_clean_shutdown_says_everything_was_written(tmp_path: Path, caplog) -> None:
    import logging

    logger, _ = file_logger(tmp_path, encoder="thread")
    await logger.start()
    logger.observe(await Served(all_types_model()).request(3))
    with caplog.at_level(logging.INFO, logger="inferflow.logging"):
        await logger.stop(5.0)
    assert any("every queued log record was written" in r.getMessage() for r in caplog.records)
