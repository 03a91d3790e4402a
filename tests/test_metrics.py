"""Metrics: Prometheus on the HTTP side port (one worker and aggregated over two), DogStatsD over UDP."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import grpc
import pytest

from inferflow_core._proto import predict_pb2_grpc
from inferflow_core.config.sources import write_config_dir
from inferflow_core.observability.metrics import Metrics
from inferflow_core.observability.statsd import StatsdClient
from inferflow_core.testing.process import ServeProcess, entry_point_plugin
from inferflow_core.testing.server import running_server
from tests.observability_support import MODEL, NOOP_PLUGIN, PREFIX, _request, _runtime, _sample, _scrape


async def test_metrics_endpoint_shows_api_component_and_config_counters() -> None:
    rt = _runtime(Metrics())
    async with running_server(rt, {PREFIX + "m": MODEL, PREFIX + "bad": "{not json"}) as srv:
        stub = predict_pb2_grpc.PredictStub(srv.channel)
        for _ in range(3):
            await stub.InferPointWise(_request(4), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.InferPointWise(_request(model="nope"), timeout=5)
        assert srv.http_port
        text = await asyncio.to_thread(_scrape, srv.http_port)
    api = {"api": "pointwise"}
    assert _sample(text, "inferflow_api_requests_total", **api, status="OK") == 3
    assert _sample(text, "inferflow_api_requests_total", **api, status="INVALID_ARGUMENT") == 1
    assert _sample(text, "inferflow_api_errors_total", **api, status="INVALID_ARGUMENT") == 1
    assert _sample(text, "inferflow_api_latency_seconds_count", **api) == 4
    assert _sample(text, "inferflow_model_requests_total", **api, model_id="m") == 3
    assert _sample(text, "inferflow_model_batch_size_sum", **api, model_id="m") == 12
    comp = {"model_id": "m", "component": "scorer"}
    assert _sample(text, "inferflow_component_runs_total", **comp) == 3
    assert _sample(text, "inferflow_component_latency_seconds_count", **comp) == 3
    broken = {"model_id": "m", "component": "broken", "kind": "error"}
    assert _sample(text, "inferflow_component_errors_total", **broken) == 3
    assert _sample(text, "inferflow_config_reloads_total") >= 1
    assert _sample(text, "inferflow_config_rejections_total", model_id="bad") >= 1


def _udp_listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    return sock


def _drain(sock: socket.socket, until: float, want: list[str]) -> list[str]:
    lines: list[str] = []
    while time.monotonic() < until and not all(w in lines for w in want):
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        lines += data.decode().splitlines()
    return lines


async def test_statsd_lines_have_the_reference_names_and_tags() -> None:
    expected = EXPECTED_STATSD
    sock = _udp_listener()
    port = sock.getsockname()[1]
    env = {"TELEGRAF_HOST": "127.0.0.1", "TELEGRAF_PORT": str(port), "APP_ENV": "test", "APP_NAME": "svc"}
    statsd = StatsdClient.from_env(env)
    assert statsd is not None
    assert StatsdClient.from_env({}) is None
    metrics = Metrics(statsd=statsd)
    rt = _runtime(metrics)
    try:
        async with running_server(rt, {PREFIX + "m": MODEL}) as srv:
            await predict_pb2_grpc.PredictStub(srv.channel).InferPointWise(_request(5), timeout=5)
        metrics.count("logging.kafka_sent", model_id="m")
        metrics.flush_statsd()
        lines = await asyncio.to_thread(_drain, sock, time.monotonic() + 5, expected)
    finally:
        metrics.close()
        sock.close()
    for line in expected:
        assert line in lines, (line, lines)
    timings = [
        x
        for x in lines
        if x.startswith(("inferflow.router.api.request.latency:", "predict.infer.request.latency:"))
    ]
    assert len(timings) == 2
    assert all("|ms|#" in x for x in timings)


GLOB = "env:test,service:svc"
EXPECTED_STATSD = [
    "inferflow.router.api.request.total:1|c|#api:/Predict/InferPointWise,status:0," + GLOB,
    "predict.infer.request.total:1|c|#model-id:m,inference-mode:pointwise," + GLOB,
    "predict.infer.request.batch.size:5|c|#model-id:m,inference-mode:pointwise," + GLOB,
    "inferflow.component.execution.total:1|c|#model-id:m,component-name:scorer," + GLOB,
    "inferflow.component.execution.error:1|c|#model-id:m,component-name:broken,error-type:error," + GLOB,
    "inferflow.logging.kafka_sent:1|c|#model-id:m," + GLOB,
]


def test_statsd_never_blocks_or_raises_without_an_agent() -> None:
    client = StatsdClient("127.0.0.1", 9, flush_interval=0.05)  # discard port: nobody listens
    t0 = time.perf_counter()
    for i in range(5000):
        client.count("inferflow.x", i, ("a:b",))
    client.flush()
    client.close()
    assert time.perf_counter() - t0 < 2.0


@pytest.mark.integration
def test_two_workers_metrics_add_up(tmp_path: Path) -> None:
    (tmp_path / "plug").mkdir()
    (tmp_path / "plug" / "metrics_scorer.py").write_text(NOOP_PLUGIN)
    entry_point_plugin(tmp_path / "plug", "metrics-scorer", "metrics_scorer")
    model = {
        "dag_execution_config": {"component_dependency": {"s": ["feature_initializer"]}},
        "component_config": {"scorer_components": [{"component": "s"}]},
        "response_config": {"features": ["catalog_id", "score"]},
    }
    write_config_dir(tmp_path / "cfg", {PREFIX + "m": json.dumps(model)})
    env = {"APP_LOG_LEVEL": "WARNING", "PROMETHEUS_MULTIPROC_DIR": ""}
    with ServeProcess(tmp_path / "cfg", workers=2, env=env, pythonpath=[str(tmp_path / "plug")]) as srv:
        end = time.monotonic() + 20
        streak = 0
        while streak < 10 and time.monotonic() < end:  # both workers up: many connections answer ready
            streak = streak + 1 if srv.ready() else 0
            time.sleep(0.05)
        assert streak >= 10
        payload = _request(7).SerializeToString()
        channels, per_channel = 12, 3
        for _ in range(channels):  # a fresh connection each: SO_REUSEPORT spreads them over both workers
            with grpc.insecure_channel(srv.address) as ch:
                call = ch.unary_unary("/Predict/InferPointWise")
                for _ in range(per_channel):
                    call(payload, timeout=5)
        total = channels * per_channel
        for _ in range(8):  # each scrape may be answered by either worker
            text = _scrape(srv.http_port)
            assert _sample(text, "inferflow_api_requests_total", api="pointwise", status="OK") == total
            assert _sample(text, "inferflow_component_runs_total", model_id="m", component="s") == total
            assert _sample(text, "inferflow_model_batch_size_sum", model_id="m") == 7 * total
            # config_reloads: one per worker at start, summed
            assert _sample(text, "inferflow_config_reloads_total") >= 2


def test_lock_free_metric_classes_expose_what_prometheus_client_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process (not multiprocess) metrics use lock-free subclasses of prometheus_client's
    Counter / Histogram / Gauge; the same calls on both give byte-identical exposition."""
    from inferflow_core.observability import metrics as metrics_module

    fast = Metrics()
    assert fast._fast, "single-process mode under the GIL uses the lock-free classes"
    monkeypatch.setattr(metrics_module, "_fast_classes", dict)
    stock = Metrics()
    assert not stock._fast
    edges = [0.0001, 0.00025, 0.0003, 1, 10, 11, float("inf"), float("nan"), -1.0, 0.0]
    for m in (fast, stock):
        for i, seconds in enumerate(edges):
            status = "OK" if i % 3 else "NOT_FOUND"
            m.api_request("pointwise", status, 0 if i % 3 else 5, seconds, i * 100, "m1" if i % 2 else "")
            m.component_run("m1", f"c{i % 3}", seconds, None if i % 4 else "timeout")
            m.external_call("onfs", "/f", "m1", "c1", seconds, 10**i, "error" if i == 5 else None)
            m.cache_lookup("features", "m1", "c1", i, 2 * i)
            m.feature_count("m1", "c1", i)
            m.count("plugin_thing", 2.5, kind="a")
            m.observe("plugin_latency", seconds)
            m.observe_size("plugin_size", i * 7)
            m.gauge("queue_depth", i, worker="0")
        flight = m.in_flight("pointwise")
        flight.inc()
        flight.inc()
        flight.dec()
    skip = (b"python_", b"process_", b"# HELP python", b"# TYPE python", b"# HELP process", b"# TYPE process")

    def text(m: Metrics) -> list[bytes]:
        return [line for line in m.exposition().splitlines() if not line.startswith(skip)]

    assert text(fast) == text(stock)
    assert any(line.startswith(b"inferflow_component_latency_seconds_bucket{") for line in text(fast))
    assert fast.value("api_requests", api="pointwise") == stock.value("api_requests", api="pointwise") == 10


class _StatsdCalls:
    """Records the StatsD calls Metrics makes (name, value, tags), in order."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def count(self, name: str, value: float, tags: tuple = ()) -> None:
        self.calls.append(("count", name, value, tuple(tags)))

    def timing(self, name: str, ms: float, tags: tuple = ()) -> None:
        self.calls.append(("timing", name, ms, tuple(tags)))

    def gauge(self, name: str, value: float, tags: tuple = ()) -> None:
        self.calls.append(("gauge", name, value, tuple(tags)))


def test_bound_component_metrics_record_what_the_unbound_calls_do() -> None:
    unbound, bound = Metrics(statsd=_StatsdCalls()), Metrics(statsd=_StatsdCalls())  # type: ignore[arg-type]
    handles = {c: bound.component_metrics("m1", c) for c in ("c0", "c1")}
    assert bound.component_metrics("m1", "c0") is handles["c0"]
    for i in range(12):
        c, seconds, kind = f"c{i % 2}", 0.0003 * i, "error" if i % 5 == 4 else None
        unbound.component_run("m1", c, seconds, kind)
        unbound.feature_count("m1", c, i)
        unbound.external_call("featurestore", f"/e{i % 3}", "m1", c, seconds, i, kind)
        unbound.count("onfs_batches", i + 1, model_id="m1", component=c)
        h = handles[c]
        h.run(seconds, kind)
        h.features(i)
        h.external_call("featurestore", f"/e{i % 3}", seconds, i, kind)
        h.count("onfs_batches", i + 1)

    def text(m: Metrics) -> list[bytes]:  # the process's own collectors left out (CPU time moves)
        return [line for line in m.exposition().splitlines() if b"inferflow_" in line]

    assert text(bound) == text(unbound)
    assert b'inferflow_external_errors_total{component="c0",endpoint="/e1",kind="error"' in b"\n".join(
        text(bound)
    )
    assert bound.statsd.calls == unbound.statsd.calls  # type: ignore[union-attr]
    assert (
        len(bound.statsd.calls) == 1 + 12 * 7 + 2 * 2
    )  # build_info, 7 per round, 2 per error; type: ignore[union-attr]
