"""The rule filter in a served DAG: a real `inferflow serve` process, called over gRPC PointWise."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
from rule_filter_support import MODEL

from inferflow_core.testing import pick_free_port
from inferflow_core.testing.protos import predict_pb2 as pb
from inferflow_core.testing.protos import predict_pb2_grpc as pbg


@pytest.fixture
def server(tmp_path: Path):
    model = json.loads(json.dumps(MODEL))
    model["response_config"]["features"] = ["catalog_id", "keep", "filtered_score"]
    cfg = tmp_path / "config" / "inferflow" / "services" / "inferflow" / "model-config" / "config-map"
    cfg.mkdir(parents=True)
    (cfg / "filtered.json").write_text(json.dumps(model))
    port, http_port = pick_free_port(), pick_free_port()
    env = dict(os.environ, INFERFLOW_LOG_SINK="none", APP_NAME="inferflow")
    env.pop("ETCD_SERVER", None)
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "inferflow_core.cli",
            "serve",
            "--config-dir",
            str(tmp_path / "config"),
            "--port",
            str(port),
            "--http-port",
            str(http_port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/health/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "server not ready in 60 s"
            time.sleep(0.1)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


@pytest.mark.integration
def test_rule_filter_in_served_pointwise(server: int) -> None:
    req = pb.PointWiseRequest(
        model_config_id="filtered",
        target_input_schema=[
            pb.FeatureSchema(name="price", data_type=pb.DataTypeFP32),
            pb.FeatureSchema(name="stock", data_type=pb.DataTypeFP32),
            pb.FeatureSchema(name="final_score", data_type=pb.DataTypeFP32),
        ],
        targets=[
            pb.Target(id="a", feature_values=[b"100", b"2", b"0.5"]),
            pb.Target(id="b", feature_values=[b"900", b"2", b"0.25"]),
            pb.Target(id="c", feature_values=[b"100", b"0", b"0.75"]),
        ],
    )
    with grpc.insecure_channel(f"127.0.0.1:{server}") as channel:
        resp = pbg.PredictStub(channel).InferPointWise(req, timeout=10)
    names = [s.name for s in resp.target_output_schema]
    assert names == ["catalog_id", "keep", "filtered_score"]
    assert resp.target_output_schema[1].data_type == pb.DataTypeBool
    keep = [s.output_values[1] for s in resp.target_scores]
    assert keep == [b"\x01", b"\x00", b"\x00"]
    scores = [s.output_values[2] for s in resp.target_scores]
    assert np.frombuffer(scores[0], "<f4")[0] == pytest.approx(0.5)
    assert scores[1] == b"", "dropped targets must have a missing score"
    assert scores[2] == b"", "dropped targets must have a missing score"
