"""The CTR example that ships with the core (scenario S1), as tooling for benchmarks and served tests.

The example is the three ``bench_ctr`` models on generated feature data, served with every backend in
process (the embedded feature store, ONNX Runtime, the numpy evaluator) or against remote backends::

    from inferflow_core.testing import example, pick_free_port

    data = example.ensure_data()                         # the full S1 store, generated once and cached
    config = example.write_config(tmp / "config", data, models=("bench_ctr",))
    port, http_port = pick_free_port(), pick_free_port()
    server = example.ServerProcess(
        "inferflow serve", example.inferflow_serve(config, port, http_port),
        example.embedded_env(data), tmp / "serve.log",
    ).start()
    server.wait_http(f"http://127.0.0.1:{http_port}/health/ready", 90)
    ...
    server.stop()

* data: :func:`ensure_data` (``demo=True`` for the small store), the sizes :data:`FULL` and :data:`DEMO`
  (``{"users": ..., "catalogs": ...}``);
* config: :data:`CONFIG_DIR` (the shipped tree), :data:`MODELS`, :func:`write_config` (a copy with the
  endpoints pointing at the generated data or a model server) and :func:`embedded_env`;
* processes: :func:`inferflow_serve` (the command line), :class:`ServerProcess` (any child server with
  bounded readiness waits and a log tail on failure), :func:`rss_mb`, :func:`cpu_seconds`;
* requests: :class:`Workload` (deterministic users and catalog ids drawn from the data) and
  :func:`pointwise_request`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..example import harness
from ..example.generate import DEMO, FULL, ensure_data
from ..example.harness import (
    CONFIG_DIR,
    MODELS,
    ServerProcess,
    Workload,
    cpu_seconds,
    embedded_env,
    inferflow_serve,
    rss_mb,
    write_config,
)
from .protos import predict_pb2

__all__ = [
    "CONFIG_DIR",
    "DEMO",
    "FULL",
    "MODELS",
    "ServerProcess",
    "Workload",
    "cpu_seconds",
    "embedded_env",
    "ensure_data",
    "inferflow_serve",
    "pointwise_request",
    "rss_mb",
    "write_config",
]


def pointwise_request(
    model: str, user: str, ids: Sequence[str], tracking_id: str = ""
) -> predict_pb2.PointWiseRequest:
    """The example's PointWise request: ``user_id`` as a STRING context feature, one target per id."""
    return harness.pointwise(predict_pb2, model, user, ids, tracking_id)
