"""The encoder process (INFERFLOW_LOG_ENCODER=process): same bytes as the thread encoder, counters in
the parent's registry, a killed child restarted and counted, a stop that overruns its grace bounded."""

from __future__ import annotations

import asyncio
import functools
import time
from pathlib import Path

from iflog_support import Served, all_types_model
from inferflow_logging import InferenceLogger, LoggingSettings, encoder_process
from inferflow_logging.procworker import DeltaMetrics, frame_size, pack_request
from inferflow_logging.records import extract_request
from inferflow_logging.schema import derive_schema
from inferflow_logging.sinks import read_delimited

from inferflow_core.api import Metrics


def logger_for(tmp: Path, encoder: str, **kw: object) -> tuple[InferenceLogger, Metrics]:
    metrics = Metrics()
    settings = LoggingSettings(sink="file", log_dir=str(tmp), encoder=encoder, **kw)  # type: ignore[arg-type]
    return InferenceLogger(settings, metrics=metrics), metrics


def records(tmp: Path) -> list[bytes]:
    return [r for f in sorted(tmp.glob("*.binpb")) for r in read_delimited(f)]


async def wait_for(predicate, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return bool(predicate())


async def test_process_encoder_writes_the_bytes_the_thread_encoder_writes(tmp_path: Path) -> None:
    cfg = all_types_model(batch=4)
    cfg["dag_execution_config"]["component_dependency"]["sl"] = ["feature_initializer"]
    cfg["component_config"]["numerix_components"] = [
        {
            "component": "sl",
            "slate": True,
            "missing_every": 0,
            "outputs": [{"name": "s", "data_type": "FP32"}],
        }
    ]
    served = Served(cfg)
    reqs = []
    for k, fmt in enumerate(("proto", "arrow", "parquet") * 2):
        slates = [[0, 1], [2, 3, 4]] if k % 2 else None
        api = "slatewise" if slates else "pointwise"
        reqs.append(await served.request(9, fmt=fmt, tracking_id=f"trk-{k}", api=api, slates=slates))
    out: dict[str, list[bytes]] = {}
    for encoder in ("thread", "process"):
        logger, metrics = logger_for(tmp_path / encoder, encoder)
        await logger.start()
        for req in reqs:
            logger.observe(req)
        await logger.stop(20)
        out[encoder] = records(tmp_path / encoder)
        assert metrics.value("logging.logged", model_id="m1", sink="file") == len(out[encoder])
        assert metrics.value("logging.entities", model_id="m1") > 6 * 9
        assert metrics.value("logging.dropped") == 0
    assert len(out["process"]) > len(reqs) * 3  # chunks of 4, plus the slate logs
    assert out["process"] == out["thread"]


async def test_event_loop_feeds_the_ring_once_the_child_is_up(tmp_path: Path) -> None:
    """With the child running, observe() puts each log in the ring itself (no hand-off to the thread)
    and the descriptors reach the child within the linger period; the bytes are the thread encoder's."""
    served = Served(all_types_model(batch=4))
    reqs = [
        await served.request(9, fmt=f, tracking_id=f"e-{k}") for k, f in enumerate(["proto", "parquet"] * 5)
    ]
    out: dict[str, list[bytes]] = {}
    for encoder in ("thread", "process"):
        logger, metrics = logger_for(tmp_path / encoder, encoder)
        await logger.start()
        if encoder == "process":
            enc = logger.encoder
            assert enc is not None
            assert await wait_for(enc.alive)
        for req in reqs:
            logger.observe(req)
        if encoder == "process":
            assert logger.offered == len(reqs)
            logged = functools.partial(metrics.value, "logging.logged", model_id="m1", sink="file")
            assert await wait_for(lambda f=logged: f() >= 30)  # before stop: the scheduled flush sent them
        await logger.stop(20)
        out[encoder] = records(tmp_path / encoder)
        assert metrics.value("logging.dropped") == 0
    assert out["process"] == out["thread"]


async def test_process_encoder_ring_wraps_and_waits_for_room(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A ring holding a few frames: frames wrap around it and wait for the child to free room, a frame
    over a quarter of it goes through the pipe; every log is written, in order, as the thread writes it."""
    served = Served(all_types_model(batch=4))
    small = [await served.request(9, fmt="proto", tracking_id=f"s-{k}") for k in range(40)]
    big = await served.request(300, fmt="parquet", tracking_id="big")
    reqs = [*small[:20], big, *small[20:]]
    frame = frame_size(
        pack_request(1, extract_request(small[0], derive_schema(served.model), "proto", Metrics()))
    )
    monkeypatch.setattr(encoder_process, "RING_BYTES", frame * 5)
    out: dict[str, list[bytes]] = {}
    for encoder in ("thread", "process"):
        logger, metrics = logger_for(tmp_path / encoder, encoder, linger_ms=0)
        await logger.start()
        for req in reqs:
            logger.observe(req)
        await logger.stop(20)
        out[encoder] = records(tmp_path / encoder)
        assert metrics.value("logging.dropped") == 0
    assert logger.encoder is not None
    assert logger.encoder.ring_frames == 40
    assert logger.encoder.pipe_frames == 1
    assert out["process"] == out["thread"]


async def test_killed_encoder_process_is_restarted_and_counted(tmp_path: Path) -> None:
    logger, metrics = logger_for(tmp_path, "process", linger_ms=0)
    await logger.start()
    served = Served(all_types_model())
    req = await served.request(5)
    logger.observe(req)
    assert await wait_for(lambda: metrics.value("logging.logged", model_id="m1", sink="file") == 1)
    assert logger.encoder is not None
    assert logger.encoder.proc is not None
    first = logger.encoder.proc.pid
    logger.encoder.proc.kill()
    await asyncio.sleep(0.3)  # the server carries on; the logger notices on its next round
    for _ in range(3):
        logger.observe(req)
    ok = await wait_for(lambda: metrics.value("logging.logged", model_id="m1", sink="file") >= 2, 30)
    assert ok, metrics.value("logging.worker_restarts")
    assert metrics.value("logging.worker_restarts") == 1
    assert logger.encoder.proc is not None
    assert logger.encoder.proc.pid != first
    await logger.stop(20)
    logged = metrics.value("logging.logged", model_id="m1", sink="file")
    dropped = metrics.value("logging.dropped")
    assert logged + dropped == 4
    assert len(records(tmp_path)) == logged


async def test_process_encoder_stop_is_bounded_by_the_grace_period(tmp_path: Path) -> None:
    logger, metrics = logger_for(tmp_path, "process", queue_size=64)
    await logger.start()
    req = await Served(all_types_model()).request(200)
    for _ in range(64):
        logger.observe(req)
    t0 = time.monotonic()
    await logger.stop(0.05)
    assert time.monotonic() - t0 < 2.5  # grace + killing the child and joining the thread
    logged = metrics.value("logging.logged", model_id="m1", sink="file")
    assert logged + metrics.value("logging.dropped", reason="shutdown") == 64
    assert logger.encoder is None or not logger.encoder.alive()


async def test_auto_encodes_parquet_and_arrow_in_the_child_and_proto_here(tmp_path: Path) -> None:
    """The default (auto): no child while only proto is logged; the first parquet log starts it; the
    mix is written with the thread encoder's bytes (files differ: two writers, each in order)."""
    served = Served(all_types_model(batch=4))
    protos = [await served.request(9, fmt="proto", tracking_id=f"p-{k}") for k in range(4)]
    heavy = [await served.request(9, fmt=f, tracking_id=f"h-{k}") for k, f in enumerate(["parquet", "arrow"])]
    out: dict[str, list[bytes]] = {}
    for encoder in ("thread", "auto"):
        logger, metrics = logger_for(tmp_path / encoder, encoder)
        assert LoggingSettings().encoder == "auto"
        await logger.start()
        for req in protos:
            logger.observe(req)
        logged = functools.partial(metrics.value, "logging.logged", model_id="m1", sink="file")
        assert await wait_for(lambda f=logged: f() >= 12)
        if encoder == "auto":
            assert logger.encoder is not None
            assert logger.encoder.starts == 0
        for req in heavy:
            logger.observe(req)
        await logger.stop(20)
        out[encoder] = records(tmp_path / encoder)
        assert metrics.value("logging.dropped") == 0
        if encoder == "auto":
            assert logger.encoder is not None
            assert logger.encoder.starts == 1
    assert sorted(out["auto"]) == sorted(out["thread"])
    assert len(out["auto"]) == 18


def test_child_counters_are_summed_per_label_set_in_any_order() -> None:
    """The child's counter deltas: one entry per name and label set (labels as text, in any order)."""
    metrics = DeltaMetrics()
    metrics.count("logging.logged", model_id="m", sink="file")
    metrics.count("logging.logged", 2, sink="file", model_id="m")
    metrics.count("logging.logged", model_id="n", sink="file")
    metrics.count("logging.error", model_id=["m"], error_type="x")  # a value that cannot be hashed
    metrics.count("logging.error", model_id=["m"], error_type="x")
    metrics.count("logging.entities", 5, count=3)
    assert sorted(metrics.drain(), key=repr) == sorted(
        [
            ("logging.logged", {"model_id": "m", "sink": "file"}, 3.0),
            ("logging.logged", {"model_id": "n", "sink": "file"}, 1.0),
            ("logging.error", {"model_id": "['m']", "error_type": "x"}, 2.0),
            ("logging.entities", {"count": "3"}, 5.0),
        ],
        key=repr,
    )
    assert metrics.drain() == []
