"""Issue 19 measurements: a load process against ``inferflow serve`` subprocesses (not a timed test).

    .venv/bin/python benchmarks/reliability_load.py [amplification] [overload] [hung] [--workers N]

* amplification: server RSS growth (VmHWM) while three amplification requests are answered, and the
  latency of small requests sent every 10 ms meanwhile (vs. before).
* overload: capacity (closed loop), then an open-loop load at 2x capacity with a 500 ms deadline:
  goodput (OK within deadline per second) and how fast refusals are answered.
* hung: a component that hangs past a 1 s budget; share of partial answers within the deadline.
* hung_numerix: the same with the real Numerix client against a Numerix-protocol server that never
  answers, its own timeout (NUMERIX_CLIENT_V1_DEADLINE_MS) 5 s, longer than the 1 s request budget.

The models use the probe component of tests/helpers.py (served through an entry point, like
tests/test_serving_shutdown.py). Run from the repository root.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import grpc
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inferflow_core.testing import pick_free_port, write_config_dir  # noqa: E402
from inferflow_core.testing.process import ServeProcess, entry_point_plugin  # noqa: E402
from inferflow_core.testing.protos import predict_pb2 as P  # noqa: E402

PREFIX = "inferflow/services/inferflow/model-config/config-map/"


def _model(dag: dict, probes: list[dict], features: list[str]) -> str:
    return json.dumps(
        {
            "dag_execution_config": {"component_dependency": dag},
            "component_config": {"probe_components": probes},
            "response_config": {"features": features},
        }
    )


MODELS = {
    "point": _model(
        {"scorer": ["feature_initializer"], "doubler": ["feature_initializer"]},
        [
            {"component": "scorer", "outputs": [{"name": "score"}], "value": 0.5},
            {"component": "doubler", "outputs": [{"name": "price_x2"}], "copy_from": "price", "value": 2},
        ],
        ["catalog_id", "score", "price_x2"],
    ),
    "io": _model(  # a backend-bound model: 50 ms of waiting per request
        {"remote": ["feature_initializer"]},
        [{"component": "remote", "outputs": [{"name": "score"}], "sleep_ms": 50}],
        ["catalog_id", "score"],
    ),
    "slate": _model(
        {"scorer": ["feature_initializer"], "slater": ["scorer"]},
        [
            {"component": "scorer", "outputs": [{"name": "score"}], "value": 0.5},
            {"component": "slater", "slate_outputs": [{"name": "slate_score"}], "value": 1.0},
        ],
        ["catalog_id", "score", "slate_score"],
    ),
    "hung": _model(
        {"ok": ["feature_initializer"], "hung": ["feature_initializer"]},
        [
            {"component": "ok", "outputs": [{"name": "score"}], "value": 0.5},
            {"component": "hung", "outputs": [{"name": "remote"}], "sleep_ms": 30000},
        ],
        ["catalog_id", "score", "remote"],
    ),
}


NUMERIX_MODEL = json.dumps(
    {
        "dag_execution_config": {"component_dependency": {"ok": ["feature_initializer"], "final": ["ok"]}},
        "component_config": {
            "probe_components": [{"component": "ok", "outputs": [{"name": "score"}], "value": 0.5}],
            "numerix_components": [
                {
                    "component": "final", "component_id": "catalog_id", "score_col": "final_score",
                    "data_type": "DataTypeFP32", "compute_id": "1",
                    "score_mapping": {"pctr@DataTypeFP32": "score", "price@DataTypeFP32": "price"},
                }
            ],
        },
        "response_config": {"features": ["catalog_id", "score", "final_score"]},
    }
)  # fmt: skip
HUNG_NUMERIX_PORT = 0  # set by main() before the server starts


def start(tmp: Path, env: dict[str, str] | None = None) -> ServeProcess:
    cfg, plug = tmp / "cfg", tmp / "plugins"
    plug.mkdir(exist_ok=True)
    (plug / "probe_ep.py").write_text("from tests.helpers import ProbePlugin\n\nplugin = ProbePlugin()\n")
    entry_point_plugin(plug, "probe-ep", "probe_ep:plugin")
    tree = {PREFIX + k: v for k, v in MODELS.items()}
    if HUNG_NUMERIX_PORT:
        tree[PREFIX + "hung_numerix"] = NUMERIX_MODEL
        tree["numerix/expression-config/1"] = json.dumps({"expression": "pctr price 2 + log /"})
    write_config_dir(cfg, tree)
    server = ServeProcess(
        cfg, env={"INFERFLOW_LOG_JSON": "true", **(env or {})}, pythonpath=[str(plug), str(REPO)],
        log_path=tmp / "serve.log",
    )  # fmt: skip
    server.start()
    return server


def proc_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def point(targets: int, model: str = "point") -> bytes:
    return P.PointWiseRequest(
        model_config_id=model,
        target_input_schema=[P.FeatureSchema(name="price", data_type=P.DataTypeFP32)],
        targets=[P.Target(id=str(i), feature_values=[b"1.5"]) for i in range(targets)],
    ).SerializeToString()


def amplification() -> bytes:
    big = b":".join([b"1"] * 50_000)
    return P.PointWiseRequest(
        model_config_id="point",
        target_input_schema=[P.FeatureSchema(name="emb", data_type=P.DataTypeFP64Vector)],
        targets=[P.Target(id=str(i), feature_values=[big if i == 0 else b""]) for i in range(10_000)],
    ).SerializeToString()


async def call(channel: grpc.aio.Channel, raw: bytes, timeout: float) -> tuple[str, float]:
    path = "/Predict/InferPointWise"
    method = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
    t0 = time.perf_counter()
    try:
        await method(raw, timeout=timeout)
        code = "OK"
    except grpc.aio.AioRpcError as err:
        code = err.code().name
    return code, time.perf_counter() - t0


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1000, q)) if xs else float("nan")


async def run_amplification(server: ServeProcess) -> dict:
    pid = server.proc.pid  # type: ignore[union-attr]
    small = point(20)
    amp = amplification()
    async with grpc.aio.insecure_channel(server.address) as ch:
        for _ in range(50):
            await call(ch, small, 5)
        rss0, hwm0 = proc_kb(pid, "VmRSS"), proc_kb(pid, "VmHWM")
        lat: dict[str, list[float]] = {"before": [], "during": []}
        phase = "before"
        stop = False

        async def ticker() -> None:
            while not stop:
                _, dt = await call(ch, small, 5)
                lat[phase].append(dt)
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(1.0)
        phase = "during"
        codes = []
        t0 = time.perf_counter()
        for _ in range(3):
            codes.append(await call(ch, amp, 30))
        amp_s = time.perf_counter() - t0
        phase = "after"
        lat["after"] = []
        await asyncio.sleep(0.2)
        stop = True
        await task
        hwm1 = proc_kb(pid, "VmHWM")
    return {
        "codes": [c for c, _ in codes],
        "amplification_latency_ms": [round(d * 1000, 1) for _, d in codes],
        "rss_before_mb": round(rss0 / 1024, 1),
        "peak_rss_growth_mb": round(max(0, hwm1 - max(hwm0, rss0)) / 1024, 1),
        "small_p50_before_ms": round(pct(lat["before"], 50), 2),
        "small_p99_before_ms": round(pct(lat["before"], 99), 2),
        "small_p50_during_ms": round(pct(lat["during"], 50), 2),
        "small_max_during_ms": round(max(lat["during"], default=0) * 1000, 2),
        "during_window_s": round(amp_s, 3),
    }


async def closed_loop(address: str, raw: bytes, seconds: float, concurrency: int) -> float:
    done = 0
    end = time.perf_counter() + seconds
    async with grpc.aio.insecure_channel(address) as ch:

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < end:
                code, _ = await call(ch, raw, 5)
                done += code == "OK"

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / seconds


async def open_loop(address: str, raw: bytes, rate: float, seconds: float, deadline: float) -> dict:
    results: list[tuple[str, float]] = []
    async with grpc.aio.insecure_channel(address) as ch:
        tasks = []
        t0 = time.perf_counter()
        n = int(rate * seconds)
        for i in range(n):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(call(ch, raw, deadline)))
        results = await asyncio.gather(*tasks)
        sent_s = time.perf_counter() - t0
    ok = [d for c, d in results if c == "OK" and d <= deadline]
    refused = [d for c, d in results if c in ("RESOURCE_EXHAUSTED", "UNAVAILABLE")]
    codes: dict[str, int] = {}
    for c, _ in results:
        codes[c] = codes.get(c, 0) + 1
    return {
        "offered_rps": round(n / seconds, 1),
        "achieved_send_s": round(sent_s, 2),
        "goodput_rps": round(len(ok) / seconds, 1),
        "codes": codes,
        "ok_p99_ms": round(pct(ok, 99), 1),
        "refusal_p50_ms": round(pct(refused, 50), 2),
        "refusal_p99_ms": round(pct(refused, 99), 2),
    }


async def run_overload(server: ServeProcess) -> dict:
    raw = point(int(os.environ.get("LOAD_TARGETS", "2000")))
    await closed_loop(server.address, raw, 1.0, 8)  # warm-up
    capacity = await closed_loop(server.address, raw, 4.0, 8)
    result = await open_loop(server.address, raw, 2 * capacity, 6.0, 0.5)
    ratio = round(result["goodput_rps"] / capacity, 3)
    return {"capacity_rps": round(capacity, 1), **result, "goodput_x_capacity": ratio, "shed": shed(server)}


def shed(server: ServeProcess) -> dict[str, float]:
    """``requests_shed`` and API status counts from the server's /metrics."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("inferflow_requests_shed_total", "requests_shed_total")):
            name, value = line.rsplit(" ", 1)
            out[name.split("{", 1)[1].rstrip("}")] = float(value)
    return out


async def run_overload_io(server: ServeProcess) -> dict:
    """Backend-bound: capacity = INFERFLOW_MAX_IN_FLIGHT / 50 ms; offered 2x that."""
    raw = point(20, "io")
    capacity = await closed_loop(server.address, raw, 3.0, 64)
    result = await open_loop(server.address, raw, 2 * capacity, 6.0, 0.5)
    ratio = round(result["goodput_rps"] / capacity, 3)
    return {"capacity_rps": round(capacity, 1), **result, "goodput_x_capacity": ratio, "shed": shed(server)}


async def run_stall(server: ServeProcess) -> dict:
    """Small requests every 5 ms while a 100k-slate request and a 50k-pair request are served."""
    targets = [P.Target(id=str(i)) for i in range(100)]
    big_slates = P.SlateWiseRequest(
        model_config_id="slate",
        targets=targets,
        slates=[
            P.TargetSlate(target_indices=[i % 100, (i + 1) % 100, (i + 7) % 100]) for i in range(100_000)
        ],
    ).SerializeToString()
    big_pairs = P.PairWiseRequest(
        model_config_id="slate",
        targets=targets,
        pairs=[
            P.TargetPair(first_target_index=i % 100, second_target_index=(i + 3) % 100) for i in range(50_000)
        ],
    ).SerializeToString()
    small = point(20)
    out: dict = {}
    async with grpc.aio.insecure_channel(server.address) as ch:
        for _ in range(50):
            await call(ch, small, 5)
        for name, path, body in (
            ("slates_100k", "/Predict/InferSlateWise", big_slates),
            ("pairs_50k", "/Predict/InferPairWise", big_pairs),
        ):
            lat: list[float] = []
            big = ch.unary_unary(path, request_serializer=None, response_deserializer=None)
            t0 = time.perf_counter()
            task = asyncio.ensure_future(big(body, timeout=30))
            while not task.done():
                lat.append((await call(ch, small, 5))[1])
                await asyncio.sleep(0.005)
            await task
            out[name] = {
                "big_ms": round((time.perf_counter() - t0) * 1000, 1),
                "small_p50_ms": round(pct(lat, 50), 2),
                "small_max_ms": round(max(lat) * 1000, 2),
                "small_n": len(lat),
            }
    return out


async def partial_answers(address: str, body: bytes, n: int, concurrency: int) -> dict:
    """``n`` requests with a 1 s deadline, ``concurrency`` at a time: how many got an answer in time."""
    results: list[tuple[str, float]] = []
    sem = asyncio.Semaphore(concurrency)
    async with grpc.aio.insecure_channel(address) as ch:

        async def one() -> None:
            async with sem:
                results.append(await call(ch, body, 1.0))

        await asyncio.gather(*(one() for _ in range(n)))
    ok = [d for c, d in results if c == "OK" and d <= 1.0]
    return {
        "requests": n,
        "partial_within_deadline": len(ok),
        "share": round(len(ok) / n, 4),
        "deadline_exceeded": sum(c == "DEADLINE_EXCEEDED" for c, _ in results),
        "p50_ms": round(pct([d for _, d in results], 50), 1),
        "p99_ms": round(pct([d for _, d in results], 99), 1),
    }


async def run_hung(server: ServeProcess, n: int = 300, concurrency: int = 60) -> dict:
    raw = P.PointWiseRequest(model_config_id="hung", targets=[P.Target(id=str(i)) for i in range(50)])
    return await partial_answers(server.address, raw.SerializeToString(), n, concurrency)


async def run_hung_numerix(server: ServeProcess, n: int = 300, concurrency: int = 60) -> dict:
    """A Numerix-protocol server that accepts every call and never answers."""

    async def never(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await asyncio.sleep(3600)
        return b""

    handler = grpc.method_handlers_generic_handler(
        "numerix.Numerix", {"Compute": grpc.unary_unary_rpc_method_handler(never)}
    )
    hung = grpc.aio.server()
    hung.add_generic_rpc_handlers((handler,))
    hung.add_insecure_port(f"127.0.0.1:{HUNG_NUMERIX_PORT}")
    await hung.start()
    raw = P.PointWiseRequest(
        model_config_id="hung_numerix",
        target_input_schema=[P.FeatureSchema(name="price", data_type=P.DataTypeFP32)],
        targets=[P.Target(id=str(i), feature_values=[b"9.5"]) for i in range(50)],
    ).SerializeToString()
    try:
        return await partial_answers(server.address, raw, n, concurrency)
    finally:
        await hung.stop(0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", nargs="*", default=["amplification", "overload", "overload_io", "hung"])
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server")
    args = ap.parse_args()
    env = dict(e.split("=", 1) for e in args.env)
    if "hung_numerix" in args.what:
        global HUNG_NUMERIX_PORT
        HUNG_NUMERIX_PORT = pick_free_port()
        env.update(
            NUMERIX_CLIENT_V1_HOST="127.0.0.1",
            NUMERIX_CLIENT_V1_PORT=str(HUNG_NUMERIX_PORT),
            NUMERIX_CLIENT_V1_PLAINTEXT="true",
            NUMERIX_CLIENT_V1_DEADLINE_MS="5000",
        )
    out: dict = {}
    for what in args.what:
        with tempfile.TemporaryDirectory() as tmp:
            server = start(Path(tmp), env)
            try:
                runner = {
                    "amplification": run_amplification,
                    "overload": run_overload,
                    "overload_io": run_overload_io,
                    "hung": run_hung,
                    "hung_numerix": run_hung_numerix,
                    "stall": run_stall,
                }[what]
                out[what] = asyncio.run(runner(server))
            finally:
                server.kill()
        print(json.dumps({what: out[what]}), flush=True)


if __name__ == "__main__":
    main()
