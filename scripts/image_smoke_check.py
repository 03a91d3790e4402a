"""Run inside the built image by scripts/image-smoke.sh: serve the demo model and check one answer.

Uses only what the image ships (the core, the plugins, the example package): generates the demo's
feature data, starts ``inferflow serve`` on loopback ports, waits for ``/health/ready``, sends one
PointWise request of 50 targets to ``bench_ctr`` and checks every target's ``pctr`` against ONNX
Runtime run directly on the same features read from the store's Parquet files. Exits non-zero with
the reason on any difference.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import grpc
import numpy as np
import onnxruntime as ort
import pyarrow.parquet as pq

from inferflow_core._proto import predict_pb2 as pb
from inferflow_core._proto import predict_pb2_grpc as pbg
from inferflow_core.example import generate, harness
from inferflow_core.testing import pick_free_port

TARGETS = 50


def _rows(path: Path, key: str, ids: list[str], columns: list[str]) -> np.ndarray:
    table = pq.read_table(path)
    index = {k: i for i, k in enumerate(table.column(key).to_pylist())}
    take = [index[i] for i in ids]
    return np.stack([table.column(c).to_numpy()[take] for c in columns], axis=1).astype(np.float32)


def expected_pctr(data: Path, user: str, ids: list[str]) -> np.ndarray:
    features = data / "features"
    u = _rows(features / "user.parquet", "user_id", [user], [f"A:{n}" for n in generate.user_features()])
    c = _rows(
        features / "catalog.parquet", "catalog_id", ids, [f"A:{n}" for n in generate.catalog_features()]
    )
    catalogs = pq.read_table(features / "catalog.parquet")
    index = {k: i for i, k in enumerate(catalogs.column("catalog_id").to_pylist())}
    emb = np.array(catalogs.column("B:emb").take([index[i] for i in ids]).to_pylist(), dtype=np.float32)
    dense = np.concatenate([np.repeat(u, len(ids), axis=0), c], axis=1)
    session = ort.InferenceSession(str(generate.SHIPPED_MODEL), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["prob"], {"dense": dense, "emb": emb})[0])[:, 0]


def no_build_tools() -> list[str]:
    """The runtime stage carries no pip, setuptools or wheel."""
    found = [m for m in ("pip", "setuptools", "wheel") if importlib.util.find_spec(m) is not None]
    return [f"build tools in the runtime image: {', '.join(found)}"] if found else []


def main() -> int:
    t0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="inferflow-smoke-"))
    data = generate.ensure_data(tmp / "data", demo=True, progress=None)
    config = harness.write_config(tmp / "config", data, models=["bench_ctr"])
    port, http_port = pick_free_port(), pick_free_port()
    server = harness.ServerProcess(
        "inferflow serve",
        harness.inferflow_serve(config, port, http_port),
        harness.embedded_env(data),
        tmp / "server.log",
    ).start()
    try:
        took = server.wait_http(f"http://127.0.0.1:{http_port}/health/ready", timeout=120)
        print(f"image smoke: ready after {took:.1f}s", flush=True)
        user, ids = harness.Workload(**generate.DEMO).draw(TARGETS)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = pbg.PredictStub(channel).InferPointWise(
                harness.pointwise(pb, "bench_ctr", user, ids), timeout=30
            )
        problems = no_build_tools()
        if reply.request_error:
            problems.append(f"request_error: {reply.request_error}")
        names = [s.name for s in reply.target_output_schema]
        if "pctr" not in names or len(reply.target_scores) != TARGETS:
            problems.append(f"schema {names}, {len(reply.target_scores)} scores for {TARGETS} targets")
        else:
            col = names.index("pctr")
            got = np.array(
                [harness.decode_fp32(s.output_values[col]) for s in reply.target_scores], np.float64
            )
            errors = [s.error for s in reply.target_scores if s.error]
            if errors:
                problems.append(f"{len(errors)} targets with an error, e.g. {errors[0]}")
            want = expected_pctr(data, user, ids)
            if not np.allclose(got, want, rtol=1e-5, atol=1e-6):
                problems.append(f"pctr differs from ONNX Runtime run directly: {got[:3]} vs {want[:3]}")
    finally:
        code = server.stop()
    if problems:
        print("image smoke FAILED:\n  " + "\n  ".join(problems) + "\n" + server.log_tail(), file=sys.stderr)
        return 1
    print(
        f"image smoke: {TARGETS} pctr equal to the model run directly; server exit {code}; "
        f"{time.monotonic() - t0:.1f}s"
    )
    return 0 if code in (0, None) else 1


if __name__ == "__main__":
    raise SystemExit(main())
