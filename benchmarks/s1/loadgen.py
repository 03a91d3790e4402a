"""S1 load generator: its own process, pre-serialised requests, raw-bytes gRPC calls.

    python loadgen.py --target 127.0.0.1:8085 --users 10000 --catalogs 100000 \
        --latency 2000 --warmup 200 --throughput-s 20 --concurrency 16 --out result.json

Latency: one request in flight (sync stub), ``--latency`` requests after ``--warmup``; p50/p99/max.
Throughput: ``--concurrency`` callers in a closed loop (grpc.aio) for ``--throughput-s`` seconds.
Paced: ``--paced-rate`` requests a second, one at a time on a fixed schedule, for ``--paced-s`` seconds
(traffic below capacity: each request finds the server idle); p50/p99.
Requests are built and serialised before the clock starts and responses are not parsed (one sample
is, to check that the server answered every target), so the generator's own cost stays small.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
METHOD = "/Predict/InferPointWise"


def build_requests(args: argparse.Namespace, count: int) -> list[bytes]:
    from inferflow_core.testing.protos import predict_pb2 as pb

    rng = np.random.default_rng(args.seed)
    out = []
    for _ in range(count):
        user = str(int(rng.integers(args.users)))
        ids = rng.choice(args.catalogs, size=args.targets, replace=False)
        req = pb.PointWiseRequest(
            model_config_id=args.model,
            context_features=[
                pb.ContextFeature(name="user_id", value=user.encode(), data_type=pb.DataTypeString)
            ],
            targets=[pb.Target(id=str(int(i))) for i in ids],
        )
        out.append(req.SerializeToString())
    return out


def check_response(raw: bytes, targets: int) -> dict:
    """Every target scored? Plus the reply's size and digest (the direct baseline must answer the same)."""
    import hashlib

    from inferflow_core.testing.protos import predict_pb2 as pb

    resp = pb.PointWiseResponse.FromString(raw)
    names = [s.name for s in resp.target_output_schema]
    filled = 0
    if "final_score" in names:
        k = names.index("final_score")
        filled = sum(
            1 for s in resp.target_scores if len(s.output_values) > k and len(s.output_values[k]) == 4
        )
    return {
        "targets": len(resp.target_scores),
        "final_score_filled": filled,
        "expected": targets,
        "bytes": len(raw),
        "sha1": hashlib.sha1(raw).hexdigest()[:12],
    }


def latency(args: argparse.Namespace, reqs: list[bytes]) -> dict:
    import grpc

    with grpc.insecure_channel(args.target) as channel:
        call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        sample = call(reqs[0], timeout=30)
        times = []
        for i in range(args.warmup + args.latency):
            req = reqs[i % len(reqs)]
            t0 = time.perf_counter()
            call(req, timeout=30)
            if i >= args.warmup:
                times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1000
    return {
        "requests": len(times),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        "mean_ms": float(ms.mean()),
        "check": check_response(sample, args.targets),
    }


def paced(args: argparse.Namespace, reqs: list[bytes]) -> dict:
    """Requests sent on a fixed schedule (``--paced-rate`` a second, one in flight); a request that
    comes back after its successor's slot delays that one (the schedule never catches up in a burst)."""
    import grpc

    with grpc.insecure_channel(args.target) as channel:
        call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        for req in reqs[:20]:
            call(req, timeout=30)
        times = []
        interval = 1.0 / args.paced_rate
        start = next_at = time.perf_counter()
        i = 0
        while next_at - start < args.paced_s:
            time.sleep(max(0.0, next_at - time.perf_counter()))
            t0 = time.perf_counter()
            call(reqs[i % len(reqs)], timeout=30)
            times.append(time.perf_counter() - t0)
            i += 1
            next_at = max(next_at + interval, time.perf_counter())
    ms = np.array(times) * 1000
    return {
        "rate": args.paced_rate,
        "requests": len(times),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


async def _throughput(args: argparse.Namespace, reqs: list[bytes]) -> dict:
    import grpc

    async with grpc.aio.insecure_channel(args.target) as channel:
        call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        for req in reqs[: args.concurrency]:  # warm every connection / worker
            await call(req, timeout=30)
        done = errors = 0
        stop_at = time.perf_counter() + args.throughput_s

        async def caller(k: int) -> None:
            nonlocal done, errors
            i = k
            while time.perf_counter() < stop_at:
                try:
                    await call(reqs[i % len(reqs)], timeout=30)
                    done += 1
                except grpc.RpcError:
                    errors += 1
                i += args.concurrency

        t0 = time.perf_counter()
        await asyncio.gather(*(caller(k) for k in range(args.concurrency)))
        elapsed = time.perf_counter() - t0
    return {
        "concurrency": args.concurrency,
        "seconds": elapsed,
        "requests": done,
        "errors": errors,
        "rps": done / elapsed,
        "targets_per_s": done * args.targets / elapsed,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", required=True)
    p.add_argument("--model", default="bench_ctr")
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--catalogs", type=int, default=100_000)
    p.add_argument("--targets", type=int, default=200)
    p.add_argument("--latency", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--throughput-s", type=float, default=20.0)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--paced-rate", type=float, default=0.0, help="requests a second, on a fixed schedule")
    p.add_argument("--paced-s", type=float, default=5.0)
    p.add_argument("--distinct", type=int, default=500, help="distinct prebuilt requests (cycled)")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    reqs = build_requests(args, args.distinct)
    result: dict = {"target": args.target, "targets": args.targets}
    if args.latency > 0:
        result["latency"] = latency(args, reqs)
    if args.throughput_s > 0:
        result["throughput"] = asyncio.run(_throughput(args, reqs))
    if args.paced_rate > 0:
        result["paced"] = paced(args, reqs)
    Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
