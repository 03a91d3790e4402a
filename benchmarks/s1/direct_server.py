"""The "direct" baseline of S1: the same backend work with no DAG and no matrix, behind the same gRPC method.

    python direct_server.py --data examples/ctr/data/full --port 9000 [--workers 2]
    python direct_server.py --mode remote --onfs H:P --kserve H:P --numerix H:P --port 9000

``embedded``: the example's Parquet files as plain numpy arrays with an id -> row dict, the same ONNX model
in ONNX Runtime (1 intra-op thread) on the [targets, 96] + [targets, 32] inputs, ``pctr / ln(price + 2)``
in numpy. ``remote``: the same calls Inferflow's remote mode makes (``remote_direct.RemoteDirect``: both
OnFS look-ups in parallel, one KServe v2 ModelInfer, one Numerix Compute), from one grpc.aio channel per
backend. Both answer with the PointWise response Inferflow writes (same fields, same bytes), written as
wire bytes directly like Inferflow does. The load generator calls this server exactly as it calls
Inferflow, so Inferflow p50 / direct p50 is the cost of the DAG, the matrix and the generic code: direct
p50 = the same work done in process + one gRPC round trip of the same request and response bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

_SMALL = [bytes((i,)) for i in range(128)]  # the varints of 0..127: one byte each


def varint(n: int) -> bytes:
    """Base-128 varint of a non-negative int."""
    if n < 128:
        return _SMALL[n]
    out = bytearray()
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _ld(field: int, payload: bytes) -> bytes:
    return bytes(((field << 3) | 2,)) + varint(len(payload)) + payload


def _schema() -> bytes:
    """PointWiseResponse.target_output_schema: catalog_id STRING, pctr FP32, final_score FP32."""
    from inferflow_core.testing.protos import predict_pb2 as pb

    columns = (("catalog_id", pb.DataTypeString), ("pctr", pb.DataTypeFP32), ("final_score", pb.DataTypeFP32))
    return b"".join(_ld(1, _ld(1, name.encode()) + bytes((0x10, dtype))) for name, dtype in columns)


_SCHEMA = _schema()
_FIXED_HEAD = np.frombuffer(b"\x12\x04", np.uint8)


def pointwise_response(ids: list[str], pctr: np.ndarray, final: np.ndarray) -> bytes:
    """``PointWiseResponse`` bytes: schema, then per target ``output_values = [id, pctr LE, final LE]``."""
    n = len(ids)
    block = np.empty((n, 12), np.uint8)
    block[:, 0:2] = block[:, 6:8] = _FIXED_HEAD
    block[:, 2:6] = np.ascontiguousarray(pctr, "<f4").view(np.uint8).reshape(n, 4)
    block[:, 8:12] = np.ascontiguousarray(final, "<f4").view(np.uint8).reshape(n, 4)
    fixed = block.tobytes()
    small = _SMALL
    parts = [_SCHEMA]
    for i, ident in enumerate(ids):
        raw = ident.encode()
        body = b"\x12" + small[len(raw)] + raw + fixed[12 * i : 12 * i + 12]
        parts.append(b"\x12" + small[len(body)] + body)
    return b"".join(parts)


def _request(raw: bytes) -> tuple[str, list[str]]:
    from inferflow_core.testing.protos import predict_pb2 as pb

    req = pb.PointWiseRequest.FromString(raw)
    user = next((c.value.decode() for c in req.context_features if c.name == "user_id"), "")
    return user, [t.id for t in req.targets]


class EmbeddedS1:
    """The S1 work in process: dict look-ups, ONNX Runtime, the expression in numpy."""

    def __init__(self, data: Path, batch: int = 0) -> None:
        import onnxruntime as ort

        self.batch = batch  # rows per model call (0: all)
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

    async def handle(self, raw: bytes) -> bytes:
        user, ids = _request(raw)
        rows = np.fromiter((self.cat_index.get(i, -1) for i in ids), dtype=np.int64, count=len(ids))
        rows = np.where(rows >= 0, rows, 0)
        urow = self.user_index.get(user)
        uvec = self.user[urow] if urow is not None else np.zeros(self.user.shape[1], np.float32)
        dense = np.empty((len(ids), uvec.shape[0] + self.dense.shape[1]), np.float32)
        dense[:, : uvec.shape[0]] = uvec
        dense[:, uvec.shape[0] :] = self.dense[rows]
        emb = self.emb[rows]
        step = self.batch or len(ids)
        probs = [
            self.session.run(["prob"], {"dense": dense[a : a + step], "emb": emb[a : a + step]})[0]
            for a in range(0, len(ids), step)
        ]
        prob = probs[0] if len(probs) == 1 else np.concatenate(probs)
        pctr = prob[:, 0].astype("<f4")
        final = pctr / np.log(self.price[rows] + np.float32(2))
        return pointwise_response(ids, pctr, final)


class RemoteS1:
    """The S1 calls to the three remote backends, made by hand (see ``remote_direct.RemoteDirect``)."""

    def __init__(self, onfs: str, kserve: str, numerix: str) -> None:
        from remote_direct import RemoteDirect

        self.client = RemoteDirect(onfs, kserve, numerix)

    async def handle(self, raw: bytes) -> bytes:
        user, ids = _request(raw)
        pctr, final = await self.client.score(user, ids)
        return pointwise_response(ids, pctr, final)


async def serve(args: argparse.Namespace) -> None:
    import grpc

    work = (
        EmbeddedS1(Path(args.data), args.ranker_batch)
        if args.mode == "embedded"
        else RemoteS1(args.onfs, args.kserve, args.numerix)
    )

    async def infer(request: bytes, context: object) -> bytes:
        return await work.handle(request)

    handler = grpc.method_handlers_generic_handler(
        "Predict", {"InferPointWise": grpc.unary_unary_rpc_method_handler(infer)}
    )
    server = grpc.aio.server(
        options=[("grpc.so_reuseport", 1), ("grpc.max_receive_message_length", 64 << 20)]
    )
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    await server.start()
    print(f"direct S1 server ({args.mode}) on {args.port}", flush=True)
    await server.wait_for_termination()


def _run(args: argparse.Namespace) -> None:
    asyncio.run(serve(args))


def _run_worker(args: argparse.Namespace) -> None:
    """A worker of ``--workers N``: dies with the parent (Linux PR_SET_PDEATHSIG), so a killed benchmark
    leaves no orphan serving on the shared port and using CPU in the next measurement."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG
        parent = mp.parent_process()
        if parent is not None and os.getppid() != parent.pid:  # the parent died before prctl
            return
    _run(args)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("embedded", "remote"), default="embedded")
    p.add_argument("--data", help="example data dir (embedded mode)")
    p.add_argument("--onfs", help="OnFS-protocol server host:port (remote mode)")
    p.add_argument("--kserve", help="KServe v2 server host:port (remote mode)")
    p.add_argument("--numerix", help="Numerix server host:port (remote mode)")
    p.add_argument("--ranker-batch", type=int, default=0, help="rows per model call (embedded; 0: all)")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args()
    if args.mode == "embedded" and not args.data:
        p.error("--data is required in embedded mode")
    if args.mode == "remote" and not (args.onfs and args.kserve and args.numerix):
        p.error("--onfs, --kserve and --numerix are required in remote mode")
    if args.workers == 1:
        _run(args)
        return 0
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_run_worker, args=(args,)) for _ in range(args.workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
