"""KServe v2 gRPC client (``/inference.GRPCInferenceService/ModelInfer``) over grpc.aio.

Uses the plugin's own stubs of the open inference protocol (``proto/kserve/grpc_predict_v2.proto``,
package ``inference``, as Triton and MLServer serve it). Never import another copy of that package into
the same process (tritonclient's or MLServer's): protobuf refuses duplicate symbols. One long-lived
channel per endpoint; tensors travel as ``raw_input_contents`` / ``raw_output_contents`` (the typed
``contents`` fields are far slower).
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
import numpy as np

from inferflow_core.api import ComponentError, codecs, external_span, net

from ._proto import grpc_predict_v2_pb2 as service_pb2
from ._proto import grpc_predict_v2_pb2_grpc as service_pb2_grpc
from .tensors import Tensor, from_raw, to_raw

_TYPED_FIELDS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def _typed(out: service_pb2.ModelInferResponse.InferOutputTensor) -> np.ndarray:
    """Typed ``contents`` of one output (only when a server sent no raw contents; slow, rare)."""
    field = _TYPED_FIELDS.get(out.datatype)
    if field is None:
        raise ComponentError(f"output {out.name!r}: {out.datatype} has no typed contents field")
    values = list(getattr(out.contents, field))
    if out.datatype == "BYTES":
        arr = np.empty(len(values), dtype=object)
        arr[:] = [v.decode("utf-8", "surrogateescape") for v in values]
        return arr
    raw = from_raw(out.datatype, [], np.asarray(values).astype(_dtype(out.datatype)).tobytes())
    return raw.reshape(list(out.shape)) if int(np.prod(out.shape)) == raw.size else raw


def _dtype(datatype: str) -> np.dtype:
    return np.dtype(np.uint8) if datatype == "BOOL" else codecs.from_kserve(datatype).numpy_dtype


def error_kind(exc: grpc.aio.AioRpcError) -> str:
    code = exc.code()
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return "predator-api-timeout"
    if code == grpc.StatusCode.CANCELLED:
        return "predator-api-cancelled"
    if code == grpc.StatusCode.UNAVAILABLE:
        return "predator-api-unavailable"
    return "predator-api-error"


class KServeClient:
    """One endpoint (``host:port``). ``ready`` holds the (model, version) pairs seen ready."""

    def __init__(
        self,
        target: str,
        plain_text: bool,
        metadata: Sequence[tuple[str, str]],
        max_message_bytes: int,
        tls: net.ClientTls | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        reconnect_ms: tuple[int, int] = (100, 500),
    ) -> None:
        self.target = target
        options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.keepalive_time_ms", 30_000),
            *net.reconnect_options(*reconnect_ms),
        ]
        self.channel = net.open_channel(target, plain_text, tls, options, credentials)
        self.stub = service_pb2_grpc.GRPCInferenceServiceStub(self.channel)
        self.metadata = tuple(metadata)
        self.server_ready = False
        self.ready: set[tuple[str, str]] = set()

    async def check_ready(self, model: str, version: str, timeout: float | None) -> None:
        """ServerReady once per client, ModelReady once per model; raises ComponentError when not ready."""
        try:
            if not self.server_ready:
                got = await self.stub.ServerReady(
                    service_pb2.ServerReadyRequest(), timeout=timeout, metadata=self.metadata
                )
                if not got.ready:
                    raise ComponentError(f"predator {self.target}: server not ready", "predator-not-ready")
                self.server_ready = True
            if (model, version) not in self.ready:
                got = await self.stub.ModelReady(
                    service_pb2.ModelReadyRequest(name=model, version=version),
                    timeout=timeout,
                    metadata=self.metadata,
                )
                if not got.ready:
                    raise ComponentError(
                        f"predator {self.target}: model {model!r} version {version!r} not ready",
                        "predator-not-ready",
                    )
                self.ready.add((model, version))
        except grpc.aio.AioRpcError as exc:
            raise ComponentError(
                f"predator {self.target}: readiness check failed: {exc.code().name} {exc.details()}",
                error_kind(exc),
            ) from None

    async def infer(
        self,
        model: str,
        version: str,
        inputs: Sequence[Tensor],
        outputs: Sequence[str],
        timeout: float | None,
    ) -> dict[str, Tensor]:
        request = service_pb2.ModelInferRequest(model_name=model, model_version=version)
        for tensor in inputs:
            request.inputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.array.shape)
        for name in outputs:
            request.outputs.add(name=name)
        request.raw_input_contents.extend(to_raw(t) for t in inputs)
        try:
            with external_span("predator", "ModelInfer", model=model) as span:
                metadata = self.metadata + span.metadata  # W3C traceparent/tracestate when tracing is on
                reply = await self.stub.ModelInfer(request, timeout=timeout, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            raise ComponentError(
                f"predator {self.target} ModelInfer {model!r}: {exc.code().name} {exc.details()}",
                error_kind(exc),
            ) from None
        if not reply.raw_output_contents:  # a server that answered with typed contents
            return {out.name: Tensor(out.name, out.datatype, _typed(out)) for out in reply.outputs}
        if len(reply.raw_output_contents) != len(reply.outputs):
            raise ComponentError(
                f"predator {self.target}: {len(reply.outputs)} outputs but "
                f"{len(reply.raw_output_contents)} raw_output_contents"
            )
        return {
            out.name: Tensor(out.name, out.datatype, from_raw(out.datatype, list(out.shape), raw))
            for out, raw in zip(reply.outputs, reply.raw_output_contents, strict=True)
        }

    async def close(self) -> None:
        await self.channel.close()
