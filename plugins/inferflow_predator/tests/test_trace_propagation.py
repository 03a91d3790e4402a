"""The KServe v2 client sends the W3C trace context of its CLIENT span to a real KServe v2 gRPC server
(in process, recording the metadata it receives and answering with raw output contents)."""

from __future__ import annotations

from typing import Any

import grpc
import numpy as np
import pytest
from inferflow_predator._proto import grpc_predict_v2_pb2 as pb
from inferflow_predator._proto import grpc_predict_v2_pb2_grpc as pbg
from inferflow_predator.kserve import KServeClient
from inferflow_predator.tensors import Tensor

from inferflow_core.testing.tracing import recorded_spans, request_span

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


class _Recording(pbg.GRPCInferenceServiceServicer):
    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    async def ModelInfer(self, request: Any, context: Any) -> Any:
        self.seen.append({k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)})
        rows = int(request.inputs[0].shape[0])
        out = pb.ModelInferResponse(model_name=request.model_name)
        out.outputs.add(name="score", datatype="FP32", shape=[rows, 1])
        out.raw_output_contents.append(np.ones(rows, dtype=np.float32).tobytes())
        return out


@pytest.mark.integration
async def test_model_infer_carries_its_client_span() -> None:
    servicer = _Recording()
    server = grpc.aio.server()
    pbg.add_GRPCInferenceServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    client = KServeClient(f"127.0.0.1:{port}", True, (("caller", "inferflow"),), 1 << 20)
    try:
        with recorded_spans() as exporter, request_span(traceparent=f"00-{TRACE_ID}-00f067aa0ba902b7-01"):
            got = await client.infer(
                "m", "1", [Tensor("x", "FP32", np.zeros((3, 2), np.float32))], ["score"], 5.0
            )
    finally:
        await client.close()
        await server.stop(0)
    assert got["score"].array.shape[0] == 3
    (span,) = [s for s in exporter.get_finished_spans() if s.name == "predator ModelInfer"]
    (seen,) = servicer.seen
    assert seen["traceparent"] == f"00-{TRACE_ID}-{format(span.context.span_id, '016x')}-01"
    assert seen["caller"] == "inferflow"  # the client's own metadata is kept
