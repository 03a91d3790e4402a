"""Shared by the metrics, tracing, request-log and Kubernetes tests: a probe model with a failing
component, a runtime with given metrics, a request builder, a Prometheus scrape and its parser, a scorer
plugin for ``inferflow serve`` subprocesses, and a caller's W3C trace context."""

from __future__ import annotations

import re
import urllib.request

from inferflow_core._proto import predict_pb2
from inferflow_core.observability.metrics import Metrics
from inferflow_core.runtime import Runtime
from inferflow_core.testing import make_runtime
from tests.helpers import ProbePlugin, model_json

PREFIX = "inferflow/services/inferflow/model-config/config-map/"
MODEL = model_json(
    {"scorer": ["feature_initializer"], "broken": ["feature_initializer"]},
    [
        {"component": "scorer", "outputs": [{"name": "score"}]},
        {"component": "broken", "outputs": [{"name": "bad"}], "fail": True},
    ],
    ["catalog_id", "score"],
)


def _runtime(metrics: Metrics) -> Runtime:
    return make_runtime(metrics=metrics, probe=ProbePlugin())


def _request(n: int = 3, model: str = "m") -> predict_pb2.PointWiseRequest:
    return predict_pb2.PointWiseRequest(
        model_config_id=model, targets=[predict_pb2.Target(id=str(i)) for i in range(n)]
    )


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as r:
        return r.read().decode()


def _sample(text: str, name: str, **labels: str) -> float:
    """Sum of samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(3) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(m.group(4))
    return total


NOOP_PLUGIN = """
import numpy as np
from pydantic import BaseModel
from inferflow_core.api import ColumnSpec, Component, DataType, hookimpl

class Cfg(BaseModel):
    component: str

class Scorer(Component):
    def outputs(self):
        return [ColumnSpec("score", DataType.FP32)]
    async def run(self, ctx):
        ctx.matrix.set_column("score", np.ones(ctx.matrix.rows, dtype=np.float32))

class ScorerType:
    config_key = "scorer_components"
    config_model = Cfg
    def build(self, cfg, ctx):
        return Scorer(cfg.component, ctx.model_id)

@hookimpl
def register_components(register):
    register(ScorerType())
"""


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
