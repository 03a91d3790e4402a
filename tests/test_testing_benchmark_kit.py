"""The test kit's tooling for benchmarks: the served path in process, recorded spans, the wire stubs and
the shipped example (``inferflow_core.testing.{inprocess,tracing,protos,example}``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import grpc
import pytest

from inferflow_core.testing import example, make_runtime
from inferflow_core.testing.inprocess import CallAborted, InProcessService
from inferflow_core.testing.protos import predict_pb2
from inferflow_core.testing.server import running_server
from inferflow_core.testing.tracing import recorded_spans
from tests.helpers import ProbePlugin, model_json

PREFIX = "inferflow/services/inferflow/model-config/config-map/"
TREE = {
    PREFIX + "m": model_json(
        {"scorer": ["feature_initializer"], "slow": ["feature_initializer"]},
        [
            {"component": "scorer", "outputs": [{"name": "score"}], "value": 0.25},
            {"component": "slow", "outputs": [{"name": "late"}], "sleep_ms": 0},
        ],
        ["id", "score", "late"],
    ),
    PREFIX + "hung": model_json(
        {"hung": ["feature_initializer"]},
        [{"component": "hung", "outputs": [{"name": "late"}], "sleep_ms": 30_000}],
        ["id", "late"],
    ),
}


def _request(model: str = "m", rows: int = 3) -> bytes:
    req = predict_pb2.PointWiseRequest(
        model_config_id=model, targets=[predict_pb2.Target(id=str(i)) for i in range(rows)]
    )
    return req.SerializeToString()


async def test_in_process_answers_the_bytes_the_grpc_server_answers() -> None:
    async with running_server(make_runtime(probe=ProbePlugin()), TREE, http=False) as srv:
        over_grpc = await srv.channel.unary_unary("/Predict/InferPointWise")(_request(), timeout=5)
        in_process = await InProcessService(srv.runtime).call("pointwise", _request())
    assert in_process == over_grpc
    reply = predict_pb2.PointWiseResponse.FromString(in_process)
    assert [s.name for s in reply.target_output_schema] == ["id", "score", "late"]
    assert len(reply.target_scores) == 3


async def test_a_refused_request_raises_the_status_a_client_gets() -> None:
    async with running_server(make_runtime(probe=ProbePlugin()), TREE, http=False) as srv:
        with pytest.raises(grpc.aio.AioRpcError) as over_grpc:
            await srv.channel.unary_unary("/Predict/InferPointWise")(_request("nope"), timeout=5)
        with pytest.raises(CallAborted) as in_process:
            await InProcessService(srv.runtime).call("pointwise", _request("nope"))
    assert in_process.value.code is over_grpc.value.code() is not grpc.StatusCode.OK
    assert in_process.value.message == over_grpc.value.details()
    assert "nope" in in_process.value.message


async def test_an_unknown_api_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"'pointwize'.*pointwise, pairwise, slatewise"):
        await InProcessService(make_runtime()).call("pointwize", _request())


async def test_the_client_deadline_bounds_the_request() -> None:
    rt = make_runtime(probe=ProbePlugin())
    rt.apply_tree(TREE)
    t0 = time.perf_counter()
    raw = await InProcessService(rt).call("pointwise", _request("hung"), client_deadline_s=0.3)
    assert time.perf_counter() - t0 < 2.0  # the component sleeps 30 s; the server's default is 5 s
    reply = predict_pb2.PointWiseResponse.FromString(raw)
    assert [s.name for s in reply.target_output_schema] == ["id", "late"]
    assert [list(t.output_values) for t in reply.target_scores] == [[b"0", b""], [b"1", b""], [b"2", b""]]


async def test_recorded_spans_hold_the_request_and_its_components_then_tracing_is_off() -> None:
    rt = make_runtime(probe=ProbePlugin())
    rt.apply_tree(TREE)
    service = InProcessService(rt)
    with recorded_spans() as spans:
        await service.call("pointwise", _request(), metadata=(("user-id", "42"),))
        names = {s.name for s in spans.get_finished_spans()}
    assert {"inferflow pointwise", "component scorer", "component slow"} <= names
    before = len(spans.get_finished_spans())
    await service.call("pointwise", _request())
    assert len(spans.get_finished_spans()) == before


def test_example_requests_and_config(tmp_path: Path) -> None:
    req = example.pointwise_request("bench_ctr", "42", ["7", "9"], tracking_id="t")
    assert (req.model_config_id, req.tracking_id, [t.id for t in req.targets]) == (
        "bench_ctr",
        "t",
        ["7", "9"],
    )
    (ctx,) = req.context_features
    assert (ctx.name, ctx.value, ctx.data_type) == ("user_id", b"42", predict_pb2.DataTypeString)
    config = example.write_config(tmp_path / "config", tmp_path / "data", models=("bench_ctr",))
    written = sorted(p.stem for p in config.rglob("*.json") if p.parent.name == "config-map")
    assert written == ["bench_ctr"]
    model = json.loads(next(config.rglob("bench_ctr.json")).read_text())
    endpoints = {c["model_end_point"] for c in model["component_config"]["predator_components"]}
    assert endpoints == {f"onnx://{(tmp_path / 'data' / 'models').resolve()}"}
    assert set(example.__all__) <= set(dir(example))


def test_cpu_seconds_counts_a_process_and_with_children_its_child() -> None:
    import os
    import subprocess
    import sys

    spin = "import time\nt = time.process_time() + 0.3\nwhile time.process_time() < t: pass\ntime.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", spin])
    try:
        deadline = time.monotonic() + 20
        while example.cpu_seconds(os.getpid(), children=True) - example.cpu_seconds(os.getpid()) < 0.25:
            assert time.monotonic() < deadline, "the child's CPU never showed"
            time.sleep(0.05)
        assert example.cpu_seconds(child.pid) >= 0.25
    finally:
        child.kill()
        child.wait()
    assert example.cpu_seconds(child.pid) == 0.0  # gone
