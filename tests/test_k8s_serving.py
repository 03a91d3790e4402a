"""Kubernetes behaviour of ``inferflow serve``: the worker supervisor (a killed worker comes back, a crash
loop ends the process) and the gRPC max connection age."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from inferflow_core.config.settings import ServiceSettings
from inferflow_core.config.sources import write_config_dir
from inferflow_core.serving.server import grpc_server_options
from inferflow_core.serving.supervisor import EXIT_CRASH_LOOP, EXIT_STARTUP, WorkerSupervisor
from inferflow_core.testing.process import ServeProcess, entry_point_plugin
from tests.observability_support import NOOP_PLUGIN, PREFIX, _request, _sample, _scrape


def _children(pid: int) -> set[int]:
    """Worker processes of ``pid`` (spawned interpreters, not multiprocessing's resource tracker)."""
    out = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                cmd = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmd and b"resource_tracker" not in cmd:
                out.add(int(child))
    return out


def _ready_pids(log: Path) -> set[int]:
    pids = set()
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"worker ready' in line:
            record = json.loads(line)
            if record.get("msg", "").startswith("worker ready"):
                pids.add(record["pid"])
    return pids


def _wait(cond, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = cond()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.mark.integration
def test_killed_worker_is_restarted_and_serves(tmp_path: Path) -> None:
    (tmp_path / "plug").mkdir()
    (tmp_path / "plug" / "metrics_scorer.py").write_text(NOOP_PLUGIN)
    entry_point_plugin(tmp_path / "plug", "metrics-scorer", "metrics_scorer")
    model = {
        "dag_execution_config": {"component_dependency": {"s": ["feature_initializer"]}},
        "component_config": {"scorer_components": [{"component": "s"}]},
        "response_config": {"features": ["catalog_id", "score"]},
    }
    write_config_dir(tmp_path / "cfg", {PREFIX + "m": json.dumps(model)})
    env = {"APP_LOG_LEVEL": "INFO", "PROMETHEUS_MULTIPROC_DIR": ""}
    log = tmp_path / "serve.log"
    with ServeProcess(
        tmp_path / "cfg", workers=2, env=env, pythonpath=[str(tmp_path / "plug")], log_path=log
    ) as srv:
        assert srv.proc is not None
        pid = srv.proc.pid

        def two_workers(without: int = -1) -> set[int] | None:
            found = _children(pid)
            return found if len(found) == 2 and without not in found else None

        workers = _wait(two_workers)
        _wait(lambda: _ready_pids(log) >= workers)
        victim = sorted(workers)[0]
        os.kill(victim, signal.SIGKILL)
        after = _wait(lambda: two_workers(victim))
        (newcomer,) = after - workers
        _wait(lambda: newcomer in _ready_pids(log))  # the new worker bound the shared ports
        assert srv.proc.poll() is None
        payload = _request(4).SerializeToString()
        for _ in range(12):  # fresh connections: SO_REUSEPORT spreads them over both workers
            with grpc.insecure_channel(srv.address) as ch:
                ch.unary_unary("/Predict/InferPointWise")(payload, timeout=5)
        text = _scrape(srv.http_port)
        assert _sample(text, "inferflow_worker_restarts_total") == 1
        assert _sample(text, "inferflow_api_requests_total", status="OK") == 12
    assert "died with exit code -9" in log.read_text()


@pytest.mark.integration
def test_workers_stop_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    """kill -9 of the parent (the OOM killer, a node agent): its workers must not live on as orphans."""
    (tmp_path / "cfg").mkdir()
    srv = ServeProcess(tmp_path / "cfg", workers=2)
    srv.start(60)
    assert srv.proc is not None
    workers = _wait(lambda: _children(srv.proc.pid) if len(_children(srv.proc.pid)) >= 2 else None)
    srv.proc.kill()
    srv.proc.wait(5)

    def gone() -> bool:
        return not [w for w in workers if Path(f"/proc/{w}").exists() and b"Z" not in _state(w)]

    _wait(gone, timeout=15)


def _state(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().split(b") ", 1)[1][:1]
    except (OSError, IndexError):
        return b"Z"


def _exit_with(code: int) -> None:
    sys.exit(code)


def _supervisor(code: int, **kw: float) -> WorkerSupervisor:
    ctx = mp.get_context("spawn")
    return WorkerSupervisor(
        lambda i: ctx.Process(target=_exit_with, args=(code,)), 2, backoff_s=0.01, max_backoff_s=0.05, **kw
    )


def test_supervisor_gives_up_on_a_crash_loop() -> None:
    restarts: list[int] = []
    sup = _supervisor(1, max_restarts=3, window_s=30.0)
    sup.on_restart = lambda index, code: restarts.append(index)
    t0 = time.monotonic()
    assert sup.run() == EXIT_CRASH_LOOP
    assert len(restarts) == 3
    assert time.monotonic() - t0 < 30


def _ignore_stop(ready: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a worker whose shutdown hangs
    ready.set()
    time.sleep(120)


def test_supervisor_kills_a_worker_that_does_not_stop() -> None:
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    sup = WorkerSupervisor(lambda i: ctx.Process(target=_ignore_stop, args=(ready,)), 1, kill_after_s=1.0)
    timer = threading.Timer(0.0, lambda: (ready.wait(60), sup.request_stop()))
    timer.start()
    t0 = time.monotonic()
    code = sup.run()
    timer.join()
    assert code == 1  # not a clean stop
    assert 1.0 <= time.monotonic() - t0 < 20
    assert len(sup.killed) == 1


def test_supervisor_does_not_restart_a_startup_error() -> None:
    assert _supervisor(EXIT_STARTUP).run() == EXIT_STARTUP


def test_max_connection_age_reaches_the_grpc_server() -> None:
    settings = ServiceSettings(grpc_max_connection_age_s=30, grpc_max_connection_age_grace_s=5)
    options = dict(grpc_server_options(settings, reuse_port=False))
    assert options["grpc.max_connection_age_ms"] == 30000
    assert options["grpc.max_connection_age_grace_ms"] == 5000
    assert "grpc.max_connection_age_ms" not in dict(grpc_server_options(ServiceSettings(), False))


@pytest.mark.integration
def test_connections_are_recycled_after_the_max_age(tmp_path: Path) -> None:
    """With a short max age the server sends GOAWAY; a long-lived channel reconnects and keeps working."""
    (tmp_path / "plug").mkdir()
    (tmp_path / "plug" / "metrics_scorer.py").write_text(NOOP_PLUGIN)
    entry_point_plugin(tmp_path / "plug", "metrics-scorer", "metrics_scorer")
    model = {
        "dag_execution_config": {"component_dependency": {"s": ["feature_initializer"]}},
        "component_config": {"scorer_components": [{"component": "s"}]},
        "response_config": {"features": ["catalog_id", "score"]},
    }
    write_config_dir(tmp_path / "cfg", {PREFIX + "m": json.dumps(model)})
    env = {"INFERFLOW_GRPC_MAX_CONNECTION_AGE_S": "0.5", "INFERFLOW_GRPC_MAX_CONNECTION_AGE_GRACE_S": "1"}
    with ServeProcess(tmp_path / "cfg", env=env, pythonpath=[str(tmp_path / "plug")]) as srv:
        states: list[grpc.ChannelConnectivity] = []
        with grpc.insecure_channel(srv.address) as ch:
            ch.subscribe(states.append)
            call = ch.unary_unary("/Predict/InferPointWise")
            payload = _request(2).SerializeToString()
            for _ in range(8):
                call(payload, timeout=5)
                time.sleep(0.25)
            ch.unsubscribe(states.append)
        # connected, then dropped to IDLE by the GOAWAY, then connected again
        ready = [i for i, s in enumerate(states) if s is grpc.ChannelConnectivity.READY]
        assert len(ready) >= 2, states
