"""SIGTERM with requests in flight: ``inferflow serve`` (a subprocess) finishes all of them, exits 0."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import numpy as np
import pytest

from inferflow_core._proto import predict_pb2, predict_pb2_grpc
from inferflow_core.config.sources import write_config_dir
from inferflow_core.testing.process import ServeProcess
from tests.serving_support import PREFIX, REPO, _model, _plugin_dir, point_request

pytestmark = pytest.mark.integration

SLOW = _model(
    {"sleeper": ["feature_initializer"]},
    [{"component": "sleeper", "outputs": [{"name": "score"}], "sleep_ms": 800, "value": 0.5}],
    ["catalog_id", "score"],
)


async def test_sigterm_finishes_in_flight_requests(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    write_config_dir(cfg, {PREFIX + "slow": SLOW})
    server = ServeProcess(
        cfg,
        env={"INFERFLOW_SHUTDOWN_GRACE_S": "10"},
        pythonpath=[str(_plugin_dir(tmp_path)), str(REPO)],
        log_path=tmp_path / "serve.log",
    )
    await asyncio.to_thread(server.start)
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = predict_pb2_grpc.PredictStub(channel)
            await channel.channel_ready()
            calls = [
                asyncio.ensure_future(stub.InferPointWise(point_request("slow", prices=(b"1",)), timeout=15))
                for _ in range(8)
            ]
            await asyncio.sleep(0.3)  # all 8 are inside the 800 ms component now
            server.terminate()
            results = await asyncio.gather(*calls, return_exceptions=True)
            code = await asyncio.to_thread(server.wait, 20)
    finally:
        server.kill()
    log = (tmp_path / "serve.log").read_text(errors="replace")
    assert code == 0, log[-3000:]
    for res in results:
        assert isinstance(res, predict_pb2.PointWiseResponse), f"{res!r}\n{log[-3000:]}"
        assert np.frombuffer(res.target_scores[0].output_values[1], "<f4")[0] == np.float32(0.5)
        assert res.target_scores[0].error == ""
    assert '"msg": "shutdown requested, draining"' in log


async def test_stop_closes_component_types_even_when_one_fails() -> None:
    """Component types with long-lived resources get ``aclose()`` at shutdown; a failing or hanging
    one is logged and does not keep the others (or the process) from closing."""
    from inferflow_core.api import hookimpl
    from inferflow_core.components.base import close_component_types
    from inferflow_core.testing import make_runtime
    from inferflow_core.testing.server import running_server
    from tests.helpers import ProbeType

    closed: list[str] = []

    class Closing(ProbeType):
        def __init__(self, key: str, mode: str) -> None:
            self.config_key, self.mode = key, mode

        async def aclose(self) -> None:
            if self.mode == "fail":
                raise RuntimeError("boom")
            if self.mode == "hang":
                await asyncio.sleep(60)
            closed.append(self.config_key)

    class Plugin:
        @hookimpl
        def register_components(self, register):  # type: ignore[no-untyped-def]
            register(Closing("a_components", "ok"))
            register(Closing("b_components", "fail"))
            register(Closing("c_components", "ok"))

    async with running_server(make_runtime(closing=Plugin()), {}):
        pass
    assert sorted(closed) == ["a_components", "c_components"]
    hang = {"h_components": Closing("h_components", "hang")}
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert await close_component_types(hang, 0.2) == ["h_components"]
    assert loop.time() - t0 < 2
