"""S1 with a shadow model (issue 17): the primary's latency with a shadow at 100% vs without.

    python benchmarks/s1/shadow.py [--quick] [--rounds 2] [--out results/s1-shadow.json]

Embedded mode, 1 worker, cache off, logging off. The shadow is a second ONNX MLP of the same shape with
other weights (``make_mlp.py --seed 8``) in its own ``onnx://`` repository. Each round measures the
server without the shadow, then with it (order alternating per round), each with ``loadgen.py`` in its
own process (latency at concurrency 1, then throughput at concurrency 16). The shadow counters
(calls, drops) come from the server's /metrics. Reported: p50 / p99 per setting and the p50 ratio
shadow-on / shadow-off (target: <= 1.10).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from pathlib import Path
from statistics import median
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run as s1  # noqa: E402

from inferflow_core.testing import example, pick_free_port  # noqa: E402

SHADOW_LABEL = "seed8"


def second_model(tmp: Path) -> Path:
    mlp = s1._load(s1.ROOT / "examples" / "models" / "make_mlp.py", "make_mlp")
    import onnx

    repo = tmp / "models-shadow"
    out = repo / mlp.MODEL_NAME / "1" / "model.onnx"
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(mlp.build(8), str(out))
    return repo


def write_config(bench: Any, name: str, shadow_repo: Path | None) -> Path:
    config = example.write_config(
        bench.tmp / f"config-{name}", bench.data, cache=False, logging_perc=0, models=("bench_ctr",)
    )
    if shadow_repo is not None:
        path = next(config.rglob("bench_ctr.json"))
        model = json.loads(path.read_text())
        for comp in model["component_config"]["predator_components"]:
            comp["shadow_end_points"] = [
                {"endpoint": f"onnx://{shadow_repo}", "percentage": 100, "label": SHADOW_LABEL}
            ]
        path.write_text(json.dumps(model, indent=2))
    return config


def shadow_counters(http_port: int) -> dict[str, float]:
    """calls per outcome, drops, and the mean of the per-request divergence histograms."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    sums: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("inferflow_predator_shadow_"):
            continue
        name, _, value = line.rpartition(" ")
        metric = name.split("{")[0].removeprefix("inferflow_predator_shadow_")
        if metric == "calls_total":
            metric = "calls_" + name.split('outcome="')[1].split('"')[0]
        if metric.endswith(("_bucket", "_created")) or metric.startswith("latency"):
            continue
        sums[metric] = sums.get(metric, 0.0) + float(value)
    out = {k: v for k, v in sums.items() if k.startswith(("calls_", "dropped"))}
    for hist in ("abs_diff_mean", "rank_gap"):
        if sums.get(f"{hist}_count"):
            out[f"{hist}_mean"] = round(sums[f"{hist}_sum"] / sums[f"{hist}_count"], 4)
    return out


def measure(bench: Any, name: str, config: Path) -> dict:
    port, http_port = pick_free_port(), pick_free_port()
    srv = example.ServerProcess(
        name,
        example.inferflow_serve(config, port, http_port, 1),
        example.embedded_env(bench.data),
        bench.tmp / f"{name}.log",
    )
    srv.start()
    try:
        srv.wait_http(f"http://127.0.0.1:{http_port}/health/ready", 90)
        bench._settle(1)
        res = bench.loadgen(port, name)
        time.sleep(0.5)  # the last shadow calls finish
        res["shadow"] = shadow_counters(http_port)
        res["rss_mb"] = [example.rss_mb(p) for p in srv.worker_pids()]
    finally:
        srv.stop()
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="300 requests, 3 s of throughput per run")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", default=str(HERE / "results" / "s1-shadow.json"))
    args = p.parse_args(argv)
    bench = s1.Bench(argparse.Namespace(quick=args.quick))
    shadow_repo = second_model(bench.tmp)
    configs = {"off": write_config(bench, "off", None), "on": write_config(bench, "on", shadow_repo)}
    runs: dict[str, list[dict]] = {"off": [], "on": []}
    for r in range(args.rounds):
        for setting in ("off", "on") if r % 2 == 0 else ("on", "off"):
            print(f"  round {r + 1}: shadow {setting} ...", flush=True)
            runs[setting].append(measure(bench, f"shadow-{setting}-r{r}", configs[setting]))
    summary = {}
    for setting, results in runs.items():
        summary[setting] = {
            "p50_ms": median(x["latency"]["p50_ms"] for x in results),
            "p99_ms": median(x["latency"]["p99_ms"] for x in results),
            "rps_c16": median(x["throughput"]["rps"] for x in results),
            "shadow": results[-1]["shadow"],
        }
    summary["p50_ratio_on_off"] = round(summary["on"]["p50_ms"] / summary["off"]["p50_ms"], 3)
    out = {"scenario": "S1 shadow", "quick": args.quick, "rounds": runs, "summary": summary}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"{'shadow':8} {'p50 ms':>8} {'p99 ms':>8} {'req/s@c16':>10}")
    for setting in ("off", "on"):
        s = summary[setting]
        print(f"{setting:8} {s['p50_ms']:8.3f} {s['p99_ms']:8.3f} {s['rps_c16']:10.0f}")
    print(f"p50 ratio on/off: {summary['p50_ratio_on_off']} (target <= 1.10)")
    print(f"shadow counters (last 'on' run): {summary['on']['shadow']}")
    return 0 if summary["p50_ratio_on_off"] <= 1.10 else 1


if __name__ == "__main__":
    raise SystemExit(main())
