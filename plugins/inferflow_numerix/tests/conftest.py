"""Fixtures: ``inferflow-numerix serve`` as a subprocess on a free loopback port (bounded waits)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from inferflow_core.testing import pick_free_port

SERVE_BIN = Path(sys.executable).parent / "inferflow-numerix"


def _wait_listening(proc: subprocess.Popen, port: int, timeout: float = 20.0) -> None:
    """For a TLS server (a plaintext channel never becomes ready): wait until the port accepts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"inferflow-numerix serve exited with {proc.returncode}: {proc.stderr.read()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"inferflow-numerix serve not listening on port {port} after {timeout}s")


def _wait_ready(proc: subprocess.Popen, port: int, timeout: float = 20.0) -> None:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"inferflow-numerix serve exited with {proc.returncode}: {proc.stderr.read()}"
                )
            with contextlib.suppress(grpc.FutureTimeoutError):
                grpc.channel_ready_future(channel).result(timeout=0.5)
                return
        raise TimeoutError(f"inferflow-numerix serve not ready on port {port} after {timeout}s")
    finally:
        channel.close()


@pytest.fixture(scope="session")
def start_numerix_server() -> Iterator[Callable[..., int]]:
    """``start(config_dir, auth_token="", *extra_args) -> port``; every server is stopped at the end of
    the session. ``extra_args`` such as ``--tls-cert C --tls-key K`` are passed to ``serve``."""
    procs: list[subprocess.Popen] = []

    def start(config_dir: Path, auth_token: str = "", *extra_args: str) -> int:
        port = pick_free_port()
        cmd = [str(SERVE_BIN), "serve", "--config-dir", str(config_dir), "--port", str(port), *extra_args]
        if auth_token:
            cmd += ["--auth-token", auth_token]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        (_wait_listening if "--tls-cert" in extra_args else _wait_ready)(proc, port)
        return port

    yield start
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
