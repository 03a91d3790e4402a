"""A minimal KServe v2 (Triton gRPC) server running ONNX models with ONNX Runtime, for S1's remote mode.

    python kserve_onnx_server.py --repo examples/ctr/data/full/models --port 8001

Serves ``/inference.GRPCInferenceService/{ServerLive,ServerReady,ModelReady,ModelInfer}`` with the
predator plugin's KServe v2 stubs, reading ``raw_input_contents`` and answering ``raw_output_contents``
(the same wire path Triton uses). Models: ``<repo>/<name>/<version>/model.onnx``.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import numpy as np

DTYPES = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32, "FP16": np.float16}


def main() -> int:
    import grpc
    import onnxruntime as ort
    from inferflow_predator._proto import grpc_predict_v2_pb2 as pb
    from inferflow_predator._proto import grpc_predict_v2_pb2_grpc as pbg

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repo", required=True)
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sessions = {
        path.parts[-3]: ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        for path in Path(args.repo).glob("*/*/model.onnx")
    }

    class Servicer(pbg.GRPCInferenceServiceServicer):
        async def ServerLive(self, request, context):
            return pb.ServerLiveResponse(live=True)

        async def ServerReady(self, request, context):
            return pb.ServerReadyResponse(ready=True)

        async def ModelReady(self, request, context):
            return pb.ModelReadyResponse(ready=request.name in sessions)

        async def ModelInfer(self, request, context):
            sess = sessions.get(request.model_name)
            if sess is None:
                await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown model {request.model_name}")
            feeds = {}
            for i, tensor in enumerate(request.inputs):
                arr = np.frombuffer(request.raw_input_contents[i], dtype=DTYPES[tensor.datatype])
                feeds[tensor.name] = arr.reshape(list(tensor.shape))
            names = [o.name for o in request.outputs] or [o.name for o in sess.get_outputs()]
            results = sess.run(names, feeds)
            resp = pb.ModelInferResponse(
                model_name=request.model_name, model_version=request.model_version or "1"
            )
            for name, value in zip(names, results, strict=True):
                value = np.ascontiguousarray(value, dtype=np.float32)
                resp.outputs.add(name=name, datatype="FP32", shape=list(value.shape))
                resp.raw_output_contents.append(value.tobytes())
            return resp

    async def serve() -> None:
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 << 20)])
        pbg.add_GRPCInferenceServiceServicer_to_server(Servicer(), server)
        server.add_insecure_port(f"127.0.0.1:{args.port}")
        await server.start()
        print(f"kserve v2 onnx server on {args.port}: {sorted(sessions)}", flush=True)
        await server.wait_for_termination()

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
