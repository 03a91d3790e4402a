"""The encoder process (INFERFLOW_LOG_ENCODER=process): same bytes as the thread encoder, counters in
the parent's registry, a killed child restarted and counted, a stop that overruns its grace bounded."""

from __future__ import annotations

import asyncio
import functools
import time
from pathlib import Path

from iflog_support import FeatherFormat, Served, all_types_model
from inferflow_logging import InferenceLogger, LoggingSettings, encoder_process
from inferflow_logging.formats import FORMATS
from inferflow_logging.procworker import DeltaMetrics, frame_size, pack_request
from inferflow_logging.records import extract_request
from inferflow_logging.schema import derive_schema
from inferflow_logging.sinks import read_delimited

from inferflow_core.api import Metrics, ServedRequest


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


def slate_model(batch: int) -> dict:
    """Every type's columns plus a slate component: target and slate logs."""
    cfg = all_types_model(batch=batch)
    cfg["dag_execution_config"]["component_dependency"]["sl"] = ["feature_initializer"]
    cfg["component_config"]["numerix_components"] = [
        {
            "component": "sl",
            "slate": True,
            "missing_every": 0,
            "outputs": [{"name": "s", "data_type": "FP32"}],
        }
    ]
    return cfg


async def encode_both(
    tmp: Path, reqs: list[ServedRequest]
) -> tuple[dict[str, list[bytes]], dict[str, Metrics]]:
    """The records the thread and the process encoder write for ``reqs`` (nothing dropped by either)."""
    out: dict[str, list[bytes]] = {}
    counted: dict[str, Metrics] = {}
    for encoder in ("thread", "process"):
        logger, metrics = logger_for(tmp / encoder, encoder)
        await logger.start()
        for req in reqs:
            logger.observe(req)
        await logger.stop(20)
        out[encoder], counted[encoder] = records(tmp / encoder), metrics
        assert metrics.value("logging.dropped") == 0
    return out, counted


async def test_process_encoder_writes_the_bytes_the_thread_encoder_writes(tmp_path: Path) -> None:
    served = Served(slate_model(batch=4))
    reqs = []
    for k, fmt in enumerate(("proto", "arrow", "parquet") * 2):
        slates = [[0, 1], [2, 3, 4]] if k % 2 else None
        api = "slatewise" if slates else "pointwise"
        reqs.append(await served.request(9, fmt=fmt, tracking_id=f"trk-{k}", api=api, slates=slates))
    out, counted = await encode_both(tmp_path, reqs)
    for encoder, metrics in counted.items():
        assert metrics.value("logging.logged", model_id="m1", sink="file") == len(out[encoder])
        assert metrics.value("logging.entities", model_id="m1") > 6 * 9
    assert len(out["process"]) > len(reqs) * 3  # chunks of 4, plus the slate logs
    assert out["process"] == out["thread"]


async def test_request_frames_carry_any_entity_id_and_strided_blocks(tmp_path: Path) -> None:
    """Entity ids travel joined by a separator unless one holds it; blocks that are strided views of
    the matrix and validity masks are copied into the frame as they are: the child writes what the
    thread writes, for every format, with missing cells and the ids of a slate."""
    served = Served(slate_model(batch=3))
    odd = ["a\x1fb", "", "ünï\u00e9", "x\ny", "t4", "5", "t\x1f", "7", "8"]
    plain = [f"id-{i}" for i in range(9)]
    reqs = []
    for k, fmt in enumerate(("proto", "arrow", "parquet") * 2):
        slates = [[0, 1], [2, 3, 4]] if k % 2 else None
        reqs.append(
            await served.request(
                9, fmt=fmt, tracking_id=f"odd-{k}", api="slatewise" if slates else "pointwise",
                slates=slates, ids=odd if k < 3 else plain,
            )
        )  # fmt: skip
    out, _ = await encode_both(tmp_path, reqs)
    assert len(out["process"]) >= 6 * 3
    assert out["process"] == out["thread"]
    assert any(b"a\x1fb" in r for r in out["process"])


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


async def test_auto_encodes_built_in_formats_in_the_child_and_plugin_formats_here(tmp_path: Path) -> None:
    """The default (auto): no child while only a plugin's format is logged (encoded here); the first
    built-in format log starts the child, and what arrives while it starts is encoded here rather
    than waited for; once it reported, the event loop feeds its ring. Bytes are the thread encoder's
    (files differ: two writers, each in order); nothing is dropped."""
    served = Served(all_types_model(batch=4))
    plugin = [await served.request(9, fmt="feather", tracking_id=f"p-{k}") for k in range(4)]
    burst = [
        await served.request(9, fmt=f, tracking_id=f"b-{k}")
        for k, f in enumerate(["proto", "parquet", "arrow"] * 10)
    ]
    later = [await served.request(9, fmt=f, tracking_id=f"l-{k}") for k, f in enumerate(["proto", "parquet"])]
    formats = {**FORMATS, "feather": FeatherFormat()}
    out: dict[str, list[bytes]] = {}
    for encoder in ("thread", "auto"):
        metrics = Metrics()
        settings = LoggingSettings(sink="file", log_dir=str(tmp_path / encoder), encoder=encoder)  # type: ignore[arg-type]
        logger = InferenceLogger(settings, metrics=metrics, formats=formats)
        assert LoggingSettings().encoder == "auto"
        await logger.start()
        for req in plugin:
            logger.observe(req)
        logged = functools.partial(metrics.value, "logging.logged", model_id="m1", sink="file")
        assert await wait_for(lambda f=logged: f() >= 12)
        enc = logger.encoder
        if encoder == "auto":
            assert enc is not None
            assert enc.starts == 0
        for req in burst:
            logger.observe(req)
        if enc is not None:
            assert await wait_for(lambda e=enc: e.ready)
            assert enc.ring_frames + enc.pipe_frames < len(burst)  # some encoded here meanwhile
            for req in later:
                logger.observe(req)
            assert logger.offered >= len(later)
        else:
            for req in later:
                logger.observe(req)
        await logger.stop(20)
        out[encoder] = records(tmp_path / encoder)
        assert metrics.value("logging.dropped") == 0
        if encoder == "auto":
            assert enc is not None
            assert enc.starts == 1
    assert sorted(out["auto"]) == sorted(out["thread"])
    assert len(out["auto"]) == 3 * (len(plugin) + len(burst) + len(later))


def _group_nice(pid: int | str) -> int:
    """The nice value of a process's autogroup (``/autogroup-<id> nice <n>``)."""
    return int(Path(f"/proc/{pid}/autogroup").read_text().split()[-1])


def _autogroup_applies() -> bool:
    """Autogroup is on and this process is in a session's group (the file reads empty in the root
    group, e.g. under an init process that never started a session, as on CI runners)."""
    switch = Path("/proc/sys/kernel/sched_autogroup_enabled")
    own = Path("/proc/self/autogroup")
    return switch.exists() and switch.read_text().strip() == "1" and bool(own.read_text().strip())


async def test_encoder_process_runs_below_the_server_priority(tmp_path: Path) -> None:
    """The child takes INFERFLOW_LOG_ENCODER_NICE nice levels below the server (default 10; 0: its own).
    Under autogroup it also leaves the server's session for a group as many levels below the server's,
    so the priority holds against other sessions too; with 0 it stays in the server's session."""
    import os

    own = os.getpriority(os.PRIO_PROCESS, 0)
    grouped = _autogroup_applies()
    base = _group_nice("self") if grouped else 0
    for nice, expected in ((None, min(19, own + 10)), (0, own), (3, min(19, own + 3))):
        kw = {} if nice is None else {"encoder_nice": nice}
        logger, _ = logger_for(tmp_path / f"nice-{nice}", "process", **kw)
        await logger.start()
        enc = logger.encoder
        assert enc is not None
        assert await wait_for(enc.alive)
        pid = enc.proc.pid
        priority = functools.partial(os.getpriority, os.PRIO_PROCESS, pid)
        assert await wait_for(lambda p=priority, x=expected: p() == x, 10)
        if grouped:
            level = 10 if nice is None else nice
            if level:
                want = min(19, base + level)  # below the server's group
                assert await wait_for(lambda p=pid, n=want: _group_nice(p) == n, 10)
                assert os.getsid(pid) == pid != os.getsid(0)
            else:
                assert os.getsid(pid) == os.getsid(0)
        else:  # the process nice is what counts: the child stays in the server's session
            assert os.getsid(pid) == os.getsid(0)
        await logger.stop(5)


def test_no_session_of_its_own_where_the_process_is_in_the_root_group(tmp_path: Path) -> None:
    """In the root group (the autogroup file reads empty) or without autogroup, the encoder keeps the
    server's session and group: nothing to do beyond the process nice, and no error."""
    import subprocess
    import sys

    empty = tmp_path / "autogroup"
    empty.write_text("")
    code = (
        "import os, pathlib; from inferflow_logging.procworker import own_autogroup; "
        f"done = own_autogroup(10, tries=1, group=pathlib.Path({str(empty)!r})); "
        "print(done, os.getsid(0) == os.getpid())"
    )
    # start_new_session=False: the child is not a session leader, as the encoder is when spawned
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["False", "False"]
    assert empty.read_text() == ""


def test_a_frame_through_the_pipe_survives_partial_writes_of_strided_blocks() -> None:
    """A frame sent through the pipe (too large for the ring) with a strided block: the pipe takes it
    in pieces (non-blocking, a reader slower than the writer) and the bytes arrive whole and in order."""
    import os
    import threading

    import numpy as np
    from inferflow_logging.procworker import write_frames

    r, w = os.pipe()
    os.set_blocking(w, False)
    block = np.arange(600_000, dtype=np.uint32).astype(np.uint8).reshape(2000, 300)[:, ::2]
    got = bytearray()

    def reader() -> None:
        while chunk := os.read(r, 4096):
            got.extend(chunk)
            time.sleep(0.0005)

    thread = threading.Thread(target=reader)
    thread.start()
    write_frames(w, [b"head", block, b"tail"])
    os.close(w)
    thread.join(10)
    os.close(r)
    assert bytes(got) == b"head" + np.ascontiguousarray(block).tobytes() + b"tail"


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


async def test_auto_encodes_here_when_the_child_cannot_start(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A child that cannot be started: auto encodes every log in the server (nothing dropped, the
    thread encoder's bytes) and tries to start one again only after a pause, not per batch."""
    attempts = []

    def refuse(self) -> None:  # type: ignore[no-untyped-def]
        attempts.append(time.monotonic())
        raise OSError("no processes here")

    monkeypatch.setattr(encoder_process.EncoderProcess, "start", refuse)
    served = Served(all_types_model(batch=4))
    reqs = [
        await served.request(9, fmt=f, tracking_id=f"n-{k}") for k, f in enumerate(["proto", "parquet"] * 6)
    ]
    out: dict[str, list[bytes]] = {}
    for encoder in ("thread", "auto"):
        settings = LoggingSettings(sink="file", log_dir=str(tmp_path / encoder), encoder=encoder, linger_ms=0)  # type: ignore[arg-type]
        metrics = Metrics()
        logger = InferenceLogger(settings, metrics=metrics)
        await logger.start()
        for req in reqs:
            logger.observe(req)
            await asyncio.sleep(0.02)  # separate batches for the logging thread
        await logger.stop(20)
        out[encoder] = records(tmp_path / encoder)
        assert metrics.value("logging.dropped") == 0
    assert sorted(out["auto"]) == sorted(out["thread"])
    assert len(attempts) == 1  # the batches after the failure within the pause did not try again
