"""``inferflow replay``: logs written by a served model A, replayed against model B (other weights);
every number of the report checked against a direct computation."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from inferflow_logging.replay import main, replay

from inferflow_core._proto import predict_pb2_grpc
from inferflow_core.testing.server import running_server
from tests.shadow_support import (
    N_REQUESTS,
    candidate,
    expected,
    make_runtime,
    model_config,
    request,
    tree,
)

pytestmark = pytest.mark.integration


async def served_logs(repo: Path, logs: Path, monkeypatch: Any, log_features: bool = True) -> None:
    config = json.loads(model_config(f"onnx://{repo}", "lin_a"))
    config["response_config"]["log_features"] = log_features
    async with running_server(make_runtime(monkeypatch, logs), tree(json.dumps(config))) as srv:
        stub = predict_pb2_grpc.PredictStub(srv.channel)
        for i in range(N_REQUESTS):
            await stub.InferPointWise(request(i, f"req-{i}"))


async def test_replay_report_matches_a_direct_computation(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = tmp_path / "logs"
    await served_logs(repo, logs, monkeypatch)
    candidate(repo, tmp_path / "cand")
    out = tmp_path / "replay.parquet"
    reports = await asyncio.to_thread(replay, [str(logs)], str(tmp_path / "cand"), None, None, None, 0.5, 5)
    report = reports["m"]
    s = report.summary(0.5, 5)
    want = expected()
    delta = want["new"] - want["old"]
    assert s["score"] == "score"
    assert s["requests"] == N_REQUESTS
    assert s["rows_replayed"] == len(delta)
    assert s["rows_skipped"] == {}
    assert s["delta_mean"] == pytest.approx(delta.mean(), abs=1e-6)
    assert s["abs_delta_p50"] == pytest.approx(np.percentile(np.abs(delta), 50), abs=1e-6)
    assert s["abs_delta_p99"] == pytest.approx(np.percentile(np.abs(delta), 99), abs=1e-6)
    assert s["sign_flips"] == int(((want["old"] >= 0.5) != (want["new"] >= 0.5)).sum()) > 0
    assert s["spearman_per_request"]["mean"] == pytest.approx(np.mean(want["rho"]), abs=1e-6)
    assert s["kendall_per_request"]["mean"] == pytest.approx(np.mean(want["tau"]), abs=1e-6)
    assert s["top5_overlap_per_request"]["mean"] == pytest.approx(np.mean(want["top"]), abs=1e-9)

    argv = [str(logs), "--config-dir", str(tmp_path / "cand"), "--top-k", "5", "-o", str(out)]
    assert await asyncio.to_thread(main, argv) == 0
    table = pq.read_table(out).to_pydict()
    assert table["request"][:2] == ["req-0", "req-0"]
    assert table["target"][0] == "c0-0"
    np.testing.assert_allclose(table["old"], want["old"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(table["new"], want["new"], rtol=1e-5, atol=1e-7)


async def test_replay_against_a_server_gives_the_same_numbers(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = tmp_path / "logs"
    await served_logs(repo, logs, monkeypatch)
    config = candidate(repo, tmp_path / "cand")
    embedded = (await asyncio.to_thread(replay, [str(logs)], str(tmp_path / "cand")))["m"]
    async with running_server(make_runtime(monkeypatch, tmp_path / "logs2"), config) as srv:
        remote = (await asyncio.to_thread(replay, [str(logs)], str(tmp_path / "cand"), "m", srv.address))["m"]
    assert remote.rows_replayed == embedded.rows_replayed == N_REQUESTS * 20
    np.testing.assert_allclose(remote.new, embedded.new, rtol=1e-6)
    assert remote.summary(0.5, 10) == embedded.summary(0.5, 10)


async def test_a_log_without_features_is_refused(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "logs"
    await served_logs(repo, logs, monkeypatch, log_features=False)  # default schema: the score only
    candidate(repo, tmp_path / "cand")
    code = await asyncio.to_thread(main, [str(logs), "--config-dir", str(tmp_path / "cand")])
    err = capsys.readouterr().err
    assert code == 1
    assert "holds none of the features the candidate reads" in err
    assert "log_features: true" in err


async def test_plot_writes_a_png(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    logs = tmp_path / "logs"
    await served_logs(repo, logs, monkeypatch)
    candidate(repo, tmp_path / "cand")
    png = tmp_path / "replay.png"
    argv = [str(logs), "--config-dir", str(tmp_path / "cand"), "--plot", str(png)]
    assert await asyncio.to_thread(main, argv) == 0
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1000, 400)  # figsize 10 x 4 in at 100 dpi: one model, two panels
    assert len(data) > 10_000
    assert data[-8:-4] == b"IEND"
