"""``inferflow demo``: the CTR example end to end with every backend embedded.

Generates the example's data if missing, writes a config directory, starts ``inferflow serve`` as a
child process (local feature store, ONNX Runtime, numpy Numerix, file inference logs), waits for
readiness, sends one request per API, prints the results and a latency summary, decodes one inference
log, and stops the server. ``--keep-running`` leaves it up until Ctrl-C and prints how to call it.

The example itself (config, model, data generator, request helpers) ships in ``inferflow_core.example``,
so the demo runs from any install (a source checkout, a wheel, the container image); this module only
narrates.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from ._console import progress, table

LATENCY_REQUESTS = 200
TARGETS = 200


def step(n: int, total: int, text: str) -> None:
    print(f"\n[{n}/{total}] {text}", flush=True)


def run_requests(h: ModuleType, port: int, users: int, catalogs: int) -> None:
    """One call per API through the public client (inferflow_core.client), then a latency loop."""
    from .client import InferflowClient

    work = h.Workload(users, catalogs)
    with InferflowClient(f"127.0.0.1:{port}", timeout=30) as client:
        user, ids = work.draw(TARGETS)
        context = {"user_id": user}

        print(f"\n  PointWise: model bench_ctr, user {user}, {len(ids)} targets -> top 10 by final_score")
        res = client.pointwise("bench_ctr", ids, context=context, tracking_id="demo-1")
        rows = res.to_dicts()
        ranked = sorted(rows, key=lambda r: -(r.get("final_score") or float("-inf")))[:10]
        table(
            ["rank", "catalog_id", "pctr", "final_score"],
            [[i + 1, r.get("catalog_id"), r.get("pctr"), r.get("final_score")] for i, r in enumerate(ranked)],
        )
        print(f"  {len(rows)} targets scored, {sum(1 for e in res.errors if e)} with an error")

        pair_ids = ids[:6]
        pairs = [(0, 1), (2, 3), (4, 5), (1, 0)]
        print("\n  PairWise: model bench_ctr_pairwise, 6 targets, 4 pairs (1 = first target preferred)")
        pres = client.pairwise("bench_ctr_pairwise", pair_ids, pairs, context=context)
        prow, trow = pres.pairs.to_dicts(), pres.targets.to_dicts()
        table(
            ["pair", "first", "second", "first final_score", "second final_score", "first_preferred"],
            [
                [
                    k,
                    pair_ids[a],
                    pair_ids[b],
                    trow[a].get("final_score"),
                    trow[b].get("final_score"),
                    prow[k].get("first_preferred") if k < len(prow) else None,
                ]
                for k, (a, b) in enumerate(pairs)
            ],
        )

        slates = [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
        print(
            "\n  SlateWise: model bench_ctr_slatewise, 12 targets, 3 slates (head_rank = slate head's rank)"
        )
        srow = client.slatewise("bench_ctr_slatewise", ids[:12], slates, context=context).to_dicts()
        table(
            ["slate", "targets", "head_rank"],
            [
                [k, ",".join(ids[i] for i in s), srow[k].get("head_rank") if k < len(srow) else None]
                for k, s in enumerate(slates)
            ],
        )

        print("\n  RetrieveModelScore (legacy entity API): model bench_ctr, 5 catalogs")
        legacy = client.retrieve_model_score("bench_ctr", {"catalog_id": ids[:5], "user_id": user})
        if legacy.names:
            table(legacy.names, [[_short(v) for v in row.values()] for row in legacy.to_dicts()])

        print(f"\n  Latency: {LATENCY_REQUESTS} PointWise requests of {TARGETS} targets, one at a time")
        lat = []
        for n in progress(range(LATENCY_REQUESTS + 20), "latency", unit="req"):
            user, ids = work.draw(TARGETS)
            t0 = time.perf_counter()
            client.pointwise("bench_ctr", ids, context={"user_id": user})
            if n >= 20:
                lat.append((time.perf_counter() - t0) * 1000)
        lat.sort()
        pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731
        table(
            ["requests", "p50 ms", "p90 ms", "p99 ms", "max ms", "req/s (serial)"],
            [[len(lat), pick(0.5), pick(0.9), pick(0.99), lat[-1], 1000 * len(lat) / sum(lat)]],
        )


def _short(value: str) -> str:
    try:
        return f"{float(value):.4f}" if "." in value else value
    except ValueError:
        return value if len(value) < 24 else value[:21] + "..."


def show_logs(log_dir: Path) -> None:
    files = sorted(p for p in log_dir.rglob("*") if p.is_file())
    print(f"  inference logs were written under {log_dir}")
    for f in files[:5]:
        print(f"    {f.relative_to(log_dir)}  ({f.stat().st_size:,} bytes)")
    if not files:
        print("    (no log files yet)")
        return
    print(f"\n  decoded with `inferflow logs read {files[0].name}` (first lines):")
    proc = subprocess.run(
        [sys.executable, "-m", "inferflow_core.cli", "logs", "read", str(files[0])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = (proc.stdout or proc.stderr).splitlines()
    print(f"    {len(lines)} records (one per logged target); the first one:")
    try:
        record = json.loads(lines[0])
    except (IndexError, ValueError):
        for line in lines[:5]:
            print("    " + line[:157])
        return
    features = record.pop("features", {}) or {}
    for key, value in record.items():
        print(f"      {key:<20} {value}")
    names = list(features)
    shown = names[:4] + [n for n in ("pctr", "final_score") if n in features]
    print(f"      features ({len(names)} columns):")
    for name in shown:
        print(f"        {name:<24} {str(features[name])[:60]}")
    if len(names) > len(shown):
        print(f"        ... {len(names) - len(shown)} more")


def grpcurl_hint(port: int, http_port: int) -> None:
    print(
        '\n  The server is up. Call it (README "Call it"):\n'
        f"    inferflow predict bench_ctr --server 127.0.0.1:{port} --target 954 --target 614 "
        "--context user_id=42\n"
        f"    python -c 'from inferflow_core.client import InferflowClient; "
        f'print(InferflowClient("127.0.0.1:{port}").pointwise("bench_ctr", ["954", "614"], '
        f'context={{"user_id": "42"}}).to_dicts())\'\n'
        f"    grpcurl -plaintext 127.0.0.1:{port} list\n"
        f'    grpcurl -plaintext -d \'{{"model_config_id": "bench_ctr", '
        '"context_features": [{"name": "user_id", "value": "NDI="}], '
        f'"targets": [{{"id": "954"}}, {{"id": "614"}}]}}\' 127.0.0.1:{port} Predict/InferPointWise\n'
        f'    curl -s -H \'Content-Type: application/json\' -d \'{{"targets": ["954", "614"], '
        f'"context": {{"user_id": "42"}}}}\' http://127.0.0.1:{http_port}/v1/models/bench_ctr/pointwise\n'
        '  (bytes fields are base64 in grpcurl\'s JSON: "NDI=" is the text "42".) Ctrl-C stops it.',
        flush=True,
    )


def main(args: argparse.Namespace, variant: Callable[[Path, Path, dict[str, str]], str] | None = None) -> int:
    """The demo. ``variant(config_dir, data_dir, env)`` may rewrite the written config directory and the
    server's environment before the server starts (e.g. examples/feast: features from Feast) and returns
    a line saying what it changed."""
    total = 6
    t_start = time.perf_counter()
    step(1, total, "example data (generated once, deterministic)")
    from .example import generate as gen
    from .example import harness as h
    from .testing.ports import pick_free_port

    data = gen.ensure_data(demo=True)
    print(f"  using {data}")
    sizes = gen.DEMO

    tmp = Path(tempfile.mkdtemp(prefix="inferflow-demo-"))
    log_dir = tmp / "inference-logs"
    step(2, total, "config directory")
    config = h.write_config(tmp / "config", data, logging_perc=100, cache=True)
    print(f"  {config} (models: {', '.join(h.MODELS)})")
    env = h.embedded_env(data, log_dir)
    if variant is not None:
        print(f"  {variant(config, data, env)}")

    port = args.port or pick_free_port()
    http_port = port + 1 if args.port else pick_free_port()  # as `serve`: the HTTP port next to gRPC's
    step(3, total, f"starting `inferflow serve` on 127.0.0.1:{port} (HTTP side port {http_port})")
    server = h.ServerProcess(
        "inferflow serve", h.inferflow_serve(config, port, http_port), env, tmp / "server.log"
    )
    server.start()
    try:
        took = server.wait_http(f"http://127.0.0.1:{http_port}/health/ready", timeout=90)
        print(f"  ready after {took:.1f}s (server output: {tmp / 'server.log'})")
        step(4, total, "requests (PointWise, PairWise, SlateWise, RetrieveModelScore)")
        run_requests(h, port, sizes["users"], sizes["catalogs"])
        if args.keep_running:
            grpcurl_hint(port, http_port)
            try:
                while server.proc is not None and server.proc.poll() is None:
                    time.sleep(0.5)
            except KeyboardInterrupt:
                print()
    finally:
        step(5, total, "stopping the server")
        code = server.stop()
        print(f"  stopped (exit code {code})")
    step(6, total, "inference logs")
    show_logs(log_dir)
    print(f"\ndemo finished in {time.perf_counter() - t_start:.1f}s")
    return 0 if code in (0, None) else 1
