"""S1 throughput with inference logging off and on, measured in one run (issue 7's "done when").

Serves the CTR example (scenario S1 of benchmarks/README.md, embedded backends: local feature store,
ONNX Runtime, numpy) with ``inferflow serve`` in a subprocess, one worker, and drives PointWise load
(200 targets, every request with a ``tracking_id``) at concurrency 16 from a separate load-generator
process for ``--seconds`` per setting: logging 0 %, and 100 % in proto and in parquet to the file sink.
Settings are run in interleaved rounds so a noisy machine affects them alike; the table shows req/s
per setting, the ratio to logging off, and what the logger wrote (entities, dropped, bytes on disk);
each setting's line also gives the user + system CPU per request of every server thread (by OS thread
name; ``main`` is the event loop) and of the encoder child.

    /work/venv/bin/python plugins/inferflow_logging/benchmarks/bench_served_logging.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[3]
METHOD = "/Predict/InferPointWise"
WARMUP = 50
SETTINGS = (
    ("off", 0, "proto"),
    ("proto", 100, "proto"),
    ("parquet", 100, "parquet"),
    ("proto-nosink", 100, "proto"),  # encode everything, write nothing (--nosink): logging's own CPU
)
SETTLE_S = 2.0  # after the warm-up, before the measured window
ENCODERS = ("process", "thread")  # INFERFLOW_LOG_ENCODER; a setting "proto/thread" runs that encoder
# (``auto``, the default, runs parquet / arrow as ``process`` and proto as ``thread``: --encoders auto)


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


# ------------------------------------------------------------------------------- load generator
def build_requests(users: int, catalogs: int, count: int, targets: int, seed: int = 11) -> list[bytes]:
    import numpy as np

    from inferflow_core.testing.protos import predict_pb2 as pb

    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        user = str(int(rng.integers(users)))
        ids = rng.choice(catalogs, size=targets, replace=False)
        req = pb.PointWiseRequest(
            model_config_id="bench_ctr",
            tracking_id=f"bench-{k}",
            context_features=[
                pb.ContextFeature(name="user_id", value=user.encode(), data_type=pb.DataTypeString)
            ],
            targets=[pb.Target(id=str(int(i))) for i in ids],
        )
        out.append(req.SerializeToString())
    return out


async def closed_loop(
    target: str, reqs: list[bytes], seconds: float, concurrency: int, settle: float = SETTLE_S
) -> dict:
    import grpc

    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        for req in reqs[:WARMUP]:  # warm-up (and the logger's schema / writer)
            await call(req, timeout=30)
        # the encoder process starts with the first log (INFERFLOW_LOG_ENCODER=auto); the window measures
        # the steady state once it is up (~0.6 s on an idle box)
        await asyncio.sleep(settle)
        done = errors = 0
        stop_at = time.perf_counter() + seconds

        async def caller(k: int) -> None:
            nonlocal done, errors
            i = k
            while time.perf_counter() < stop_at:
                try:
                    await call(reqs[i % len(reqs)], timeout=30)
                    done += 1
                except grpc.RpcError:
                    errors += 1
                i += concurrency

        t0, cpu0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(caller(k) for k in range(concurrency)))
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"requests": done, "errors": errors, "seconds": elapsed, "rps": done / elapsed, "load_cpu_s": cpu}


def loadgen_main(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT))
    reqs = build_requests(args.users, args.catalogs, 300, args.targets)
    result = asyncio.run(closed_loop(args.target, reqs, args.seconds, args.concurrency))
    Path(args.out).write_text(json.dumps(result))
    return 0


# ------------------------------------------------------------------------------- driver
def metric_sum(http_port: int, name: str) -> float:
    """Sum of a Prometheus counter over its labels (0 when absent)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? ([0-9.eE+-]+)$", re.M)
    return sum(float(v) for v in pattern.findall(text))


def cpu_seconds(pid: int) -> float:
    """CPU seconds the server and its live children (the encoder process) have used so far."""
    from inferflow_core.testing import example

    return example.cpu_seconds(pid, children=True)


def child_cpu_seconds(pid: int) -> float:
    """The CPU seconds of the live children alone (the encoder process)."""
    from inferflow_core.testing import example

    return cpu_seconds(pid) - example.cpu_seconds(pid)


def thread_cpu(pid: int) -> dict[str, tuple[float, float]]:
    """{thread label: (user, system) CPU seconds} of the server's threads and its children's
    (label: ``main``, the thread's name, or ``child``); threads of one name are summed."""
    out: dict[str, tuple[float, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")

    def add(proc: int, prefix: str) -> None:
        for task in Path(f"/proc/{proc}/task").glob("*"):
            try:
                comm, rest = task.joinpath("stat").read_text().split("(", 1)[1].rsplit(")", 1)
                kids = task.joinpath("children").read_text().split()
            except OSError:
                continue
            fields = rest.split()
            label = prefix + ("main" if int(task.name) == proc else comm)
            user, system = out.get(label, (0.0, 0.0))
            out[label] = (user + int(fields[11]) / tick, system + int(fields[12]) / tick)
            for kid in kids:
                add(int(kid), "child:")

    add(pid, "")
    return out


def box_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK"), sum(fields) / os.sysconf("SC_CLK_TCK")


def run_setting(data: Path, tmp: Path, setting: tuple, args) -> dict:  # type: ignore[no-untyped-def]
    from inferflow_core.testing import example, pick_free_port

    name, perc, fmt = setting
    encoder = name.split("/")[1] if "/" in name else "thread"
    config = example.write_config(tmp / f"config-{name}", data, logging_perc=perc, models=("bench_ctr",))
    service = config / "inferflow/services/inferflow/model-config/service-config.json"
    service.write_text(json.dumps({"v2-logging-type": fmt, "compression-enabled": False}))
    log_dir = tmp / f"logs-{name}-{time.monotonic_ns()}"
    env = example.embedded_env(data, log_dir=log_dir)
    # "none": encode everything, write nothing (diagnostics)
    env["INFERFLOW_LOG_SINK"] = "none" if "-nosink" in name else args.sink
    env["INFERFLOW_LOG_ENCODER"] = encoder
    port, http_port = pick_free_port(), pick_free_port()
    srv = example.ServerProcess(
        name, example.inferflow_serve(config, port, http_port, 1), env, tmp / f"{name}.log"
    )
    srv.start()
    try:
        srv.wait_http(f"http://127.0.0.1:{http_port}/health/ready", 90)
        time.sleep(0.3)
        out = tmp / f"load-{name}.json"
        cmd = [
            sys.executable, __file__, "--loadgen", "--target", f"127.0.0.1:{port}", "--out", str(out),
            "--seconds", str(args.seconds), "--concurrency", str(args.concurrency),
            "--users", str(example.FULL["users"]), "--catalogs", str(example.FULL["catalogs"]),
        ]  # fmt: skip
        load = example.ServerProcess(
            f"loadgen {name}", cmd, example.embedded_env(data), tmp / f"load-{name}.log"
        )
        assert srv.proc is not None
        cpu0 = cpu_seconds(srv.proc.pid)
        child0 = child_cpu_seconds(srv.proc.pid)
        threads0 = thread_cpu(srv.proc.pid)
        box0 = box_cpu()
        load.start()
        assert load.proc is not None
        if load.proc.wait(timeout=args.seconds + 120) != 0:
            raise RuntimeError(f"loadgen failed:\n{load.log_tail()}")
        res = json.loads(out.read_text())
        box1 = box_cpu()
        time.sleep(0.5)  # let the logging worker catch up before reading its counters
        cpu1 = cpu_seconds(srv.proc.pid)
        child1 = child_cpu_seconds(srv.proc.pid)
        threads1 = thread_cpu(srv.proc.pid)
        served = res["requests"] + WARMUP
        res["threads_us_per_req"] = {
            label: [round(1e6 * (u - threads0.get(label, (0, 0))[0]) / served),
                    round(1e6 * (k - threads0.get(label, (0, 0))[1]) / served)]
            for label, (u, k) in threads1.items()
        }  # fmt: skip
        res["cpu_ms_per_req"] = 1000 * (cpu1 - cpu0) / served
        res["encoder_cpu_ms_per_req"] = 1000 * (child1 - child0) / served
        res["load_cpu_ms_per_req"] = 1000 * res["load_cpu_s"] / max(1, res["requests"])
        # machine busy share during the load (all processes; the load's own start-up included)
        res["box_busy"] = (box1[0] - box0[0]) / max(1e-9, box1[1] - box0[1])
        res["logged_entities"] = metric_sum(http_port, "inferflow_logging_entities_total")
        res["dropped"] = metric_sum(http_port, "inferflow_logging_dropped_total")
    finally:
        srv.stop()
    res["log_bytes"] = sum(p.stat().st_size for p in log_dir.glob("*.binpb")) if log_dir.exists() else 0
    # a parquet setting writes GBs: removed at once, its dirty pages are dropped rather than written back
    # while the next setting runs (the kernel's writeback would take CPU from it)
    shutil.rmtree(log_dir, ignore_errors=True)
    return res


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="load per setting and round")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--targets", type=int, default=200)
    parser.add_argument("--sink", choices=("file", "none"), default="file")
    parser.add_argument("--nosink", action="store_true", help="also run proto with INFERFLOW_LOG_SINK=none")
    parser.add_argument("--only", nargs="*", help="run only these settings (off, proto, parquet)")
    parser.add_argument("--encoders", nargs="*", default=list(ENCODERS), choices=(*ENCODERS, "auto"))
    parser.add_argument("--loadgen", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--users", type=int, default=10_000, help=argparse.SUPPRESS)
    parser.add_argument("--catalogs", type=int, default=100_000, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loadgen:
        return loadgen_main(args)
    from inferflow_core.testing import example

    data = example.ensure_data(demo=False, progress=lambda m: print(m, flush=True))
    settings = [("off", 0, "proto")] + [
        (f"{name}/{enc}", perc, fmt) for name, perc, fmt in SETTINGS[1:] for enc in args.encoders
    ]
    results: dict[str, list[dict]] = {name: [] for name, _, _ in settings}
    with tempfile.TemporaryDirectory(prefix="inferflow-logbench-") as tmp_name:
        tmp = Path(tmp_name)
        for _ in range(args.rounds):
            for setting in settings:
                base_name = setting[0].split("/")[0]
                if args.only and base_name not in args.only and base_name != "off":
                    continue
                wanted = args.nosink or (args.only and base_name in args.only)
                if base_name == "proto-nosink" and not wanted:
                    continue
                res = run_setting(data, tmp, setting, args)
                results[setting[0]].append(res)
                print(
                    f"  {setting[0]:<20} {res['rps']:8.1f} req/s  {res['cpu_ms_per_req']:.3f} CPU ms/req"
                    f" (encoder process {res['encoder_cpu_ms_per_req']:.3f})"
                    f" (load {res['load_cpu_ms_per_req']:.3f}, box busy {res['box_busy']:.0%})"
                    f"  errors {res['errors']}",
                    flush=True,
                )
                busy = sorted(res["threads_us_per_req"].items(), key=lambda kv: -sum(kv[1]))
                print(
                    "    threads (user+sys us/req): "
                    + ", ".join(f"{k} {u}+{s}" for k, (u, s) in busy if u + s >= 10),
                    flush=True,
                )
    base = statistics.median(r["rps"] for r in results["off"])
    summary = {}
    print(
        f"\nS1 PointWise, 200 targets, concurrency {args.concurrency}, {args.seconds:.0f} s x {args.rounds}"
    )
    print(
        f"{'logging':<22}{'req/s':>8}{'vs off':>8}{'CPU ms/req':>11}{'load ms':>8}{'box':>6}"
        f"{'entities':>10}{'dropped':>8}{'MB':>7}"
    )
    for name, perc, fmt in settings:
        runs = results[name]
        if not runs:
            continue
        rps = statistics.median(r["rps"] for r in runs)
        row = {
            "logging_perc": perc,
            "format": fmt if perc else None,
            "rps": round(rps, 1),
            "ratio_vs_off": round(rps / base, 3) if base else None,
            "logged_entities": sum(r["logged_entities"] for r in runs),
            "dropped": sum(r["dropped"] for r in runs),
            "log_mb": round(sum(r["log_bytes"] for r in runs) / 1e6, 1),
            "cpu_ms_per_req": round(statistics.median(r["cpu_ms_per_req"] for r in runs), 3),
            "load_cpu_ms_per_req": round(statistics.median(r["load_cpu_ms_per_req"] for r in runs), 3),
            "box_busy": round(statistics.median(r["box_busy"] for r in runs), 3),
            "rps_runs": [round(r["rps"], 1) for r in runs],
        }
        summary[name] = row
        label = f"{perc}%" + (f" {fmt}" if perc else "") + (" no sink" if "-nosink" in name else "")
        label += f" {name.split('/')[1]}" if "/" in name else ""
        print(
            f"{label:<22}{row['rps']:>8.1f}{row['ratio_vs_off']:>8.3f}{row['cpu_ms_per_req']:>11.3f}"
            f"{row['load_cpu_ms_per_req']:>8.3f}{row['box_busy']:>6.0%}"
            f"{row['logged_entities']:>10.0f}{row['dropped']:>8.0f}"
            f"{row['log_mb']:>7.1f}"
        )
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
