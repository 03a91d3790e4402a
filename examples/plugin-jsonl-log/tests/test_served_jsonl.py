"""The example format and sink selected in a real `inferflow serve` process, as an operator would.

The model is the rule-filter example's (another third-party plugin, installed beside this one): price,
stock and final_score come with the request, keep and filtered_score are computed. Service-config
``v2-logging-type: jsonl`` picks the format, ``INFERFLOW_LOG_SINK`` the sink.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from inferflow_core.testing.protos import predict_pb2 as pb
from inferflow_core.testing.protos import predict_pb2_grpc as pbg

pytestmark = pytest.mark.integration

MODEL = {
    "dag_execution_config": {"component_dependency": {"price_filter": ["feature_initializer"]}},
    "component_config": {
        "rule_filter_components": [
            {
                "component": "price_filter",
                "rules": [{"column": "price", "op": "<=", "value": 500}],
                "keep_column": "keep",
                "score_column": "final_score",
                "output_column": "filtered_score",
            }
        ]
    },
    "response_config": {"features": ["catalog_id", "keep", "filtered_score"], "logging_perc": 100},
}
CLI = [sys.executable, "-m", "inferflow_core.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(tmp_path: Path, fmt: str) -> Path:
    root = tmp_path / "config"
    base = root / "inferflow" / "services" / "inferflow" / "model-config"
    (base / "config-map").mkdir(parents=True)
    (base / "config-map" / "filtered.json").write_text(json.dumps(MODEL))
    (base / "service-config.json").write_text(json.dumps({"v2-logging-type": fmt}))
    return root


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, APP_NAME="inferflow", **extra)
    for name in ("ETCD_SERVER", "KAFKA_BOOTSTRAP_SERVERS", "INFERFLOW_LOG_SINK"):
        if name not in extra:
            env.pop(name, None)
    return env


@contextlib.contextmanager
def serve(tmp_path: Path, env: dict[str, str]) -> Iterator[tuple[int, Path]]:
    """A served model (gRPC port, file holding the server's stdout); SIGTERM (graceful stop) after."""
    port, http_port = _free_port(), _free_port()
    out_path, err_path = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        cmd = [*CLI, "serve", "--config-dir", str(tmp_path / "config"), "--port", str(port)]
        proc = subprocess.Popen([*cmd, "--http-port", str(http_port)], env=env, stdout=out, stderr=err)
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, err_path.read_text()
                url = f"http://127.0.0.1:{http_port}/health/ready"
                with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        break
                assert time.monotonic() < deadline, "server not ready in 60 s"
                time.sleep(0.1)
            yield port, out_path
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _predict(port: int, tracking_id: str) -> list[list[bytes]]:
    req = pb.PointWiseRequest(
        model_config_id="filtered",
        tracking_id=tracking_id,
        target_input_schema=[
            pb.FeatureSchema(name="price", data_type=pb.DataTypeFP32),
            pb.FeatureSchema(name="final_score", data_type=pb.DataTypeFP32),
        ],
        targets=[
            pb.Target(id="a", feature_values=[b"100", b"0.5"]),
            pb.Target(id="b", feature_values=[b"900", b"0.25"]),
            pb.Target(id="c", feature_values=[b"20", b"0.75"]),
        ],
    )
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        resp = pbg.PredictStub(channel).InferPointWise(req, timeout=10)
    assert [s.name for s in resp.target_output_schema] == ["catalog_id", "keep", "filtered_score"]
    return [list(s.output_values) for s in resp.target_scores]


# what the response's wire cells are as the core's text (bool and fp32 cells of the response)
def _text(name: str, cell: bytes) -> str | None:
    if not cell:
        return None
    if name == "keep":
        return "true" if cell == b"\x01" else "false"
    import numpy as np

    return str(float(np.frombuffer(cell, "<f4")[0])).removesuffix(".0")


def _log_lines(path: Path, count: int, timeout: float = 20.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        lines = []
        for raw in path.read_bytes().splitlines():
            with contextlib.suppress(ValueError):
                obj = json.loads(raw)
                if isinstance(obj, dict) and "inference_log" in obj:
                    lines.append(obj)
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def test_jsonl_logs_on_stdout_carry_the_response_values(tmp_path: Path) -> None:
    _config(tmp_path, "jsonl")
    with serve(tmp_path, _env(INFERFLOW_LOG_SINK="stdout")) as (port, out):
        scores = _predict(port, "trk-1")
        (line,) = _log_lines(out, 1)
    assert line["inference_log"] == "filtered"
    assert line["tracking_id"] == "trk-1"
    assert line["format"] == "jsonl"
    assert line["event_name"] == "inferflow_inference_logs"
    assert line["entities"] == ["a", "b", "c"]
    assert [name for name, _type in line["schema"]] == list(line["features"][0])
    for row, cells in zip(line["features"], scores, strict=True):
        assert row["keep"] == _text("keep", cells[1]), row
        assert row["filtered_score"] == _text("filtered_score", cells[2]), row
        assert row["price"] is not None
        assert row["final_score"] is not None
    assert [row["keep"] for row in line["features"]] == ["true", "false", "true"]
    assert line["features"][1]["filtered_score"] is None  # dropped: missing, logged as null


def test_jsonl_file_logs_read_back_with_inferflow_logs_read(tmp_path: Path) -> None:
    _config(tmp_path, "jsonl")
    logs = tmp_path / "logs"
    with serve(tmp_path, _env(INFERFLOW_LOG_SINK="file", INFERFLOW_LOG_DIR=str(logs))) as (port, _out):
        scores = _predict(port, "trk-2")
    # the server stopped gracefully: its log file is complete
    read = subprocess.run([*CLI, "logs", "read", str(logs)], capture_output=True, text=True, timeout=60)
    assert read.returncode == 0, read.stderr
    lines = [json.loads(raw) for raw in read.stdout.splitlines()]
    assert [line["entity"] for line in lines] == ["a", "b", "c"]
    assert {line["format"] for line in lines} == {"jsonl"}
    for line, cells in zip(lines, scores, strict=True):
        assert line["features"]["keep"] == _text("keep", cells[1])
        assert line["features"]["filtered_score"] == _text("filtered_score", cells[2])


def test_an_unknown_sink_stops_the_server_naming_the_installed_ones(tmp_path: Path) -> None:
    _config(tmp_path, "jsonl")
    cmd = [*CLI, "serve", "--config-dir", str(tmp_path / "config"), "--port", str(_free_port())]
    got = subprocess.run(
        [*cmd, "--http-port", str(_free_port())],
        env=_env(INFERFLOW_LOG_SINK="stdot"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert got.returncode != 0
    assert "INFERFLOW_LOG_SINK='stdot' is not an installed log sink" in got.stderr
    assert "file, kafka, stdout" in got.stderr


def test_validate_refuses_an_unknown_format_naming_the_installed_ones(tmp_path: Path) -> None:
    root = _config(tmp_path, "jsonll")
    got = subprocess.run(
        [*CLI, "validate", str(root)], capture_output=True, text=True, timeout=60, env=_env()
    )
    assert got.returncode == 1, got.stdout + got.stderr
    assert "v2-logging-type 'jsonll' is not an installed log format" in got.stdout
    assert "(installed: arrow, jsonl, parquet, proto)" in got.stdout
    root = _config(tmp_path / "ok", "jsonl")
    got = subprocess.run(
        [*CLI, "validate", str(root)], capture_output=True, text=True, timeout=60, env=_env()
    )
    assert got.returncode == 0, got.stdout + got.stderr
