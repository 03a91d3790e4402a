"""The hostile set against ``inferflow serve --workers 2`` in a 1 GiB memory cgroup (the limits of
deploy/base/deployment.yaml): every request answered or refused cleanly, no OOM kill, the same workers
serving.

Before the input budgets, one 193 KiB amplification request made a worker allocate ~1.9 GB (OOM kill in a
1 GiB pod) and 12 concurrent 60 MiB requests were buffered whole. Needs a writable memory cgroup (root on
cgroup v1 or v2, as in CI); skipped elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

import grpc
import pytest

from inferflow_core._proto import predict_pb2 as P
from inferflow_core.config.sources import write_config_dir
from inferflow_core.testing.process import ServeProcess
from tests.serving_support import PREFIX, REPO, TREE, _plugin_dir, amplification_request, point_request

LIMIT = 1 << 30
V1 = Path("/sys/fs/cgroup/memory")
V2 = Path("/sys/fs/cgroup")


def _memory_cgroup(name: str) -> tuple[Path, str]:
    """Create a memory cgroup limited to LIMIT; returns (dir, counter file holding oom kills)."""
    if (V1 / "memory.limit_in_bytes").exists():
        path = V1 / name
        path.mkdir()
        (path / "memory.limit_in_bytes").write_text(str(LIMIT))
        if (path / "memory.memsw.limit_in_bytes").exists():  # swap accounting on: no swapping around it
            (path / "memory.memsw.limit_in_bytes").write_text(str(LIMIT))
        return path, "memory.oom_control"
    if "memory" in (V2 / "cgroup.controllers").read_text():
        path = V2 / name
        path.mkdir()
        (path / "memory.max").write_text(str(LIMIT))
        if (path / "memory.swap.max").exists():
            (path / "memory.swap.max").write_text("0")
        return path, "memory.events"
    raise OSError("no memory controller")


def _oom_kills(path: Path, counter: str) -> int:
    for line in (path / counter).read_text().splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    return 0


@pytest.fixture
def cgroup():
    name = f"inferflow-test-{os.getpid()}-{time.monotonic_ns()}"
    try:
        path, counter = _memory_cgroup(name)
    except OSError as exc:
        pytest.skip(f"no writable memory cgroup here ({exc})")
    try:
        yield path, counter
    finally:
        for _ in range(50):  # the cgroup can be removed once its processes are gone
            try:
                path.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def _children(pid: int) -> set[int]:
    return {int(k) for k in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def hostile_requests() -> list[tuple[str, bytes]]:
    big_text = b"1.5"
    oversize = P.PointWiseRequest(
        model_config_id="point",
        target_input_schema=[P.FeatureSchema(name="price", data_type=P.DataTypeFP32)],
        targets=[P.Target(id=str(i), feature_values=[big_text * 20_000]) for i in range(1_000)],
    )  # ~60 MB: over the transport limit
    wide = P.PointWiseRequest(
        model_config_id="point",
        target_input_schema=[P.FeatureSchema(name="price", data_type=P.DataTypeFP32)],
        targets=[P.Target(id=str(i), feature_values=[b"2.5"]) for i in range(50_000)],
    )
    slates = P.SlateWiseRequest(
        model_config_id="slate",
        target_input_schema=[P.FeatureSchema(name="price", data_type=P.DataTypeFP32)],
        targets=[P.Target(id=str(i), feature_values=[b"1"]) for i in range(1_000)],
        slates=[P.TargetSlate(target_indices=[i % 1_000, (i + 1) % 1_000]) for i in range(100_000)],
    )
    point = "/Predict/InferPointWise"
    return (
        [(point, amplification_request().SerializeToString())] * 6
        + [(point, oversize.SerializeToString())] * 12
        + [(point, wide.SerializeToString())] * 4
        + [("/Predict/InferSlateWise", slates.SerializeToString())] * 2
    )


@pytest.mark.integration
async def test_hostile_set_in_a_1gib_cgroup_with_two_workers(tmp_path: Path, cgroup) -> None:
    path, counter = cgroup
    cfg = tmp_path / "cfg"
    write_config_dir(cfg, {PREFIX + k: TREE[PREFIX + k] for k in ("point", "slate")})
    server = ServeProcess(
        cfg, workers=2, pythonpath=[str(_plugin_dir(tmp_path)), str(REPO)], log_path=tmp_path / "serve.log",
        cgroup_procs=path / "cgroup.procs",
    )  # fmt: skip
    await asyncio.to_thread(server.start, 60)
    try:
        assert server.proc is not None
        workers = _children(server.proc.pid)
        assert len(workers) >= 2
        codes: dict[str, int] = {}
        async with grpc.aio.insecure_channel(
            server.address, options=[("grpc.max_send_message_length", 256 << 20)]
        ) as channel:

            async def send(method: str, raw: bytes) -> None:
                call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
                try:
                    await call(raw, timeout=60)
                    code = "OK"
                except grpc.aio.AioRpcError as err:
                    code = err.code().name
                codes[code] = codes.get(code, 0) + 1

            for _ in range(2):
                await asyncio.gather(*(send(m, r) for m, r in hostile_requests()))
            stub = channel.unary_unary("/Predict/InferPointWise", request_serializer=None)
            ok = P.PointWiseResponse.FromString(await stub(point_request().SerializeToString(), timeout=10))
        log = (tmp_path / "serve.log").read_text(errors="replace")[-3000:]
        assert len(ok.target_scores) == 3
        assert _oom_kills(path, counter) == 0, log
        assert server.proc.poll() is None, log
        assert _children(server.proc.pid) == workers, log
        assert not {"INTERNAL", "UNKNOWN", "UNAVAILABLE"} & codes.keys(), (codes, log)
    finally:
        _kill_all(path)


def _kill_all(path: Path) -> None:
    """Every process left in the cgroup (the server and its workers)."""
    for pid in (path / "cgroup.procs").read_text().split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), 9)
