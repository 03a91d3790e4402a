"""Time the two S1 feature components (benchmarks/README.md) filling 200 rows: embedded, remote, warm cache.

    python plugins/inferflow_onfs/benchmarks/bench_features.py [--requests 2000] [--data DIR]

user_features: 1 user x 32 FP32 (10,000 users); catalog_features: 200 catalogs x (64 FP32 + FP32Vector[32])
(100,000 catalogs). Both components run concurrently per request, as in the DAG. "bare gRPC" replays the
same response bytes from a raw server (no store, no decoding, same batching) — the floor for remote mode —
once from a server in another process (the topology of remote mode) and once from a server in this process.
``cpu_p50_ms`` is this thread's CPU time per request (robust on a busy machine, where wall time is not).
``store_rss`` is measured in a fresh process: RSS after imports, then after loading both labels.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time

import grpc
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from inferflow_onfs.backends import LocalBackend
from inferflow_onfs.client import METHOD, OnfsClient
from inferflow_onfs.config import FeatureComponentConfig
from inferflow_onfs.plugin import FeatureComponentType
from inferflow_onfs.settings import OnfsSettings
from inferflow_onfs.store import LocalStore

from inferflow_core.api import BuildContext, Metrics, ModelConfig, features
from inferflow_core.testing import make_context, pick_free_port

USERS, CATALOGS, TARGETS = 10_000, 100_000, 200

USER = {
    "component": "user_features", "component_id": "user_id",
    "fs_keys": [{"schema": "user_id", "col": "user_id"}],
    "fs_request": {"label": "user", "featureGroups": [
        {"label": "profile", "data_type": "DataTypeFP32", "features": [f"u{i}" for i in range(32)]}]},
    "fs_flatten_resp_keys": ["user_id"], "comp_cache_enabled": True,
}  # fmt: skip
CATALOG = {
    "component": "catalog_features", "component_id": "catalog_id",
    "fs_keys": [{"schema": "catalog_id", "col": "catalog_id"}],
    "fs_request": {"label": "catalog", "featureGroups": [
        {"label": "A", "data_type": "DataTypeFP32", "features": [f"a{i}" for i in range(64)]},
        {"label": "B", "data_type": "DataTypeFP32Vector", "features": ["emb"]}]},
    "fs_flatten_resp_keys": ["catalog_id"], "comp_cache_enabled": True,
}  # fmt: skip


def write_data(root: str) -> None:
    rng = np.random.default_rng(42)
    users = {"user_id": [f"u{i}" for i in range(USERS)]}
    users |= {f"profile:u{i}": rng.random(USERS, dtype=np.float32) for i in range(32)}
    pq.write_table(pa.table(users), os.path.join(root, "user.parquet"))
    cats: dict = {"catalog_id": [str(i) for i in range(CATALOGS)]}
    cats |= {f"A:a{i}": rng.random(CATALOGS, dtype=np.float32) for i in range(64)}
    emb = rng.random((CATALOGS, 32), dtype=np.float32)
    cats["B:emb"] = pa.FixedSizeListArray.from_arrays(pa.array(emb.ravel()), 32)
    pq.write_table(pa.table(cats), os.path.join(root, "catalog.parquet"))


def build(backend, cache: features.FeatureCache | None):  # type: ignore[no-untyped-def]
    cc = {"cache_enabled": cache is not None, "cache_version": 1, "cache_ttl": 3600}
    raw = {
        "dag_execution_config": {"component_dependency": {"user_features": ["feature_initializer"],
                                                          "catalog_features": ["feature_initializer"]}},
        "component_config": {**cc, "feature_components": [USER, CATALOG]},
        "response_config": {"features": ["catalog_id"]},
    }  # fmt: skip
    ctx = BuildContext("bench_ctr", ModelConfig.model_validate(raw), {}, Metrics())
    ctype = FeatureComponentType(backend=backend, cache=cache)
    return [ctype.build(FeatureComponentConfig.model_validate(c), ctx) for c in (USER, CATALOG)]


def requests(n: int, seed: int) -> list[tuple[str, list[str]]]:
    rng = np.random.default_rng(seed)
    return [
        (f"u{rng.integers(USERS)}", [str(c) for c in rng.integers(0, CATALOGS, TARGETS)]) for _ in range(n)
    ]


async def run_mode(components, reqs, warm: int, cpu: list[float] | None = None) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    for i, (user, cats) in enumerate(reqs):
        ctx = make_context(components[0], rows=TARGETS, texts={"catalog_id": cats, "user_id": user})
        for comp in components[1:]:
            for spec in comp.outputs():
                ctx.matrix.declare(spec.name, spec.dtype)
        c0, t0 = time.thread_time(), time.perf_counter()
        await asyncio.gather(*(c.run(ctx) for c in components))
        elapsed = time.perf_counter() - t0
        assert not ctx.failures, ctx.failures
        if i >= warm:
            times.append(elapsed)
            if cpu is not None:
                cpu.append(time.thread_time() - c0)
    return times


async def bare_grpc(port: int, reqs, warm: int, batch: int) -> dict[str, list[float]]:  # type: ignore[no-untyped-def]
    """Same calls (1 user + 200/batch catalog batches in parallel), the server replays prepared bytes:
    from another process (``out``) and from this one (``in``)."""
    from inferflow_onfs._proto import retrieve_pb2 as pb

    client = OnfsClient(OnfsSettings(fs_host="127.0.0.1", fs_port=port, fs_plaintext=True, deadline_ms=5000))
    comps = build(client, None)
    user, cats = reqs[0]
    bodies = []
    for comp, keys in (
        (comps[0], [(user,)]),
        *((comps[1], [(c,) for c in cats[s : s + batch]]) for s in range(0, TARGETS, batch)),
    ):
        bodies.append(client._template(comp.request) + pb.Query(keys=[pb.Keys(cols=k) for k in keys])
                      .SerializeToString())  # fmt: skip
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        raw = channel.unary_unary(METHOD)
        answers = [await raw(b, timeout=5) for b in bodies]
    out: dict[str, list[float]] = {}
    with tempfile.NamedTemporaryFile(suffix=".pickle", delete=False) as fh:
        pickle.dump(dict(zip(bodies, answers, strict=True)), fh)
    replay_port = pick_free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--replay-serve", fh.name, "--port", str(replay_port)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        proc.stdout.readline()  # type: ignore[union-attr]
        c0 = _proc_cpu(proc.pid)
        out["out_cpu"] = []
        out["out"] = await _replay_times(replay_port, bodies, len(reqs), warm, out["out_cpu"])
        out["out_server_cpu"] = [(_proc_cpu(proc.pid) - c0) / len(reqs)]
    finally:
        proc.terminate()
        proc.wait(10)
        os.unlink(fh.name)
    echo = _ReplayServer(dict(zip(bodies, answers, strict=True)))
    out["in"] = await _replay_times(await echo.start(), bodies, len(reqs), warm)
    await echo.stop()
    return out


async def _replay_times(
    port: int, bodies: list[bytes], n: int, warm: int, cpu: list[float] | None = None
) -> list[float]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(METHOD)
        times = []
        for i in range(n):
            c0, t0 = time.thread_time(), time.perf_counter()
            await asyncio.gather(*(call(b, timeout=5) for b in bodies))
            if i >= warm:
                times.append(time.perf_counter() - t0)
                if cpu is not None:
                    cpu.append(time.thread_time() - c0)
    return times


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid``."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _replay_serve(path: str, port: int) -> None:
    with open(path, "rb") as fh:
        server = _ReplayServer(pickle.load(fh))
    await server.start(port)
    print("ready", flush=True)
    await asyncio.Event().wait()


class _ReplayServer:
    def __init__(self, answers: dict[bytes, bytes]) -> None:
        self.answers = answers
        self.server = grpc.aio.server()

    async def _handle(self, body: bytes, context) -> bytes:  # type: ignore[no-untyped-def]
        return self.answers[body]

    async def start(self, port: int = 0) -> int:
        handler = grpc.method_handlers_generic_handler(
            "retrieve.FeatureService", {"RetrieveFeatures": grpc.unary_unary_rpc_method_handler(self._handle)}
        )
        self.server.add_generic_rpc_handlers((handler,))
        port = self.server.add_insecure_port(f"127.0.0.1:{port}")
        await self.server.start()
        return port

    async def stop(self) -> None:
        await self.server.stop(0.5)


def stats(times: list[float], cpu: list[float] | None = None) -> dict:
    ms = np.array(times) * 1000
    out = {"n": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 3),
           "p99_ms": round(float(np.percentile(ms, 99)), 3),
           "max_ms": round(float(ms.max()), 3)}  # fmt: skip
    if cpu:
        out["cpu_p50_ms"] = round(float(np.percentile(np.array(cpu) * 1000, 50)), 3)
    return out


def _rss() -> dict[str, float]:
    got = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS", "RssAnon")):
                got[line.split(":")[0]] = round(int(line.split()[1]) / 1024, 1)
    return got


def store_rss(root: str) -> dict:
    """RSS of a fresh process before and after loading the store for both components."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[2]); import bench_features as B; "
        "before = B._rss(); store = B.LocalStore(sys.argv[1]); B.build(B.LocalBackend(store), None); "
        "print(json.dumps({'before_mb': before, 'after_mb': B._rss()}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, root, os.path.dirname(os.path.abspath(__file__))],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    got = json.loads(done.stdout.strip().splitlines()[-1])
    got["store_anon_mb"] = round(got["after_mb"]["RssAnon"] - got["before_mb"]["RssAnon"], 1)
    return dict(got)


async def main_async(args: argparse.Namespace, root: str) -> dict:
    store = LocalStore(root)
    t0 = time.perf_counter()
    local = LocalBackend(store)
    embedded = build(local, None)
    load_s = time.perf_counter() - t0
    out: dict = {"store_load_s": round(load_s, 2), "store_rss": store_rss(root)}
    warm = 200
    cpu: list[float] = []
    out["embedded"] = stats(await run_mode(embedded, requests(args.requests + warm, 1), warm, cpu), cpu)
    cache = features.FeatureCache(1 << 30)
    cached = build(local, cache)
    reqs = requests(args.requests + warm, 2)
    await run_mode(cached, reqs, len(reqs))  # first pass fills the cache; the second is measured
    cache.hits = cache.misses = 0
    cpu = []
    out["warm_cache"] = stats(await run_mode(cached, reqs, warm, cpu), cpu)
    out["warm_cache"]["hit_ratio"] = round(cache.hits / max(1, cache.hits + cache.misses), 4)
    port = pick_free_port()
    exe = shutil.which("inferflow-onfs", path=os.path.dirname(sys.executable)) or "inferflow-onfs"
    proc = subprocess.Popen(
        [exe, "serve", "--data", root, "--port", str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        proc.stdout.readline()  # type: ignore[union-attr]
        settings = OnfsSettings(fs_host="127.0.0.1", fs_port=port, fs_plaintext=True, deadline_ms=5000,
                                batch_size=args.batch)  # fmt: skip
        remote = build(OnfsClient(settings), None)
        n = args.remote_requests
        cpu = []
        c0 = _proc_cpu(proc.pid)
        out["remote"] = stats(await run_mode(remote, requests(n + warm, 3), warm, cpu), cpu)
        out["remote"]["server_cpu_ms_per_request"] = round((_proc_cpu(proc.pid) - c0) / (n + warm) * 1000, 3)
        bare = await bare_grpc(port, requests(n + warm, 3), warm, args.batch)
        out["bare_grpc_same_bytes"] = stats(bare["out"], bare["out_cpu"])
        out["bare_grpc_same_bytes"]["server_cpu_ms_per_request"] = round(bare["out_server_cpu"][0] * 1000, 3)
        out["bare_grpc_same_bytes_in_process"] = stats(bare["in"])
        out["remote_over_bare_p50"] = round(
            out["remote"]["p50_ms"] / out["bare_grpc_same_bytes"]["p50_ms"], 2
        )
    finally:
        proc.terminate()
        proc.wait(10)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--remote-requests", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=50, help="EXTERNAL_SERVICE_ONFS_FS_BATCH_SIZE")
    parser.add_argument("--data", default="", help="reuse a generated data directory")
    parser.add_argument("--replay-serve", default="", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replay_serve:
        asyncio.run(_replay_serve(args.replay_serve, args.port))
        return
    root = args.data or tempfile.mkdtemp(prefix="onfs_bench_")
    try:
        os.makedirs(root, exist_ok=True)
        if not os.path.exists(os.path.join(root, "catalog.parquet")):
            write_data(root)
        result = asyncio.run(main_async(args, root))
    finally:
        if not args.data:  # generated here (~50 MB): not left behind
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
