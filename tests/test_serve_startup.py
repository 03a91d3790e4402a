"""``inferflow serve`` start-up (issue 12): a config dir that does not exist or a port in use exits at
once, non-zero, with one clear line; ports 0 mean free ports, reported in the ready line; an early
SIGTERM to a multi-worker server exits 0."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from inferflow_core.config.sources import write_config_dir
from inferflow_core.serving.app import _settings
from inferflow_core.testing.ports import pick_free_port
from tests.serving_support import POINT, PREFIX

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "inferflow_core.cli", "serve", *args]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"INFERFLOW_BIND_HOST": "127.0.0.1", "INFERFLOW_LOG_JSON": "false"})
    for name in ("ETCD_SERVER", "INFERFLOW_CONFIG_SOURCE", "INFERFLOW_CONFIG_DIR", "INFERFLOW_HTTP_PORT"):
        env.pop(name, None)
    return env


def test_nonexistent_config_dir_exits_at_once_with_one_line(tmp_path: Path) -> None:
    started = time.monotonic()
    out = subprocess.run(
        _cmd("--config-dir", str(tmp_path / "nope"), "--port", "0"),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert lines == [f"inferflow serve: error: config directory {tmp_path / 'nope'} does not exist"], (
        out.stderr
    )
    assert time.monotonic() - started < 30


def test_port_in_use_exits_at_once_with_one_line(tmp_path: Path) -> None:
    write_config_dir(tmp_path, {PREFIX + "point": POINT})
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = subprocess.run(
            _cmd("--config-dir", str(tmp_path), "--port", str(port), "--http-port", "0"),
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode == 1, out.stderr
    errors = [line for line in out.stderr.splitlines() if "inferflow serve: error" in line]
    assert len(errors) == 1, out.stderr
    assert f"gRPC {port}" in errors[0], out.stderr
    assert "cannot listen" in errors[0], out.stderr
    assert "Traceback" not in out.stderr


class _Args:
    def __init__(self, port: int | None, http_port: int | None) -> None:
        self.port, self.http_port, self.config_dir = port, http_port, None


def test_port_zero_means_free_ports_for_both(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INFERFLOW_HTTP_PORT", raising=False)
    assert _settings(_Args(0, None))[1:] == (0, 0)  # was (0, 1)
    assert _settings(_Args(9000, 0))[1:] == (9000, 0)  # was (9000, 9001)
    assert _settings(_Args(9000, None))[1:] == (9000, 9001)
    monkeypatch.setenv("INFERFLOW_HTTP_PORT", "0")
    assert _settings(_Args(9000, None))[1:] == (9000, 0)


_READY = re.compile(r"worker ready: gRPC port (\d+), HTTP port (\d+)")


def test_serve_on_port_zero_reports_the_bound_ports(tmp_path: Path) -> None:
    write_config_dir(tmp_path, {PREFIX + "point": POINT})
    proc = subprocess.Popen(
        _cmd("--config-dir", str(tmp_path), "--port", "0", "--http-port", "0"),
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        end = time.monotonic() + 60
        match = None
        while time.monotonic() < end and match is None and proc.poll() is None:
            time.sleep(0.05)
            match = next((m for m in map(_READY.search, list(lines)) if m), None)
        assert match, "no ready line naming the ports:\n" + "".join(lines)
        grpc_port, http_port = int(match.group(1)), int(match.group(2))
        assert grpc_port > 1024
        assert http_port > 1024
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/health/self", timeout=5) as resp:
            assert resp.read() == b"true"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        finally:
            proc.kill()
    assert code == 0


def test_multi_worker_sigterm_right_after_start_exits_zero(tmp_path: Path) -> None:
    write_config_dir(tmp_path, {PREFIX + "point": POINT})
    port, http_port = pick_free_port(), pick_free_port()
    proc = subprocess.Popen(
        _cmd(
            "--config-dir",
            str(tmp_path),
            "--port",
            str(port),
            "--http-port",
            str(http_port),
            "--workers",
            "2",
        ),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    end = time.monotonic() + 30
    while time.monotonic() < end and len(children.read_text().split()) < 2:
        time.sleep(0.01)
    # the workers are spawned but have not installed their loop's handlers yet (they take > 1 s)
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(60)
    assert code == 0, proc.stderr.read() if proc.stderr else ""
