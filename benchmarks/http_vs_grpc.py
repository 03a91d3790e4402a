"""S1 over gRPC, HTTP/protobuf and HTTP/JSON in one run (issue 20), against one `inferflow serve`.

    python benchmarks/http_vs_grpc.py [--quick] [--rounds 3] [--out results.json]

Starts `inferflow serve` (S1 embedded: local feature store, ONNX Runtime, numpy evaluator; cache off,
logging off, 1 worker), then runs the load generator in its own process (``--load``): for each round,
each transport in a rotated order, latency at concurrency 1 (p50 / p99 after warm-up) and a closed loop
at concurrency 16 (req/s, p50 / p99). The same prebuilt requests go over every transport: protobuf bytes
for gRPC and HTTP/protobuf, their JSON form for HTTP/JSON. Before measuring, one request's answers are
compared: HTTP/protobuf bytes must equal gRPC's, HTTP/JSON scores must equal the decoded gRPC scores.
The table shows the median over rounds and the load average of the machine before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
METHOD = "/Predict/InferPointWise"
PATH = "/v1/models/bench_ctr/pointwise"
TRANSPORTS = ("grpc", "http-protobuf", "http-json")


# -- requests -------------------------------------------------------------------------------------------
def build(args: argparse.Namespace) -> tuple[list[bytes], list[bytes]]:
    """(protobuf bodies, JSON bodies) of the same S1 requests."""
    from inferflow_core.testing.protos import predict_pb2 as pb

    rng = np.random.default_rng(args.seed)
    protos, jsons = [], []
    for _ in range(args.distinct):
        user = str(int(rng.integers(args.users)))
        ids = [str(int(i)) for i in rng.choice(args.catalogs, size=args.targets, replace=False)]
        req = pb.PointWiseRequest(
            model_config_id="bench_ctr",
            context_features=[
                pb.ContextFeature(name="user_id", value=user.encode(), data_type="DataTypeString")
            ],
            targets=[pb.Target(id=i) for i in ids],
        )
        protos.append(req.SerializeToString())
        jsons.append(json.dumps({"targets": ids, "context": {"user_id": user}}).encode())
    return protos, jsons


def http_request(port: int, body: bytes, ctype: str) -> bytes:
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _content_length(head: bytes) -> tuple[int, int]:
    status = int(head[9:12])
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            return status, int(line[15:])
    return status, 0


# -- clients --------------------------------------------------------------------------------------------
class BlockingHttp:
    """One kept-alive connection, prebuilt request bytes, minimal response parsing."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def call(self, request: bytes) -> bytes:
        self.sock.sendall(request)
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(65536)
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        status, length = _content_length(head)
        while len(rest) < length:
            rest += self.sock.recv(65536)
        self.buf = rest[length:]
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {rest[:300]!r}")
        return rest[:length]


def cpu_s(pid: int | None) -> float:
    """utime + stime of the server process, seconds (0 without a pid)."""
    if not pid:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def latency_c1(args: argparse.Namespace, transport: str, reqs: list[bytes]) -> dict[str, float]:
    import grpc

    if transport == "grpc":
        channel = grpc.insecure_channel(f"127.0.0.1:{args.grpc_port}")
        stub = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)

        def call(r: bytes) -> Any:
            return stub(r, timeout=30)
    else:
        client = BlockingHttp(args.http_port)
        call = client.call
    times = []
    for i in range(args.warmup + args.latency):
        req = reqs[i % len(reqs)]
        t0 = time.perf_counter()
        call(req)
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


async def throughput_c16(args: argparse.Namespace, transport: str, reqs: list[bytes]) -> dict[str, float]:
    import grpc

    n = args.concurrency
    lat: list[float] = []
    stop_at = 0.0
    if transport == "grpc":
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{args.grpc_port}")
        stub = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        conns: list[Any] = [stub] * n

        async def call(k: int, r: bytes) -> None:
            await conns[k](r, timeout=30)
    else:
        conns = [await asyncio.open_connection("127.0.0.1", args.http_port) for _ in range(n)]

        async def call(k: int, r: bytes) -> None:
            reader, writer = conns[k]
            writer.write(r)
            head = await reader.readuntil(b"\r\n\r\n")
            status, length = _content_length(head)
            await reader.readexactly(length)
            if status != 200:
                raise RuntimeError(f"HTTP {status}")

    for k in range(n):  # warm every connection
        await call(k, reqs[k])

    async def caller(k: int) -> None:
        i = k
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            await call(k, reqs[i % len(reqs)])
            lat.append(time.perf_counter() - t0)
            i += n

    cpu0 = cpu_s(args.server_pid)
    t0 = time.perf_counter()
    stop_at = t0 + args.throughput_s
    await asyncio.gather(*(caller(k) for k in range(n)))
    elapsed = time.perf_counter() - t0
    cpu = cpu_s(args.server_pid) - cpu0
    if transport == "grpc":
        await channel.close()
    else:
        for _, writer in conns:
            writer.close()
    ms = np.array(lat) * 1000
    return {
        "rps": len(lat) / elapsed,
        "c16_p50_ms": float(np.percentile(ms, 50)),
        "c16_p99_ms": float(np.percentile(ms, 99)),
        "server_cpu_ms_per_req": cpu * 1000 / max(1, len(lat)),
    }


def check_same_answers(args: argparse.Namespace, protos: list[bytes], jsons: list[bytes]) -> dict[str, Any]:
    import grpc

    from inferflow_core.client import Table
    from inferflow_core.testing.protos import predict_pb2 as pb

    with grpc.insecure_channel(f"127.0.0.1:{args.grpc_port}") as channel:
        stub = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        want = stub(protos[0], timeout=30)
    client = BlockingHttp(args.http_port)
    got = client.call(http_request(args.http_port, protos[0], "application/x-protobuf"))
    doc = json.loads(client.call(http_request(args.http_port, jsons[0], "application/json")))
    resp = pb.PointWiseResponse.FromString(want)
    scores = Table.decode(resp.target_output_schema, resp.target_scores).to_dicts()
    filled = sum(1 for row in scores if row.get("final_score") is not None)
    return {
        "protobuf_bytes_identical": got == want,
        "json_scores_identical": doc["targets"] == scores,
        "final_score_filled": filled,
        "targets": len(scores),
    }


def load_main(args: argparse.Namespace) -> int:
    protos, jsons = build(args)
    bodies = {
        "grpc": protos,
        "http-protobuf": [http_request(args.http_port, b, "application/x-protobuf") for b in protos],
        "http-json": [http_request(args.http_port, b, "application/json") for b in jsons],
    }
    out: dict[str, Any] = {"check": check_same_answers(args, protos, jsons), "rounds": []}
    for r in range(args.rounds):
        order = TRANSPORTS[r % 3 :] + TRANSPORTS[: r % 3]
        one: dict[str, Any] = {}
        for transport in order:
            res = latency_c1(args, transport, bodies[transport])
            res.update(asyncio.run(throughput_c16(args, transport, bodies[transport])))
            one[transport] = res
            print(f"round {r + 1} {transport}: {res}", file=sys.stderr, flush=True)
        out["rounds"].append(one)
    Path(args.out).write_text(json.dumps(out, indent=2))
    return 0


# -- orchestration --------------------------------------------------------------------------------------
def summary(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    out = {}
    for transport in TRANSPORTS:
        rounds = [r[transport] for r in result["rounds"]]
        out[transport] = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    return out


def print_table(result: dict[str, Any]) -> None:
    print(f"\nS1 embedded, 1 worker, cache off, logging off; median of {len(result['rounds'])} round(s)")
    print(f"load average before {result['loadavg_before']}, after {result['loadavg_after']}")
    print(f"answers: {result['check']}")
    print(
        f"{'transport':<14} {'p50 ms':>8} {'p99 ms':>8} {'req/s@c16':>10} {'p50@c16':>8} {'p99@c16':>8} "
        f"{'CPU ms/req':>10}"
    )
    for transport, s in result["summary"].items():
        print(
            f"{transport:<14} {s['p50_ms']:>8.2f} {s['p99_ms']:>8.2f} {s['rps']:>10.0f} "
            f"{s['c16_p50_ms']:>8.2f} {s['c16_p99_ms']:>8.2f} {s['server_cpu_ms_per_req']:>10.2f}"
        )


def run(args: argparse.Namespace) -> dict[str, Any]:
    from inferflow_core.testing import example, pick_free_port

    tmp = Path(tempfile.mkdtemp(prefix="inferflow-http-bench-"))
    data = example.ensure_data(demo=False, progress=lambda m: print(m, flush=True))
    config = example.write_config(tmp / "config", data, cache=False, logging_perc=0, models=("bench_ctr",))
    port, http_port = pick_free_port(), pick_free_port()
    srv = example.ServerProcess(
        "inferflow serve",
        example.inferflow_serve(config, port, http_port),
        example.embedded_env(data),
        tmp / "serve.log",
    )
    srv.start()
    try:
        srv.wait_http(f"http://127.0.0.1:{http_port}/health/ready", 90)
        before = [round(x, 2) for x in os.getloadavg()]
        out = tmp / "load.json"
        cmd = [
            sys.executable, __file__, "--load", "--grpc-port", str(port), "--http-port", str(http_port),
            "--out", str(out), "--rounds", str(args.rounds), "--latency", str(args.latency),
            "--warmup", str(args.warmup), "--throughput-s", str(args.throughput_s),
            "--users", str(example.FULL["users"]), "--catalogs", str(example.FULL["catalogs"]),
            "--server-pid", str(srv.worker_pids()[0]),
        ]  # fmt: skip
        subprocess.run(cmd, check=True, timeout=1800)
        result = json.loads(out.read_text())
        result["loadavg_before"] = before
        result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        srv.stop()
    result["summary"] = summary(result)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1 round, 300 requests, 3 s loops")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--latency", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--throughput-s", type=float, default=10.0)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--out", help="write the results JSON here")
    p.add_argument("--load", action="store_true", help=argparse.SUPPRESS)  # the load-generator process
    p.add_argument("--grpc-port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--http-port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    p.add_argument("--users", type=int, default=10_000, help=argparse.SUPPRESS)
    p.add_argument("--catalogs", type=int, default=100_000, help=argparse.SUPPRESS)
    p.add_argument("--targets", type=int, default=200, help=argparse.SUPPRESS)
    p.add_argument("--distinct", type=int, default=500, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=11, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.load:
        return load_main(args)
    if args.quick:
        args.rounds, args.latency, args.warmup, args.throughput_s = 1, 300, 50, 3.0
    result = run(args)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    print_table(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
