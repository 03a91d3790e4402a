"""The amplification request (issue 19) against a real ``inferflow serve`` whose address space is capped
(RLIMIT_AS at its size after start-up + 512 MiB): INVALID_ARGUMENT, and the worker keeps serving.

Before the budgets the request allocated rows x max-dim (~4 GB): MemoryError, answered INTERNAL."""

from __future__ import annotations

import asyncio
import resource
import sys
from pathlib import Path

import grpc
import pytest

from inferflow_core._proto import predict_pb2_grpc
from inferflow_core.config.sources import write_config_dir
from inferflow_core.testing.process import ServeProcess
from tests.serving_support import PREFIX, REPO, TREE, _plugin_dir, amplification_request, point_request

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS via prlimit is Linux-only"),
]


def _vm_size(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize")


async def test_amplification_request_under_a_memory_limit(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    write_config_dir(cfg, {PREFIX + "point": TREE[PREFIX + "point"]})
    server = ServeProcess(
        cfg, pythonpath=[str(_plugin_dir(tmp_path)), str(REPO)], log_path=tmp_path / "serve.log"
    )
    await asyncio.to_thread(server.start)
    try:
        assert server.proc is not None
        pid = server.proc.pid
        cap = _vm_size(pid) + (512 << 20)
        resource.prlimit(pid, resource.RLIMIT_AS, (cap, cap))
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = predict_pb2_grpc.PredictStub(channel)
            for _ in range(3):
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await stub.InferPointWise(amplification_request(), timeout=20)
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
                assert "INFERFLOW_MAX_DECODED_CELLS" in (err.value.details() or "")
            ok = await stub.InferPointWise(point_request(), timeout=10)
            assert len(ok.target_scores) == 3
        assert server.proc.poll() is None, (tmp_path / "serve.log").read_text(errors="replace")[-2000:]
    finally:
        server.kill()
