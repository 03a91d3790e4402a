"""Configs from a real etcd: push, serve, hot reload, rejection, delete, and an etcd outage."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aetcd
import grpc
import numpy as np
import pytest

from inferflow_core import cli
from inferflow_core._proto import predict_pb2_grpc
from inferflow_core.config.etcd_source import EtcdSource, parse_endpoint
from inferflow_core.config.push import push
from inferflow_core.config.sources import read_config_dir, write_config_dir
from inferflow_core.serving.server import make_source
from inferflow_core.testing.server import running_server
from tests.test_serving import POINT, PREFIX, make_runtime, point_request

pytestmark = pytest.mark.integration


def _with_value(value: float) -> str:
    return POINT.replace('"value": 0.5', f'"value": {value}')


async def _score(stub: Any, model: str = "point") -> float:
    resp = await stub.InferPointWise(point_request(model, prices=(b"1",)), timeout=5)
    return float(np.frombuffer(resp.target_scores[0].output_values[1], dtype="<f4")[0])


async def _wait_for(stub: Any, value: float, within: float) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        got = await _score(stub)
        if got == value:
            return loop.time() - start
        if loop.time() - start > within:
            raise AssertionError(f"still serving {got}, wanted {value} after {within}s")
        await asyncio.sleep(0.02)


async def _put(endpoint: str, key: str, value: str) -> None:
    host, port = parse_endpoint(endpoint)
    async with aetcd.Client(host, port, timeout=5) as client:
        await client.put(("/config/" + key).encode(), value.encode())


async def test_etcd_serve_reload_reject_delete_and_outage(etcd_server, tmp_path: Path) -> None:
    write_config_dir(tmp_path, {PREFIX + "point": _with_value(0.5), PREFIX + "other": _with_value(3)})
    plan = await push(etcd_server.endpoint, read_config_dir(tmp_path), dry_run=False)
    assert len(plan.added) == 2

    runtime = make_runtime(etcd_server=etcd_server.endpoint)
    source = make_source(runtime)  # through the registered "etcd" factory
    assert isinstance(source, EtcdSource)
    async with running_server(runtime, source=source) as srv:
        stub = predict_pb2_grpc.PredictStub(srv.channel)
        assert await _score(stub) == 0.5
        assert await _score(stub, "other") == 3

        # a change in etcd is used by the next request within 1 s
        await _put(etcd_server.endpoint, PREFIX + "point", _with_value(0.25))
        assert await _wait_for(stub, 0.25, within=1.0) < 1.0

        # an invalid version is rejected; the last good one keeps serving
        broken = json.loads(_with_value(0.125))
        broken["dag_execution_config"]["component_dependency"]["ghost"] = ["scorer"]
        version = runtime.store.current.version
        await _put(etcd_server.endpoint, PREFIX + "point", json.dumps(broken))
        for _ in range(100):
            if runtime.store.current.version > version:
                break
            await asyncio.sleep(0.02)
        assert "point" in runtime.store.current.errors
        assert "ghost" in runtime.store.current.errors["point"].message
        assert await _score(stub) == 0.25
        ok, details = srv.server.readiness()
        assert ok and "point" in details["rejected_models"]

        # a delete removes exactly that model
        host, port = parse_endpoint(etcd_server.endpoint)
        async with aetcd.Client(host, port, timeout=5) as client:
            await client.delete(("/config/" + PREFIX + "other").encode())
        for _ in range(100):
            if "other" not in runtime.store.current.models:
                break
            await asyncio.sleep(0.02)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _score(stub, "other")
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert await _score(stub) == 0.25

        # outage: etcd goes down; a change is made while the server cannot see etcd (etcd is up on
        # another port only); etcd comes back on its port; the server re-watches from its last
        # revision + 1 and picks the change up.
        main_port = etcd_server.client_port
        await asyncio.to_thread(etcd_server.stop)
        from inferflow_core.testing.ports import pick_free_port

        side_port = pick_free_port()
        await asyncio.to_thread(etcd_server.start, side_port)
        await _put(f"127.0.0.1:{side_port}", PREFIX + "point", _with_value(0.75))
        await asyncio.to_thread(etcd_server.stop)
        assert await _score(stub) == 0.25  # still serving from the snapshot during the outage
        await asyncio.to_thread(etcd_server.start, main_port)
        await _wait_for(stub, 0.75, within=8.0)
        assert "point" not in runtime.store.current.errors


def test_config_push_cli_dry_run_then_write(etcd_server, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("ETCD_SERVER", etcd_server.endpoint)
    write_config_dir(tmp_path, {PREFIX + "point": _with_value(0.5)})
    assert cli.main(["config", "push", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"+ {PREFIX}point (new)" in out and "would write 1 key(s)" in out
    assert cli.main(["config", "push", str(tmp_path), "--dry-run"]) == 0
    assert "would write 1 key(s)" in capsys.readouterr().out  # dry run wrote nothing
    assert cli.main(["config", "push", str(tmp_path)]) == 0
    assert "wrote 1 key(s): 1 new" in capsys.readouterr().out
    write_config_dir(tmp_path, {PREFIX + "point": _with_value(0.25)})
    assert cli.main(["config", "push", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"~ {PREFIX}point" in out and "0.25" in out
    assert "would write 1 key(s): 0 new, 1 changed" in out
