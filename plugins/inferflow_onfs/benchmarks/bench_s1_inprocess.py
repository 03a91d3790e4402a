"""Time the S1 feature components in process, the way the embedded S1 server runs them.

    python plugins/inferflow_onfs/benchmarks/bench_s1_inprocess.py [--requests 2000] [--cache]

Builds a Runtime on the example's config (``inferflow_core.testing.example``, model ``bench_ctr``, embedded
store), decodes the same PointWise requests ``benchmarks/s1/loadgen.py`` sends (seed 11, 10k users, 100k
catalogs, 200 targets, warm-up first) and runs them through the server's request handling in process
(``InProcessService``: no gRPC). Reports per-request handler time and
the time inside each FeatureComponent.run (``user_features``, ``catalog_features``); with ``--cache`` the
feature cache is on and fills as the server's would (warm-up + measured requests, mostly partial hits).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]


def _requests(n: int, seed: int = 11) -> list[bytes]:
    from inferflow_core.testing.protos import predict_pb2 as pb

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        user = str(int(rng.integers(10_000)))
        ids = rng.choice(100_000, size=200, replace=False)
        req = pb.PointWiseRequest(
            model_config_id="bench_ctr",
            context_features=[
                pb.ContextFeature(name="user_id", value=user.encode(), data_type=pb.DataTypeString)
            ],
            targets=[pb.Target(id=str(int(i))) for i in ids],
        )
        out.append(req.SerializeToString())
    return out


def _pct(values: list[float]) -> dict:
    us = np.array(values) * 1e6
    return {k: round(float(np.percentile(us, q)), 1) for k, q in (("p50_us", 50), ("p99_us", 99))}


async def main_async(args: argparse.Namespace) -> dict:
    from inferflow_onfs.component import FeatureComponent

    from inferflow_core.api import Runtime, sources
    from inferflow_core.testing import example
    from inferflow_core.testing.inprocess import InProcessService

    data = example.ensure_data(demo=False, progress=None)
    os.environ.update(example.embedded_env(data))
    with tempfile.TemporaryDirectory(prefix="s1-inproc-") as tmp:
        cfg = example.write_config(Path(tmp) / "cfg", data, cache=args.cache)
        runtime = Runtime()
        runtime.apply_tree(sources.read_config_dir(cfg, runtime.prefixes))
    service = InProcessService(runtime)

    spent: dict[str, float] = defaultdict(float)
    original = FeatureComponent.run

    async def timed(self: FeatureComponent, ctx: object) -> None:
        t0 = time.perf_counter()
        try:
            await original(self, ctx)  # type: ignore[arg-type]
        finally:
            spent[self.name] += time.perf_counter() - t0

    FeatureComponent.run = timed  # type: ignore[method-assign]
    reqs = _requests(args.warmup + args.requests)
    total: list[float] = []
    per: dict[str, list[float]] = defaultdict(list)
    prof = None
    for i, raw in enumerate(reqs):
        if i == args.warmup and args.profile:
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
        spent.clear()
        t0 = time.perf_counter()
        await service.call("pointwise", raw)
        elapsed = time.perf_counter() - t0
        if i >= args.warmup:
            total.append(elapsed)
            for name, s in spent.items():
                per[name].append(s)
    if prof is not None:
        import pstats

        prof.disable()
        pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(args.profile)
    out = {"cache": args.cache, "requests": args.requests, "handler": _pct(total)}
    out |= {name: _pct(v) for name, v in sorted(per.items())}
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--cache", action="store_true")
    p.add_argument("--profile", type=int, default=0, help="print the top N functions of a cProfile run")
    print(json.dumps(asyncio.run(main_async(p.parse_args()))))


if __name__ == "__main__":
    main()
