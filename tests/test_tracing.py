"""OpenTelemetry tracing: request, component and external-call spans (SDK in-memory exporter), the
caller's W3C ``traceparent`` continued, and the trace context sent to a real downstream gRPC server
(the Numerix servicer, recording the metadata it receives)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from inferflow_core.api import external_span
from inferflow_core.observability import tracing
from inferflow_core.runtime import Runtime
from inferflow_core.testing import make_runtime
from inferflow_core.testing.server import running_server
from tests.helpers import ProbePlugin, probe_runtime
from tests.observability_support import MODEL, PARENT, PREFIX, TRACE_ID, _request


async def test_request_and_component_spans_continue_the_callers_trace(spans: InMemorySpanExporter) -> None:
    async with running_server(probe_runtime(), {PREFIX + "m": MODEL}) as srv:
        call = srv.channel.unary_unary("/Predict/InferPointWise")
        await call(_request(5).SerializeToString(), metadata=(("traceparent", PARENT),), timeout=5)
    by_name = {s.name: s for s in spans.get_finished_spans()}
    req = by_name["inferflow pointwise"]
    assert req.kind is trace.SpanKind.SERVER
    assert format(req.context.trace_id, "032x") == TRACE_ID
    assert req.parent is not None
    assert format(req.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert req.attributes["inferflow.model_id"] == "m"
    assert req.attributes["inferflow.targets"] == 5
    assert req.attributes["rpc.grpc.status_code"] == 0
    scorer, broken = by_name["component scorer"], by_name["component broken"]
    for span in (scorer, broken):
        assert span.parent is not None
        assert span.parent.span_id == req.context.span_id
        assert span.attributes["inferflow.rows"] == 5
        assert span.attributes["inferflow.component.kind"] == "probe"
    assert broken.status.status_code is trace.StatusCode.ERROR
    assert broken.attributes["inferflow.failure"] == "error"
    assert scorer.status.status_code is trace.StatusCode.UNSET


async def test_a_waiting_component_is_no_parent_of_its_stage_spans(spans: InMemorySpanExporter) -> None:
    # scorer waits (finished in the request's task, its span current there), broken starts meanwhile
    # in a task of its own: both spans are children of the request span
    from tests.helpers import model_json

    model = model_json(
        {"scorer": ["feature_initializer"], "broken": ["feature_initializer"]},
        [
            {"component": "scorer", "outputs": [{"name": "score"}], "sleep_ms": 20},
            {"component": "broken", "outputs": [{"name": "bad"}], "fail": True},
        ],
        ["catalog_id", "score"],
    )
    async with running_server(probe_runtime(), {PREFIX + "m": model}) as srv:
        call = srv.channel.unary_unary("/Predict/InferPointWise")
        await call(_request(5).SerializeToString(), metadata=(("traceparent", PARENT),), timeout=5)
    by_name = {s.name: s for s in spans.get_finished_spans()}
    req = by_name["inferflow pointwise"]
    for name in ("component scorer", "component broken"):
        assert by_name[name].parent is not None
        assert by_name[name].parent.span_id == req.context.span_id, name


async def test_failed_request_span_has_the_status(spans: InMemorySpanExporter) -> None:
    async with running_server(probe_runtime(), {PREFIX + "m": MODEL}) as srv:
        call = srv.channel.unary_unary("/Predict/InferPointWise")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call(_request(2, model="nope").SerializeToString(), timeout=5)
    (req,) = [s for s in spans.get_finished_spans() if s.name == "inferflow pointwise"]
    assert req.status.status_code is trace.StatusCode.ERROR
    assert req.attributes["rpc.grpc.status_code"] == err.value.code().value[0] != 0


def test_off_costs_nothing_and_sends_nothing() -> None:
    assert not tracing.enabled()
    with external_span("numerix", "Compute") as span:
        assert span.metadata == ()
    assert external_span("a", "b") is external_span("c", "d")  # one shared no-op object


# ----------------------------------------------------------------------------- a real downstream
class _Recorder(grpc.aio.ServerInterceptor):
    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    async def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        self.seen.append({k: v for k, v in details.invocation_metadata or () if isinstance(v, str)})
        return await continuation(details)


@pytest.fixture
async def numerix_downstream() -> AsyncIterator[tuple[int, _Recorder]]:
    from inferflow_numerix._proto import numerix_pb2_grpc
    from inferflow_numerix.server import NumerixServicer

    recorder = _Recorder()
    server = grpc.aio.server(interceptors=(recorder,))
    numerix_pb2_grpc.add_NumerixServicer_to_server(NumerixServicer({"7": "score 2 *"}.get), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield port, recorder
    finally:
        await server.stop(0)


def _numerix_model() -> str:
    return json.dumps(
        {
            "dag_execution_config": {
                "component_dependency": {"scorer": ["feature_initializer"], "final": ["scorer"]}
            },
            "component_config": {
                "probe_components": [{"component": "scorer", "outputs": [{"name": "score"}]}],
                "numerix_components": [
                    {
                        "component": "final",
                        "component_id": "catalog_id",
                        "score_col": "final_score",
                        "data_type": "DataTypeFP32",
                        "score_mapping": {"score@DataTypeFP32": "score"},
                        "compute_id": "7",
                    }
                ],
            },
            "response_config": {"features": ["catalog_id", "final_score"]},
        }
    )  # fmt: skip


def _numerix_runtime(monkeypatch: pytest.MonkeyPatch, port: int) -> Runtime:
    monkeypatch.setenv("NUMERIX_CLIENT_V1_HOST", "127.0.0.1")
    monkeypatch.setenv("NUMERIX_CLIENT_V1_PORT", str(port))
    monkeypatch.setenv("NUMERIX_CLIENT_V1_PLAINTEXT", "true")
    monkeypatch.setenv("NUMERIX_CLIENT_V1_BATCHSIZE", "2")
    # the installed plugins (numerix) and the test's probe component
    return make_runtime(entry_points=True, probe=ProbePlugin())


@pytest.mark.integration
async def test_trace_context_reaches_the_downstream_service(
    spans: InMemorySpanExporter, numerix_downstream: tuple[int, _Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, recorder = numerix_downstream
    rt = _numerix_runtime(monkeypatch, port)
    async with running_server(rt, {PREFIX + "m": _numerix_model()}) as srv:
        call = srv.channel.unary_unary("/Predict/InferPointWise")
        await call(_request(3).SerializeToString(), metadata=(("traceparent", PARENT),), timeout=5)
    finished = spans.get_finished_spans()
    clients = [s for s in finished if s.name == "numerix Compute"]
    assert len(clients) == 2  # 3 rows in batches of 2: two calls, two spans
    (final,) = [s for s in finished if s.name == "component final"]
    sent = [m["traceparent"] for m in recorder.seen]
    assert len(sent) == 2
    want = {f"00-{TRACE_ID}-{format(c.context.span_id, '016x')}-01" for c in clients}
    assert set(sent) == want  # each call carries its own CLIENT span as the parent
    for client in clients:
        assert client.kind is trace.SpanKind.CLIENT
        assert client.parent is not None
        assert client.parent.span_id == final.context.span_id
        assert client.attributes["inferflow.rows"] in (1, 2)


@pytest.mark.integration
async def test_no_trace_context_sent_when_off(
    numerix_downstream: tuple[int, _Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, recorder = numerix_downstream
    rt = _numerix_runtime(monkeypatch, port)
    async with running_server(rt, {PREFIX + "m": _numerix_model()}) as srv:
        call = srv.channel.unary_unary("/Predict/InferPointWise")
        await call(_request(1).SerializeToString(), metadata=(("traceparent", PARENT),), timeout=5)
    assert recorder.seen
    assert all("traceparent" not in m for m in recorder.seen)


@pytest.mark.parametrize(
    ("env", "on"),
    [({}, False), ({"OTEL_TRACES_EXPORTER": "none"}, False), ({"OTEL_TRACES_EXPORTER": "console"}, True),
     ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
       "OTEL_TRACES_SAMPLER_ARG": "0.01"}, True),
     ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, False)],
)  # fmt: skip
def test_configured_by_the_standard_env(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], on: bool
) -> None:
    for key in (
        "OTEL_TRACES_EXPORTER",
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
    ):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    try:
        assert tracing.configure_from_env("inferflow-test") is on
        assert tracing.enabled() is on
        if on:
            provider = tracing._provider
            assert provider.resource.attributes["service.name"] == "inferflow-test"
            if "OTEL_TRACES_SAMPLER_ARG" in env:
                assert "0.01" in provider.sampler.get_description()
    finally:
        tracing.shutdown()
        tracing.disable()


@pytest.mark.integration
async def test_unsampled_request_sends_its_context_without_spans(
    numerix_downstream: tuple[int, _Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request the sampler drops gets no child spans, yet the downstream sees the same trace with the
    not-sampled flag, so services with parent-based samplers keep one decision per trace."""
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider)
    try:
        port, recorder = numerix_downstream
        rt = _numerix_runtime(monkeypatch, port)
        async with running_server(rt, {PREFIX + "m": _numerix_model()}) as srv:
            call = srv.channel.unary_unary("/Predict/InferPointWise")
            await call(_request(1).SerializeToString(), metadata=(("traceparent", PARENT),), timeout=5)
    finally:
        tracing.disable()
    assert exporter.get_finished_spans() == ()
    (sent,) = [m["traceparent"] for m in recorder.seen]
    assert sent.startswith(f"00-{TRACE_ID}-")
    assert sent.endswith("-00")
