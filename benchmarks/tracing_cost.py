"""Tracing in scenario S1 (remote mode: OnFS, KServe v2 / ONNX Runtime and Numerix servers as processes).

    python benchmarks/tracing_cost.py trace          # one 200-target request, its span tree with timings
    python benchmarks/tracing_cost.py cost [--n 1000] # p50/p99 at concurrency 1: off, 1 % sampled, always on

``cost`` runs ``inferflow serve`` (1 worker, feature cache off) once per setting against the same backends
and measures it with ``benchmarks/s1/loadgen.py`` in its own process. "on" uses the console exporter into
the server's log file (no collector here), with ``parentbased_traceidratio`` 0.01 or ``always_on``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "s1"))

import remote_direct  # noqa: E402
import run as s1  # noqa: E402

from inferflow_core.testing import example, pick_free_port  # noqa: E402


def _tree(spans: list[Any]) -> list[str]:
    by_parent: dict[int | None, list[Any]] = {}
    for span in spans:
        by_parent.setdefault(span.parent.span_id if span.parent else None, []).append(span)
    ids = {s.context.span_id for s in spans}
    roots = [s for s in spans if s.parent is None or s.parent.span_id not in ids]
    t0 = min(s.start_time for s in spans)
    lines: list[str] = []

    def walk(span: Any, depth: int) -> None:
        start = (span.start_time - t0) / 1e6
        dur = (span.end_time - span.start_time) / 1e6
        attrs = {
            k.removeprefix("inferflow."): v for k, v in span.attributes.items() if k.startswith("inferflow.")
        }
        attrs.pop("model_id", None) if depth else None
        status = "" if span.status.status_code.name == "UNSET" else f" [{span.status.status_code.name}]"
        lines.append(
            f"{'  ' * depth}{span.name:<{44 - 2 * depth}} +{start:7.2f} ms {dur:7.2f} ms{status} {attrs}"
        )
        for child in sorted(by_parent.get(span.context.span_id, []), key=lambda s: s.start_time):
            walk(child, depth + 1)

    for root in sorted(roots, key=lambda s: s.start_time):
        walk(root, 0)
    return lines


async def _one_trace(tmp: Path, data: Path, ports: dict[str, int]) -> list[str]:
    from inferflow_core.api import Runtime, sources
    from inferflow_core.testing.server import running_server
    from inferflow_core.testing.tracing import recorded_spans

    os.environ.update(example.embedded_env(data))
    os.environ.update(s1.remote_env(ports))
    config = example.write_config(
        tmp / "config",
        data,
        predator_endpoint=f"127.0.0.1:{ports['kserve']}",
        logging_perc=0,
        models=("bench_ctr",),
    )
    with recorded_spans() as exporter:
        runtime = Runtime()
        workload = example.Workload(example.FULL["users"], example.FULL["catalogs"])
        source = sources.DirectorySource(config, runtime.prefixes)
        async with running_server(runtime, source=source, http=False) as srv:
            call = srv.channel.unary_unary("/Predict/InferPointWise")
            for i in range(6):  # warm up channels and caches of the first calls, keep the last trace
                exporter.clear()
                user, ids = workload.draw(200)
                request = example.pointwise_request("bench_ctr", user, ids, tracking_id=f"trace-{i}")
                await call(request.SerializeToString(), timeout=5)
        spans = list(exporter.get_finished_spans())
    return _tree(spans)


def _serve_and_measure(
    bench: Any, name: str, ports: dict[str, int], extra_env: dict[str, str], n: int
) -> dict:
    config = example.write_config(
        bench.tmp / f"config-{name}", bench.data, predator_endpoint=f"127.0.0.1:{ports['kserve']}",
        logging_perc=0, models=("bench_ctr",),
    )  # fmt: skip
    env = example.embedded_env(bench.data)
    env.update(s1.remote_env(ports))
    env.update(extra_env)
    port, http_port = pick_free_port(), pick_free_port()
    srv = example.ServerProcess(
        name, example.inferflow_serve(config, port, http_port, 1), env, bench.tmp / f"{name}.log"
    )
    srv.start()
    try:
        srv.wait_http(f"http://127.0.0.1:{http_port}/health/ready", 90)
        bench._settle(1)
        (pid,) = srv.worker_pids()
        cpu0 = _cpu_s(pid)
        got = dict(bench.loadgen(port, name, latency=n, throughput=False)["latency"])
        # server CPU per request (warm-up included): less sensitive to other load on the machine than p50
        got["server_cpu_us_per_request"] = (_cpu_s(pid) - cpu0) / (n + bench.warmup) * 1e6
        got.pop("check", None)
        return got
    finally:
        srv.stop()


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _summary(results: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    import statistics

    out = {}
    for name, runs in results.items():
        out[name] = {
            "p50_ms_median": statistics.median(r["p50_ms"] for r in runs),
            "p99_ms_median": statistics.median(r["p99_ms"] for r in runs),
            "cpu_us_per_request_median": statistics.median(r["server_cpu_us_per_request"] for r in runs),
        }
    base = out["off"]
    for row in out.values():
        row["p50_vs_off"] = row["p50_ms_median"] / base["p50_ms_median"] - 1
        row["cpu_vs_off"] = row["cpu_us_per_request_median"] / base["cpu_us_per_request_median"] - 1
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("what", choices=["trace", "cost"])
    p.add_argument("--n", type=int, default=1000, help="requests per setting (cost)")
    p.add_argument("--rounds", type=int, default=2, help="off / 1% / always-on rounds, interleaved (cost)")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="inferflow-tracing-"))
    data = example.ensure_data(demo=False, progress=lambda m: print(m, flush=True))
    ports, procs, _ = remote_direct.start_backends(tmp, data)
    try:
        if args.what == "trace":
            print("\n".join(asyncio.run(_one_trace(tmp, data, ports))))
            return 0
        bench = s1.Bench(argparse.Namespace(quick=True))
        bench.warmup = 100
        settings = {
            "off": {},
            "on_1pct": {"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                        "OTEL_TRACES_SAMPLER_ARG": "0.01"},
            "on_all": {"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": "always_on"},
        }  # fmt: skip
        results: dict[str, list[dict]] = {k: [] for k in settings}
        for r in range(args.rounds):
            for name, env in settings.items():
                got = _serve_and_measure(bench, f"{name}-{r}", ports, env, args.n)
                results[name].append(got)
                print(f"{name:8} round {r}: {json.dumps(got)}", flush=True)
        print(json.dumps(_summary(results), indent=1))
        return 0
    finally:
        for proc in procs:
            proc.stop()


if __name__ == "__main__":
    raise SystemExit(main())
