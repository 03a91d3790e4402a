"""The "direct" baseline of S1: the same work with no DAG and no matrix, behind the same gRPC method.

    python direct_server.py --data examples/ctr/data/full --port 9000 [--workers 2]

Embedded mode only: it reads the example's Parquet files into plain numpy arrays with an id -> row dict,
runs the same ONNX model with ONNX Runtime (1 intra-op thread) on the [targets, 96] + [targets, 32]
inputs, evaluates ``pctr / ln(price + 2)`` with numpy and writes the PointWise response with one
``extend`` of prebuilt TargetScore messages. The load generator calls it exactly as it calls Inferflow,
so the ratio Inferflow p50 / direct p50 is the cost of the DAG, matrix and generic response building.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


class DirectS1:
    def __init__(self, data: Path) -> None:
        import onnxruntime as ort
        import pyarrow.parquet as pq

        users = pq.read_table(data / "features" / "user.parquet")
        cats = pq.read_table(data / "features" / "catalog.parquet")
        ucols = [c for c in users.column_names if c.startswith("A:")]
        ccols = [c for c in cats.column_names if c.startswith("A:c")]
        self.user_index = {k: i for i, k in enumerate(users.column("user_id").to_pylist())}
        self.cat_index = {k: i for i, k in enumerate(cats.column("catalog_id").to_pylist())}
        self.user = np.stack([users.column(c).to_numpy() for c in ucols], axis=1).astype(np.float32)
        self.dense = np.stack([cats.column(c).to_numpy() for c in ccols], axis=1).astype(np.float32)
        self.price = cats.column("A:price").to_numpy().astype(np.float32)
        emb = cats.column("B:emb").combine_chunks()
        self.emb = emb.values.to_numpy().reshape(len(emb), -1).astype(np.float32)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        model = next((data / "models").glob("*/1/model.onnx"))
        self.session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])

    def handle(self, req):  # type: ignore[no-untyped-def]
        from inferflow_core._proto import predict_pb2 as pb

        ids = [t.id for t in req.targets]
        user = next((c.value.decode() for c in req.context_features if c.name == "user_id"), "")
        rows = np.fromiter((self.cat_index.get(i, -1) for i in ids), dtype=np.int64, count=len(ids))
        ok = rows >= 0
        rows = np.where(ok, rows, 0)
        urow = self.user_index.get(user)
        uvec = self.user[urow] if urow is not None else np.zeros(self.user.shape[1], np.float32)
        dense = np.concatenate([np.broadcast_to(uvec, (len(ids), uvec.shape[0])), self.dense[rows]], axis=1)
        (prob,) = self.session.run(["prob"], {"dense": dense, "emb": self.emb[rows]})
        pctr = prob[:, 0].astype("<f4")
        final = (pctr / np.log(self.price[rows] + np.float32(2))).astype("<f4")
        pb_bytes, fb_bytes = pctr.tobytes(), final.tobytes()
        scores = [
            pb.TargetScore(
                output_values=[ids[i].encode(), pb_bytes[4 * i : 4 * i + 4], fb_bytes[4 * i : 4 * i + 4]]
            )
            for i in range(len(ids))
        ]
        resp = pb.PointWiseResponse(
            target_output_schema=[
                pb.FeatureSchema(name="catalog_id", data_type=pb.DataTypeString),
                pb.FeatureSchema(name="pctr", data_type=pb.DataTypeFP32),
                pb.FeatureSchema(name="final_score", data_type=pb.DataTypeFP32),
            ]
        )
        resp.target_scores.extend(scores)
        return resp


async def serve(data: Path, port: int) -> None:
    import grpc

    from inferflow_core._proto import predict_pb2 as pb

    work = DirectS1(data)

    async def infer(request, context):  # type: ignore[no-untyped-def]
        return work.handle(request)

    handler = grpc.method_handlers_generic_handler(
        "Predict",
        {
            "InferPointWise": grpc.unary_unary_rpc_method_handler(
                infer,
                request_deserializer=pb.PointWiseRequest.FromString,
                response_serializer=pb.PointWiseResponse.SerializeToString,
            )
        },
    )
    server = grpc.aio.server(
        options=[("grpc.so_reuseport", 1), ("grpc.max_receive_message_length", 64 << 20)]
    )
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(f"direct S1 server on {port}", flush=True)
    await server.wait_for_termination()


def _run(data: str, port: int) -> None:
    asyncio.run(serve(Path(data), port))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args()
    if args.workers == 1:
        _run(args.data, args.port)
        return 0
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_run, args=(args.data, args.port)) for _ in range(args.workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
