"""Inference-logging cost on S1-like matrices (200 rows: 32 user FP32 + 64 catalog FP32 + an FP32Vector(3)
+ pctr + final_score + catalog_id): ``observe()`` cost on the request path, and encode throughput per
format on the worker (schema + table + format + envelope), measured in one run.

    /work/venv/bin/python plugins/inferflow_logging/benchmarks/bench_logging.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from iflog_support import Served
from inferflow_logging import InferenceLogger, LoggingSettings
from inferflow_logging.formats import FORMATS
from inferflow_logging.records import encode_request
from inferflow_logging.schema import derive_schema

from inferflow_core.api import Metrics


def s1_model() -> dict:
    def outs(prefix: str, n: int, dtype: str = "FP32") -> list[dict]:
        return [{"name": f"{prefix}{i}", "data_type": dtype} for i in range(n)]

    return {
        "dag_execution_config": {
            "component_dependency": {
                "user": ["feature_initializer"],
                "catalog": ["feature_initializer"],
                "ranker": ["user", "catalog"],
                "final": ["ranker"],
            }
        },
        "component_config": {
            "feature_components": [
                {"component": "user", "missing_every": 0, "outputs": outs("user:u:f", 32)},
                {
                    "component": "catalog",
                    "missing_every": 50,
                    "outputs": [
                        *outs("catalog:a:f", 64),
                        {"name": "catalog:b:emb", "data_type": "FP32Vector"},
                    ],
                },
            ],
            "predator_components": [{"component": "ranker", "missing_every": 0, "outputs": outs("pctr", 1)}],
            "numerix_components": [
                {"component": "final", "missing_every": 0, "outputs": outs("final_score", 1)}
            ],
        },
        "response_config": {"features": ["catalog_id", "pctr0", "final_score0"], "logging_perc": 100},
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    served = Served(s1_model())
    reqs = {fmt: await served.request(200, fmt=fmt) for fmt in FORMATS}
    for req in reqs.values():
        ids = [f"c{i}" for i in range(200)]
        req.ctx.matrix.set_text("catalog_id", ids)
    schema = derive_schema(served.model)
    results: dict[str, dict] = {"schema_columns": len(schema.entries)}  # type: ignore[dict-item]

    # observe(): the only thing on the request path (decide + put_nowait); worker not running
    logger = InferenceLogger(LoggingSettings(sink="none", queue_size=10**6), metrics=Metrics())
    logger._thread = object()  # type: ignore[assignment]
    samples = []
    for _ in range(20000):
        t0 = time.perf_counter()
        logger.observe(reqs["proto"])
        samples.append(time.perf_counter() - t0)
    samples.sort()
    results["observe_us"] = {
        "p50": round(samples[len(samples) // 2] * 1e6, 2),
        "p99": round(samples[int(len(samples) * 0.99)] * 1e6, 2),
    }

    for fmt, req in reqs.items():
        metrics = Metrics()
        encode_request(req, schema, FORMATS[fmt], metrics)  # warm-up
        n, t0, times, size = 0, time.perf_counter(), [], 0
        while time.perf_counter() - t0 < args.seconds:
            t1 = time.perf_counter()
            out = encode_request(req, schema, FORMATS[fmt], metrics)
            times.append(time.perf_counter() - t1)
            size = sum(len(m.value) for m in out.messages)
            n += 1
        elapsed = time.perf_counter() - t0
        results[fmt] = {
            "requests_per_s": round(n / elapsed, 1),
            "rows_per_s": round(200 * n / elapsed),
            "encode_ms_p50": round(statistics.median(times) * 1e3, 3),
            "encode_ms_min": round(min(times) * 1e3, 3),  # least disturbed by a shared machine
            "message_bytes": size,
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
