"""The OnFS client sends the W3C trace context of its CLIENT span to a real OnFS-protocol server (the
embedded twin's FeatureService, in process, recording the metadata it receives)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from inferflow_onfs.client import OnfsClient
from inferflow_onfs.server import FeatureService
from inferflow_onfs.settings import OnfsSettings
from inferflow_onfs.store import LocalStore
from onfs_support import all_types_component, fetch_request
from opentelemetry import trace

from inferflow_core.testing.tracing import recorded_spans, request_span

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


class _Recorder(grpc.aio.ServerInterceptor):
    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    async def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        self.seen.append({k: v for k, v in details.invocation_metadata or () if isinstance(v, str)})
        return await continuation(details)


@pytest.mark.integration
async def test_onfs_calls_carry_their_client_span(store_dir) -> None:
    recorder = _Recorder()
    server = grpc.aio.server(interceptors=(recorder,))
    server.add_generic_rpc_handlers((FeatureService(LocalStore(str(store_dir[0]))).handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    client = OnfsClient(OnfsSettings(fs_host="127.0.0.1", fs_port=port, fs_plaintext=True, batch_size=7))
    try:
        with recorded_spans() as exporter, request_span(traceparent=f"00-{TRACE_ID}-00f067aa0ba902b7-01"):
            outcome = await client.fetch(
                fetch_request(all_types_component()), [(f"u{i}",) for i in range(10)], None
            )
    finally:
        await client.close()
        await server.stop(0)
    assert not outcome.failures
    calls = [s for s in exporter.get_finished_spans() if s.name == "featurestore RetrieveFeatures"]
    assert len(calls) == 2  # 10 keys in batches of 7
    assert all(s.kind is trace.SpanKind.CLIENT for s in calls)
    want = {f"00-{TRACE_ID}-{format(s.context.span_id, '016x')}-01" for s in calls}
    assert {m["traceparent"] for m in recorder.seen} == want
