"""Configs from a real etcd: push, serve, hot reload, rejection, delete, and an etcd outage."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aetcd
import grpc
import pytest

from inferflow_core import cli
from inferflow_core._proto import predict_pb2_grpc
from inferflow_core.config.etcd_source import EtcdSource, parse_endpoint
from inferflow_core.config.sources import read_config_dir, write_config_dir
from inferflow_core.push import push
from inferflow_core.serving.server import make_source
from inferflow_core.testing.server import running_server
from tests.serving_support import PREFIX, _score, _wait_for, _with_value, make_runtime

pytestmark = pytest.mark.integration


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
        assert not ok
        assert "point" in details["rejected_models"]
        assert "last good version keeps serving" in details["not_ready_because"][0]

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


@pytest.fixture
def probe_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe component visible to the CLI's entry-point scan (push validates like a server)."""
    from inferflow_core.testing.process import entry_point_plugin

    plugdir = tmp_path / "plugins"
    plugdir.mkdir()
    (plugdir / "probe_ep.py").write_text("from tests.helpers import ProbePlugin\n\nplugin = ProbePlugin()\n")
    entry_point_plugin(plugdir, "probe-ep", "probe_ep:plugin")
    monkeypatch.syspath_prepend(str(plugdir))


def test_config_push_cli_dry_run_then_write(
    etcd_server, tmp_path: Path, monkeypatch, capsys, probe_entry_point
) -> None:
    monkeypatch.setenv("ETCD_SERVER", etcd_server.endpoint)
    tmp_path = tmp_path / "cfg"
    write_config_dir(tmp_path, {PREFIX + "point": _with_value(0.5)})
    assert cli.main(["config", "push", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"+ {PREFIX}point (new)" in out
    assert "would write 1 key(s)" in out
    assert cli.main(["config", "push", str(tmp_path), "--dry-run"]) == 0
    assert "would write 1 key(s)" in capsys.readouterr().out  # dry run wrote nothing
    assert cli.main(["config", "push", str(tmp_path)]) == 0
    assert "wrote 1 key(s): 1 new" in capsys.readouterr().out
    write_config_dir(tmp_path, {PREFIX + "point": _with_value(0.25)})
    assert cli.main(["config", "push", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"~ {PREFIX}point" in out
    assert "0.25" in out
    assert "would write 1 key(s): 0 new, 1 changed" in out
    assert cli.main(["config", "push", str(tmp_path), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["changed"] == [PREFIX + "point"]
    assert plan["written"] == 1
    assert not plan["dry_run"]


def _remote_keys(endpoint: str) -> dict[str, str]:
    async def get() -> dict[str, str]:
        host, port = parse_endpoint(endpoint)
        async with aetcd.Client(host, port, timeout=5) as client:
            return {kv.key.decode(): kv.value.decode() for kv in await client.get_prefix(b"/config/")}

    return asyncio.run(get())


def test_config_push_refuses_invalid_models_unless_forced(
    etcd_server, tmp_path: Path, monkeypatch, capsys, probe_entry_point
) -> None:
    """Issue 12: push used to check only JSON syntax, so an invalid model landed in etcd (exit 0)."""
    monkeypatch.setenv("ETCD_SERVER", etcd_server.endpoint)
    cfg = tmp_path / "cfg"
    broken = json.loads(_with_value(0.5))
    broken["dag_execution_config"]["component_dependency"]["ghost"] = ["scorer"]
    write_config_dir(cfg, {PREFIX + "bad": json.dumps(broken), PREFIX + "good": _with_value(0.5)})
    assert cli.main(["config", "push", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "refusing to push invalid model config" in err
    assert "model bad:" in err
    assert "ghost" in err
    assert cli.main(["config", "push", str(cfg), "--json"]) == 1
    refusal = json.loads(capsys.readouterr().out)
    assert refusal["refused"]
    assert any("ghost" in p for p in refusal["problems"])
    assert not _remote_keys(etcd_server.endpoint)  # nothing written, not even the good model
    assert cli.main(["config", "push", str(cfg), "--force"]) == 0
    assert "wrote 2 key(s)" in capsys.readouterr().out
    assert "/config/" + PREFIX + "bad" in _remote_keys(etcd_server.endpoint)


def test_config_push_prune_deletes_models_not_in_the_directory(
    etcd_server, tmp_path: Path, monkeypatch, capsys, probe_entry_point
) -> None:
    monkeypatch.setenv("ETCD_SERVER", etcd_server.endpoint)
    cfg = tmp_path / "cfg"
    write_config_dir(cfg, {PREFIX + "keep": _with_value(0.5), PREFIX + "gone": _with_value(0.5)})
    assert cli.main(["config", "push", str(cfg)]) == 0
    (cfg / (PREFIX + "gone.json")).unlink()
    capsys.readouterr()
    assert cli.main(["config", "push", str(cfg)]) == 0
    assert "(only in etcd, left alone)" in capsys.readouterr().out
    assert cli.main(["config", "push", str(cfg), "--prune", "--dry-run"]) == 0
    assert f"- {PREFIX}gone" in capsys.readouterr().out
    assert "/config/" + PREFIX + "gone" in _remote_keys(etcd_server.endpoint)
    assert cli.main(["config", "push", str(cfg), "--prune"]) == 0
    assert "deleted 1" in capsys.readouterr().out
    keys = _remote_keys(etcd_server.endpoint)
    assert "/config/" + PREFIX + "gone" not in keys
    assert "/config/" + PREFIX + "keep" in keys


def test_config_push_with_etcd_down_is_one_clear_line(
    tmp_path: Path, monkeypatch, capsys, probe_entry_point
) -> None:
    from inferflow_core.testing.ports import pick_free_port

    monkeypatch.setenv("ETCD_SERVER", f"127.0.0.1:{pick_free_port()}")
    cfg = tmp_path / "cfg"
    write_config_dir(cfg, {PREFIX + "point": _with_value(0.5)})
    assert cli.main(["config", "push", str(cfg)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: etcd at 127.0.0.1:"), captured.err
    assert "Traceback" not in captured.err + captured.out
