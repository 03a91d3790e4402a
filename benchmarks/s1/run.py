"""Scenario S1 (docs/benchmark.md): orchestrates servers and the load generator, prints the table.

    python benchmarks/s1/run.py [--quick] [--modes embedded,remote] [--out results.json]

For each backend mode (embedded | remote), for 1 and 2 workers, for cache off and warm: start
``inferflow serve`` in its own process group, run ``loadgen.py`` (its own process) for latency at
concurrency 1 and throughput at concurrency 16, read peak RSS of every worker and the feature-cache
hit ratio from /metrics, stop the server. The "direct" baseline (``direct_server.py``: the same work
without DAG or matrix, behind the same gRPC method) runs in the same run; the overhead ratio is
Inferflow p50 / direct p50. A 1,000-target vs 200-target latency pair checks per-target scaling.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PY = sys.executable
BIN = Path(sys.executable).parent


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"s1_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


gen = _load(ROOT / "examples" / "ctr" / "generate.py")
h = _load(ROOT / "examples" / "ctr" / "harness.py")


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="inferflow-bench-"))
        self.data = gen.ensure_data(demo=False, progress=lambda m: print(m, flush=True))
        q = args.quick
        self.latency_n, self.warmup = (300, 50) if q else (2000, 200)
        self.tput_s = 4.0 if q else 20.0

    def loadgen(
        self, port: int, name: str, targets: int = 200, latency: int | None = None, throughput: bool = True
    ) -> dict:
        out = self.tmp / f"{name}.json"
        cmd = [
            PY,
            str(HERE / "loadgen.py"),
            "--target",
            f"127.0.0.1:{port}",
            "--out",
            str(out),
            "--targets",
            str(targets),
            "--latency",
            str(self.latency_n if latency is None else latency),
            "--warmup",
            str(self.warmup),
            "--throughput-s",
            str(self.tput_s if throughput else 0),
            "--users",
            str(gen.FULL["users"]),
            "--catalogs",
            str(gen.FULL["catalogs"]),
        ]
        proc = h.ServerProcess(
            f"loadgen {name}", cmd, dict(__import__("os").environ), self.tmp / f"{name}.log"
        )
        proc.start()
        assert proc.proc is not None
        code = proc.proc.wait(timeout=600)
        if code != 0:
            raise RuntimeError(f"loadgen {name} failed:\n{proc.log_tail()}")
        return json.loads(out.read_text())

    def direct(self, workers: int) -> dict:
        port = h.free_port()
        cmd = [
            PY,
            str(HERE / "direct_server.py"),
            "--data",
            str(self.data),
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
        srv = h.ServerProcess(
            "direct", cmd, dict(__import__("os").environ), self.tmp / f"direct-{workers}.log"
        )
        srv.start()
        try:
            srv.wait_port(port, 60)
            time.sleep(1.0 if workers > 1 else 0.2)
            res = self.loadgen(port, f"direct-w{workers}", latency=self.latency_n if workers == 1 else 0)
            res["rss_mb"] = [h.rss_mb(p) for p in srv.pids()]
        finally:
            srv.stop()
        return res

    def backends(self) -> tuple[dict[str, str], list]:
        """Remote mode: OnFS-protocol, KServe v2 and Numerix servers, each its own process."""
        env = dict(__import__("os").environ)
        ports = {k: h.free_port() for k in ("onfs", "kserve", "numerix")}
        procs = [
            h.ServerProcess(
                "onfs",
                [
                    str(BIN / "inferflow-onfs"),
                    "serve",
                    "--data",
                    str(self.data / "features"),
                    "--port",
                    str(ports["onfs"]),
                    "--host",
                    "127.0.0.1",
                ],
                env,
                self.tmp / "onfs.log",
            ),
            h.ServerProcess(
                "kserve",
                [
                    PY,
                    str(HERE / "kserve_onnx_server.py"),
                    "--repo",
                    str(self.data / "models"),
                    "--port",
                    str(ports["kserve"]),
                ],
                env,
                self.tmp / "kserve.log",
            ),
            h.ServerProcess(
                "numerix",
                [
                    str(BIN / "inferflow-numerix"),
                    "serve",
                    "--config-dir",
                    str(h.CONFIG_DIR),
                    "--port",
                    str(ports["numerix"]),
                    "--host",
                    "127.0.0.1",
                ],
                env,
                self.tmp / "numerix.log",
            ),
        ]
        for proc in procs:
            proc.start()
        for proc, port in zip(procs, ports.values(), strict=True):
            proc.wait_port(port, 60)
        remote_env = {
            "EXTERNAL_SERVICE_ONFS_FS_HOST": "127.0.0.1",
            "EXTERNAL_SERVICE_ONFS_FS_PORT": str(ports["onfs"]),
            "EXTERNAL_SERVICE_ONFS_FS_GRPC_PLAIN_TEXT": "true",
            "EXTERNAL_SERVICE_ONFS_FS_BATCH_SIZE": "200",
            "EXTERNAL_SERVICE_PREDATOR_GRPC_PLAIN_TEXT": "true",
            "NUMERIX_CLIENT_V1_HOST": "127.0.0.1",
            "NUMERIX_CLIENT_V1_PORT": str(ports["numerix"]),
            "NUMERIX_CLIENT_V1_PLAINTEXT": "true",
            "NUMERIX_CLIENT_V1_BATCHSIZE": "200",
            "predator_endpoint": f"127.0.0.1:{ports['kserve']}",
        }
        return remote_env, procs

    def inferflow(self, mode: str, workers: int, cache: bool, remote: dict[str, str] | None) -> dict:
        name = f"{mode}-w{workers}-{'warm' if cache else 'off'}"
        extra = dict(remote or {})
        endpoint = extra.pop("predator_endpoint", None)
        config = h.write_config(
            self.tmp / f"config-{name}",
            self.data,
            cache=cache,
            logging_perc=0,
            predator_endpoint=endpoint,
            models=("bench_ctr",),
        )
        env = h.embedded_env(self.data)
        env.update(extra)
        port, http_port = h.free_port(), h.free_port()
        srv = h.ServerProcess(
            name, h.inferflow_serve(config, port, http_port, workers), env, self.tmp / f"{name}.log"
        )
        srv.start()
        try:
            srv.wait_http(f"http://127.0.0.1:{http_port}/health/ready", 90)
            if workers > 1:
                time.sleep(1.5)  # let every worker finish loading
            res = self.loadgen(port, name)
            if mode == "embedded" and workers == 1 and not cache:
                res["latency_1000"] = self.loadgen(
                    port, name + "-1000t", targets=1000, latency=self.latency_n // 4, throughput=False
                )["latency"]
            res["rss_mb"] = [h.rss_mb(p) for p in srv.pids()]
            res["cache_hit_ratio"] = hit_ratio(http_port) if cache else None
        finally:
            srv.stop()
        res.update({"mode": mode, "workers": workers, "cache": "warm" if cache else "off"})
        return res


def hit_ratio(http_port: int) -> float | None:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5).read().decode()
    except OSError:
        return None
    hits = misses = 0.0
    for line in text.splitlines():
        if line.startswith("#") or "cache" not in line:
            continue
        m = re.match(r"^(\S+?)(\{.*\})?\s+([0-9.eE+-]+)$", line)
        if not m:
            continue
        name = m.group(1)
        if name.endswith("_created"):
            continue
        if "hit" in name:
            hits += float(m.group(3))
        elif "miss" in name:
            misses += float(m.group(3))
    return hits / (hits + misses) if hits + misses else None


def run(args: argparse.Namespace) -> dict:
    bench = Bench(args)
    results: dict = {
        "scenario": "S1",
        "quick": args.quick,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "modes": {},
    }
    print(f"S1 {'quick' if args.quick else 'full'} run; work dir {bench.tmp}", flush=True)
    print("  direct baseline ...", flush=True)
    direct = {"w1": bench.direct(1), "w2": bench.direct(2)}
    results["direct"] = direct
    for mode in args.modes.split(","):
        remote, procs = (None, [])
        if mode == "remote":
            print("  starting remote backends (OnFS, KServe v2 / ONNX Runtime, Numerix) ...", flush=True)
            remote, procs = bench.backends()
        runs = []
        try:
            for workers in (1, 2):
                for cache in (False, True):
                    print(
                        f"  {mode}: {workers} worker(s), cache {'warm' if cache else 'off'} ...", flush=True
                    )
                    runs.append(bench.inferflow(mode, workers, cache, remote))
        finally:
            for proc in procs:
                proc.stop()
        results["modes"][mode] = {"mode": mode, "direct": direct, "runs": runs}
    return results


def print_table(results: dict) -> None:
    d1 = results["direct"]["w1"]
    d_p50 = d1["latency"]["p50_ms"]
    hdr = (
        f"{'mode':<9}{'wk':>3} {'cache':<6}{'p50ms':>7}{'p99ms':>7}{'maxms':>7}{'ratio':>7}{'req/s':>8}"
        f"{'targets/s':>11}{'RSS MB':>14}{'hit':>6}"
    )
    print("\n" + hdr + "\n" + "-" * len(hdr))
    for wk in ("w1", "w2"):
        d = results["direct"][wk]
        lat = d.get("latency") or {}
        print(
            f"{'direct':<9}{wk[1]:>3} {'-':<6}{lat.get('p50_ms', float('nan')):>7.2f}"
            f"{lat.get('p99_ms', float('nan')):>7.2f}{lat.get('max_ms', float('nan')):>7.2f}"
            f"{1.0 if lat else float('nan'):>7.2f}"
            f"{d['throughput']['rps']:>8.0f}{d['throughput']['targets_per_s']:>11.0f}"
            f"{'/'.join(f'{r:.0f}' for r in d['rss_mb']):>14}{'-':>6}"
        )
    for mode in results["modes"].values():
        for r in mode["runs"]:
            lat, tp = r["latency"], r["throughput"]
            hit = r.get("cache_hit_ratio")
            print(
                f"{r['mode']:<9}{r['workers']:>3} {r['cache']:<6}{lat['p50_ms']:>7.2f}"
                f"{lat['p99_ms']:>7.2f}{lat['max_ms']:>7.2f}{lat['p50_ms'] / d_p50:>7.2f}"
                f"{tp['rps']:>8.0f}{tp['targets_per_s']:>11.0f}"
                f"{'/'.join(f'{x:.0f}' for x in r['rss_mb']):>14}"
                f"{(f'{hit:.2f}' if hit is not None else '-'):>6}"
            )
    print(
        "\nratio = Inferflow p50 / direct p50 (embedded direct = same work in process + one gRPC round trip)"
    )
    emb = {(r["workers"], r["cache"]): r for r in results["modes"].get("embedded", {}).get("runs", [])}
    if (1, "off") in emb and (2, "off") in emb:
        r1 = emb[(1, "off")]
        print(
            f"2 workers / 1 worker throughput (embedded, cache off): "
            f"{emb[(2, 'off')]['throughput']['rps'] / r1['throughput']['rps']:.2f}x"
        )
        if "latency_1000" in r1:
            print(
                f"1,000-target / 200-target p50 (embedded, 1 worker): "
                f"{r1['latency_1000']['p50_ms'] / r1['latency']['p50_ms']:.2f}x"
            )
    checks = [r["latency"]["check"] for m in results["modes"].values() for r in m["runs"]]
    bad = [c for c in checks if c["final_score_filled"] != c["expected"]]
    print(f"responses checked: {len(checks) - len(bad)}/{len(checks)} with every target scored")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short run (~1-2 minutes)")
    p.add_argument("--modes", default="embedded,remote")
    p.add_argument("--out", default=str(HERE / "results" / "s1-latest.json"))
    args = p.parse_args(argv)
    results = run(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print_table(results)
    print(f"\nJSON results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
