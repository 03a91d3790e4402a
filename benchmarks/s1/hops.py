"""Time each remote-mode hop of S1 on its own, from one small client process.

    python benchmarks/s1/hops.py [--n 300]

Starts the three remote backends (OnFS-protocol, KServe v2 / ONNX Runtime, Numerix) exactly as the bench
does, then measures with a sync gRPC client, one call in flight: OnFS ``user`` (1 key), OnFS ``catalog``
(200 keys), KServe ``ModelInfer`` [200, 96] + [200, 32], Numerix ``Compute`` (200 rows x 2 variables),
and an empty-ish round trip (ServerLive) as the loopback floor. Prints p50/p99 per hop.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from remote_direct import RemoteWire, start_backends  # noqa: E402


def _time(fn, n: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    for _ in range(max(20, n // 10)):
        fn()
    ms = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1000)
    arr = np.array(ms)
    return {"p50": float(np.percentile(arr, 50)), "p99": float(np.percentile(arr, 99))}


def main() -> int:
    import grpc
    from inferflow_predator._proto import grpc_predict_v2_pb2 as kpb

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=300)
    args = p.parse_args()
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="inferflow-hops-"))
    ports, procs, data = start_backends(tmp)
    try:
        wire = RemoteWire(data)
        rng = np.random.default_rng(3)
        ids = [str(int(i)) for i in rng.choice(100_000, 200, replace=False)]
        chans = {k: grpc.insecure_channel(f"127.0.0.1:{v}") for k, v in ports.items()}
        onfs = chans["onfs"].unary_unary("/retrieve.FeatureService/RetrieveFeatures")
        kinfer = chans["kserve"].unary_unary("/inference.GRPCInferenceService/ModelInfer")
        klive = chans["kserve"].unary_unary(
            "/inference.GRPCInferenceService/ServerLive",
            request_serializer=kpb.ServerLiveRequest.SerializeToString,
            response_deserializer=kpb.ServerLiveResponse.FromString,
        )
        nx = chans["numerix"].unary_unary("/numerix.Numerix/Compute")
        user_q = wire.user_query(["42"])
        cat_q = wire.catalog_query(ids)
        cat_raw = onfs(cat_q)
        feats = wire.decode_catalog(cat_raw, ids)
        user = wire.decode_user(onfs(user_q))
        model_q = wire.model_request(user, feats)
        prob = wire.decode_model(kinfer(model_q))
        nx_q = wire.numerix_request(ids, prob, feats.price)
        hops = {
            "loopback ServerLive": lambda: klive(kpb.ServerLiveRequest()),
            "onfs user (1 key)": lambda: onfs(user_q),
            "onfs catalog (200 keys)": lambda: onfs(cat_q),
            "kserve ModelInfer [200]": lambda: kinfer(model_q),
            "numerix Compute (200)": lambda: nx(nx_q),
            "client: decode catalog": lambda: wire.decode_catalog(cat_raw, ids),
            "client: build model req": lambda: wire.model_request(user, feats),
            "client: build numerix req": lambda: wire.numerix_request(ids, prob, feats.price),
        }
        print(f"{'hop':<28}{'p50 ms':>8}{'p99 ms':>8}")
        for name, fn in hops.items():
            got = _time(fn, args.n)
            print(f"{name:<28}{got['p50']:>8.2f}{got['p99']:>8.2f}", flush=True)
    finally:
        for proc in procs:
            proc.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
