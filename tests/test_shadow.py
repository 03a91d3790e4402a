"""Shadow models served end to end: predator (embedded ONNX primary, onnx:// or remote shadow), the
inference-logging plugin's file sink, decoded with ``inferflow logs read``'s reader."""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from inferflow_logging.cli import read_files

from inferflow_core._proto import predict_pb2_grpc
from inferflow_core.testing import pick_free_port
from inferflow_core.testing.server import running_server
from tests.shadow_support import (
    features,
    make_runtime,
    model_config,
    reference,
    request,
    tree,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def blackhole(hanging_port: int) -> str:
    """A TCP listener that never answers: a call to it hangs until its timeout."""
    return f"127.0.0.1:{hanging_port}"


async def serve(stub: Any, n: int, prefix: str) -> tuple[list[bytes], list[float]]:
    bodies, latencies = [], []
    for i in range(n):
        started = time.perf_counter()
        resp = await stub.InferPointWise(request(i, f"{prefix}-{i}"))
        latencies.append(time.perf_counter() - started)
        bodies.append(resp.SerializeToString())
    return bodies, latencies


async def settle(runtime: Any, name: str, want: float, timeout: float = 5.0, **labels: Any) -> None:
    end = time.monotonic() + timeout
    while runtime.metrics.value(name, **labels) < want and time.monotonic() < end:
        await asyncio.sleep(0.02)


async def test_same_bytes_with_and_without_shadow_and_shadow_scores_logged(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = tmp_path / "logs"
    # Room for every shadow call and a generous timeout: shadows run on nice-19 threads, which a loaded
    # test machine starves, so the default 4 slots fill and later calls are dropped (by design, counted);
    # this test is about bytes and logged scores, the bounds have their own tests.
    runtime = make_runtime(monkeypatch, logs, INFERFLOW_PREDATOR_SHADOW_MAX_INFLIGHT="64")
    plain = model_config(f"onnx://{repo}", "lin_a")
    shadow = {"endpoint": f"onnx://{repo}", "percentage": 100, "model_name": "lin_b", "timeout_ms": 20000}
    shadowed = model_config(f"onnx://{repo}", "lin_a", [shadow])
    async with running_server(runtime, tree(plain)) as srv:
        stub = predict_pb2_grpc.PredictStub(srv.channel)
        off, _ = await serve(stub, 8, "off")
        await srv.update(tree(shadowed))
        await serve(stub, 1, "warm")  # the shadow's ONNX session loads on first use
        await settle(runtime, "predator.shadow.calls", 1, timeout=20.0, outcome="ok")
        on, _ = await serve(stub, 8, "on")
        await settle(runtime, "predator.shadow.calls", 9, timeout=20.0, outcome="ok")
    assert on == off  # byte-identical responses
    labels = {"model_id": "m", "component": "ranker", "shadow": "lin_b", "endpoint": f"onnx://{repo}"}
    assert runtime.metrics.value("predator.shadow.calls", outcome="ok", **labels) == 9
    assert runtime.metrics.value("predator.shadow.dropped", **labels) == 0

    lines = list(read_files([str(logs)]))
    by_request: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_request.setdefault(line["tracking_id"], []).append(line)
    want = ["warm-0"] + [f"off-{i}" for i in range(8)] + [f"on-{i}" for i in range(8)]
    assert sorted(by_request) == sorted(want)
    for i in range(8):
        x = features(i)
        off_rows, on_rows = by_request[f"off-{i}"], by_request[f"on-{i}"]
        assert all("shadow:lin_b:score" not in r["features"] for r in off_rows)
        assert [r["entity"] for r in on_rows] == [f"c{i}-{r}" for r in range(len(x))]
        primary = np.array([float(r["features"]["score"]) for r in on_rows], dtype=np.float32)
        shadow = np.array([float(r["features"]["shadow:lin_b:score"]) for r in on_rows], dtype=np.float32)
        np.testing.assert_allclose(primary, reference(x, seed=1), rtol=1e-5)
        np.testing.assert_allclose(shadow, reference(x, seed=2), rtol=1e-5)


@pytest.mark.parametrize("kind", ["hangs", "fails"])
async def test_a_hanging_or_failing_shadow_changes_neither_response_nor_latency(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blackhole: str, kind: str
) -> None:
    bad = blackhole if kind == "hangs" else f"127.0.0.1:{pick_free_port()}"
    runtime = make_runtime(monkeypatch, tmp_path / "logs", INFERFLOW_PREDATOR_SHADOW_MAX_INFLIGHT="64")
    plain = model_config(f"onnx://{repo}", "lin_a")
    shadowed = model_config(
        f"onnx://{repo}",
        "lin_a",
        [{"endpoint": bad, "percentage": 100, "model_name": "lin_b", "timeout_ms": 1500}],
    )
    n = 40
    async with running_server(runtime, tree(plain)) as srv:
        stub = predict_pb2_grpc.PredictStub(srv.channel)
        await serve(stub, 10, "warm")
        off, off_lat = await serve(stub, n, "off")
        await srv.update(tree(shadowed))
        on, on_lat = await serve(stub, n, "on")
        outcome = "timeout" if kind == "hangs" else "error"
        await settle(runtime, "predator.shadow.calls", n, outcome=outcome)
    assert on == off
    p50_off, p50_on = statistics.median(off_lat), statistics.median(on_lat)
    assert p50_on < p50_off * 1.5 + 0.002, (p50_off, p50_on)  # noise on a shared VM, not a 1.5 s timeout
    assert max(on_lat) < 1.0
    assert runtime.metrics.value("predator.shadow.calls", outcome=outcome, shadow="lin_b") == n


async def test_drops_are_counted_when_saturated(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blackhole: str
) -> None:
    runtime = make_runtime(monkeypatch, tmp_path / "logs", INFERFLOW_PREDATOR_SHADOW_MAX_INFLIGHT="2")
    shadowed = model_config(
        f"onnx://{repo}",
        "lin_a",
        [{"endpoint": blackhole, "percentage": 100, "model_name": "lin_b", "timeout_ms": 3000}],
    )
    async with running_server(runtime, tree(shadowed)) as srv:
        stub = predict_pb2_grpc.PredictStub(srv.channel)
        await serve(stub, 10, "sat")
        await settle(runtime, "predator.shadow.dropped", 8)
        assert runtime.metrics.value("predator.shadow.dropped", shadow="lin_b") == 8  # 2 slots, both hang
        assert runtime.metrics.value("predator.shadow.calls", shadow="lin_b") == 0
