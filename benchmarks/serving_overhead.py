"""Serving overhead: PointWise, 200 targets, through a no-op DAG vs a do-nothing gRPC server.

Both servers are separate processes; the load generator is a third process. The do-nothing server
answers a method with the *same response bytes* the real server produced for the same request bytes,
so the ratio isolates what Inferflow adds (parse, matrix, DAG, response building) on top of a gRPC
round trip. Measured for ``inferflow serve --workers 1`` and ``--workers 2``.

    /work/venv/bin/python benchmarks/serving_overhead.py [--requests 2000] [--seconds 20] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inferflow_core.testing import pick_free_port, write_config_dir  # noqa: E402
from inferflow_core.testing.process import ServeProcess, entry_point_plugin  # noqa: E402
from inferflow_core.testing.protos import predict_pb2  # noqa: E402

PATH = "/Predict/InferPointWise"
NOOP_PLUGIN = """
import numpy as np
from pydantic import BaseModel
from inferflow_core.api import ColumnSpec, Component, DataType, RegisterComponent, hookimpl

class NoopConfig(BaseModel):
    component: str

class Noop(Component):
    def outputs(self):
        return [ColumnSpec("score", DataType.FP32)]
    async def run(self, ctx):
        ctx.matrix.set_column("score", np.ones(ctx.matrix.rows, dtype=np.float32))

class NoopType:
    config_key = "noop_components"
    config_model = NoopConfig
    def build(self, cfg, ctx):
        return Noop(cfg.component, ctx.model_id)

@hookimpl
def register_components(register: RegisterComponent) -> None:
    register(NoopType())
"""
MODEL = {
    "dag_execution_config": {"component_dependency": {"noop": ["feature_initializer"]}},
    "component_config": {"noop_components": [{"component": "noop"}]},
    "response_config": {"features": ["catalog_id", "score"]},
}


def request_bytes(n: int = 200) -> bytes:
    return predict_pb2.PointWiseRequest(
        model_config_id="bench",
        context_features=[predict_pb2.ContextFeature(name="user_id", value=b"1234")],
        targets=[predict_pb2.Target(id=str(100000 + 7 * i)) for i in range(n)],
    ).SerializeToString()


# ---------------------------------------------------------------------------------- do-nothing server
def _echo_server(port: int, response: bytes, ready: mp.Event) -> None:  # type: ignore[valid-type]
    import grpc

    async def main() -> None:
        async def handler(_req: bytes, _ctx: object) -> bytes:
            return response

        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(
                    "Predict", {"InferPointWise": grpc.unary_unary_rpc_method_handler(handler)}
                )
            ]
        )
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        ready.set()
        await server.wait_for_termination()

    asyncio.run(main())


# ------------------------------------------------------------------------------------- load generator
def _load(address: str, payloads: list[bytes], requests: int, seconds: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    import grpc

    async def main() -> dict:
        async with grpc.aio.insecure_channel(address) as channel:
            call = channel.unary_unary(PATH)
            for i in range(200):
                await call(payloads[i % len(payloads)], timeout=10)
            lat = []
            for i in range(requests):
                payload = payloads[i % len(payloads)]
                t0 = time.perf_counter()
                await call(payload, timeout=10)
                lat.append(time.perf_counter() - t0)
            lat.sort()
            done = 0
            stop_at = time.perf_counter() + seconds

            async def worker() -> None:
                nonlocal done
                while time.perf_counter() < stop_at:
                    await call(payloads[done % len(payloads)], timeout=10)
                    done += 1

            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(16)))
            elapsed = time.perf_counter() - t0
        return {
            "p50_ms": 1000 * statistics.median(lat),
            "p99_ms": 1000 * lat[int(0.99 * (len(lat) - 1))],
            "max_ms": 1000 * lat[-1],
            "rps_c16": done / elapsed,
        }

    out.put(asyncio.run(main()))


def run_load(address: str, payload: bytes | Sequence[bytes], requests: int, seconds: float) -> dict:
    """From another process: p50/p99/max ms of ``requests`` calls at concurrency 1 (after 200 warm-up
    calls), then req/s at concurrency 16 for ``seconds``. ``payload``: one request, or several in turn."""
    payloads = [payload] if isinstance(payload, bytes) else list(payload)
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_load, args=(address, payloads, requests, seconds, q))
    p.start()
    result = q.get(timeout=600)
    p.join(30)
    return result


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def worker_pids(pid: int) -> list[int]:
    """The serving processes: the children (spawned workers) of ``pid``, or ``pid`` itself."""
    kids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            if (
                int(stat.rsplit(")", 1)[1].split()[1]) == pid
                and "resource_tracker" not in (proc / "cmdline").read_text()
            ):
                kids.append(int(proc.name))
    return kids or [pid]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--quick", action="store_true", help="500 requests, 5 s throughput")
    ap.add_argument("--json", help="write results here")
    args = ap.parse_args()
    if args.quick:
        args.requests, args.seconds = 500, 5.0
    payload = request_bytes()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        (tmpd / "plug").mkdir()
        (tmpd / "plug" / "bench_noop.py").write_text(NOOP_PLUGIN)
        entry_point_plugin(tmpd / "plug", "bench-noop", "bench_noop")
        write_config_dir(
            tmpd / "cfg", {"inferflow/services/inferflow/model-config/config-map/bench": json.dumps(MODEL)}
        )
        response = b""
        for workers in (1, 2):
            env = {"APP_LOG_LEVEL": "WARNING"}
            with ServeProcess(tmpd / "cfg", workers=workers, env=env, pythonpath=[str(tmpd / "plug")]) as srv:
                if not response:
                    import grpc

                    with grpc.insecure_channel(srv.address) as ch:
                        response = ch.unary_unary(PATH)(payload, timeout=10)
                    decoded = predict_pb2.PointWiseResponse.FromString(response)
                    assert len(decoded.target_scores) == 200
                    assert not decoded.request_error
                res = run_load(srv.address, payload, args.requests, args.seconds)
                pids = worker_pids(srv.proc.pid)  # type: ignore[union-attr]
                res["rss_mb_per_worker"] = max(_rss_mb(p) for p in pids)
                res["worker_processes"] = len(pids)
                results[f"inferflow_workers_{workers}"] = res
        ctx = mp.get_context("spawn")
        ready = ctx.Event()
        port = pick_free_port()
        echo = ctx.Process(target=_echo_server, args=(port, response, ready), daemon=True)
        echo.start()
        try:
            if not ready.wait(30):
                raise RuntimeError("echo server did not start")
            results["grpc_do_nothing"] = run_load(f"127.0.0.1:{port}", payload, args.requests, args.seconds)
        finally:
            echo.terminate()
            echo.join(5)
    base = results["grpc_do_nothing"]
    one, two = results["inferflow_workers_1"], results["inferflow_workers_2"]
    summary = {
        "request_bytes": len(payload),
        "response_bytes": len(response),
        "p50_ratio_workers_1": one["p50_ms"] / base["p50_ms"],
        "p50_ratio_workers_2": two["p50_ms"] / base["p50_ms"],
        "rps_ratio_2_vs_1_workers": two["rps_c16"] / one["rps_c16"],
        "cpus": os.cpu_count(),
    }
    print(f"{'server':<22}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'req/s c16':>11}{'RSS MB':>9}")
    for name, r in results.items():
        rss = f"{r['rss_mb_per_worker']:.0f}" if "rss_mb_per_worker" in r else "-"
        print(
            f"{name:<22}{r['p50_ms']:>9.3f}{r['p99_ms']:>9.3f}{r['max_ms']:>9.3f}{r['rps_c16']:>11.0f}{rss:>9}"
        )
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
