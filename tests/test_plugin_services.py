"""``inferflow-onfs serve`` and ``inferflow-numerix serve`` as deployable services: grpc.health.v1,
reflection, ``/metrics`` and health on an HTTP port, graceful SIGTERM (the core's ``serve_grpc_service``)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from inferflow_core.testing.process import pick_free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _commands(tmp_path: Path) -> list[tuple[list[str], str]]:
    (tmp_path / "onfs").mkdir()
    return [
        ([str(BIN / "inferflow-onfs"), "serve", "--data", str(tmp_path / "onfs")], "retrieve.FeatureService"),
        (
            [
                str(BIN / "inferflow-numerix"),
                "serve",
                "--config-dir",
                str(ROOT / "inferflow_core/example/config"),
            ],
            "numerix.Numerix",
        ),
    ]


def _health(channel: grpc.Channel, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return int(stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2).status)


def _services(channel: grpc.Channel) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    return {s.name for r in replies for s in r.list_services_response.service}


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


@pytest.mark.integration
@pytest.mark.parametrize("which", [0, 1], ids=["onfs", "numerix"])
def test_plugin_server_is_a_real_service(tmp_path: Path, which: int) -> None:
    cmd, service = _commands(tmp_path)[which]
    port, metrics_port = pick_free_port(), pick_free_port()
    proc = subprocess.Popen(
        [*cmd, "--port", str(port), "--metrics-port", str(metrics_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            end = time.monotonic() + 30
            while True:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                try:
                    if _health(channel, "") == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.RpcError:
                    pass
                assert time.monotonic() < end, "not SERVING in time"
                time.sleep(0.1)
            assert _health(channel, service) == health_pb2.HealthCheckResponse.SERVING
            assert {service, "grpc.health.v1.Health"} <= _services(channel)
        assert _get(metrics_port, "/health/self") == (200, "true")
        assert _get(metrics_port, "/health/ready")[0] == 200
        status, text = _get(metrics_port, "/metrics")
        assert status == 200
        counted = re.search(
            r"^inferflow_grpc_server_handled_total"
            r'\{[^}]*grpc_code="OK"[^}]*grpc_method="Check"[^}]*\} (\S+)$',
            text,
            re.M,
        )
        assert counted
        assert float(counted.group(1)) >= 2
        assert "process_resident_memory_bytes" in text
        assert "inferflow_api_requests_total" not in text  # not the main server's families
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
