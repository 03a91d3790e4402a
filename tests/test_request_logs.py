"""Request-scoped log lines: api, tracking id, model id and trace id on every line logged while a request
is handled (also from its components' tasks), and the sampled access log."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from inferflow_core._proto import predict_pb2
from inferflow_core.config.settings import ServiceSettings
from inferflow_core.observability.logs import setup_logging
from inferflow_core.observability.metrics import Metrics
from inferflow_core.runtime import Runtime
from inferflow_core.testing.server import running_server
from tests.observability_support import MODEL as METRICS_MODEL
from tests.observability_support import PARENT, PREFIX, TRACE_ID, _runtime

# component failures are logged as Go samples them (error_logging_percent); 100 logs every one
_doc = json.loads(METRICS_MODEL)
_doc["component_config"]["error_logging_percent"] = 100
MODEL = json.dumps(_doc)


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    buf = io.StringIO()
    setup_logging("INFO", True, stream=buf)
    try:
        yield buf
    finally:
        for handler in list(root.handlers):
            if getattr(handler, "_inferflow", False):
                root.removeHandler(handler)
        for handler in before[0]:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(before[1])


def _records(buf: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buf.getvalue().splitlines() if line.startswith("{")]


def _with_settings(**kw: object) -> Runtime:
    rt = _runtime(Metrics())
    rt.settings = ServiceSettings(**kw)
    return rt


async def _call(rt: Runtime, tracking_id: str = "t-42") -> None:
    request = predict_pb2.PointWiseRequest(
        model_config_id="m",
        tracking_id=tracking_id,
        targets=[predict_pb2.Target(id=str(i)) for i in range(3)],
    )
    async with running_server(rt, {PREFIX + "m": MODEL}) as srv:
        call = srv.channel.unary_unary("/Predict/InferPointWise")
        await call(request.SerializeToString(), metadata=(("traceparent", PARENT),), timeout=5)


async def test_component_failure_line_carries_the_request_scope(lines: io.StringIO) -> None:
    await _call(_runtime(Metrics()))
    (failed,) = [r for r in _records(lines) if r["msg"].startswith("component failed")]
    assert failed["component"] == "broken"
    assert failed["model_id"] == "m"
    assert failed["tracking_id"] == "t-42"
    assert failed["api"] == "pointwise"
    assert failed["trace_id"] == TRACE_ID  # from the caller's traceparent, tracing off
    outside = [r for r in _records(lines) if r["msg"] == "config snapshot applied"]
    assert outside
    assert all("tracking_id" not in r for r in outside)
    assert not [r for r in _records(lines) if r["logger"] == "inferflow.access"]  # off by default


async def test_trace_id_of_the_current_span_when_tracing_is_on(lines: io.StringIO, spans) -> None:
    await _call(_runtime(Metrics()))
    (failed,) = [r for r in _records(lines) if r["msg"].startswith("component failed")]
    (req,) = [s for s in spans.get_finished_spans() if s.name == "inferflow pointwise"]
    assert failed["trace_id"] == format(req.context.trace_id, "032x") == TRACE_ID


async def test_sampled_access_log(lines: io.StringIO) -> None:
    await _call(_with_settings(access_log_sample=1.0), tracking_id="t-7")
    (access,) = [r for r in _records(lines) if r["logger"] == "inferflow.access"]
    assert access["msg"] == "request"
    assert access["api"] == "pointwise"
    assert access["model_id"] == "m"
    assert access["tracking_id"] == "t-7"
    assert access["targets"] == 3
    assert access["status"] == "OK"
    assert access["latency_ms"] > 0
    assert access["trace_id"] == TRACE_ID
