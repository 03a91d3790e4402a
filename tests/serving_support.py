"""Shared by the serving tests: models whose DAGs use the probe component of tests/helpers.py, a
runtime with it (and an optional request observer), request builders, and waits on a served score."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np

from inferflow_core import testing
from inferflow_core._proto import predict_pb2
from inferflow_core.api import hookimpl
from inferflow_core.config.settings import ServiceSettings
from inferflow_core.runtime import Runtime
from inferflow_core.testing.process import entry_point_plugin
from tests.helpers import ProbePlugin

FP32 = predict_pb2.DataTypeFP32
STRING = predict_pb2.DataTypeString
PREFIX = "inferflow/services/inferflow/model-config/config-map/"


def _model(dag: dict, probes: list[dict], features: list[str]) -> str:
    return json.dumps(
        {
            "dag_execution_config": {"component_dependency": dag},
            "component_config": {"probe_components": probes},
            "response_config": {"features": features, "model_schema_features_perc": 0},
        }
    )


POINT = _model(
    {"scorer": ["feature_initializer"], "doubler": ["feature_initializer"]},
    [
        {"component": "scorer", "outputs": [{"name": "score"}], "value": 0.5},
        {"component": "doubler", "outputs": [{"name": "price_x2"}], "copy_from": "price", "value": 2},
    ],
    ["catalog_id", "score", "price_x2", "price"],
)
SLATE = _model(
    {"scorer": ["feature_initializer"], "slater": ["scorer"]},
    [
        {"component": "scorer", "outputs": [{"name": "score"}], "value": 0.5},
        {"component": "slater", "slate_outputs": [{"name": "slate_score"}], "value": 1.0},
    ],
    ["catalog_id", "score", "slate_score"],
)
BROKEN = _model(
    {"ok": ["feature_initializer"], "broken": ["feature_initializer"]},
    [
        {"component": "ok", "outputs": [{"name": "score"}]},
        {"component": "broken", "outputs": [{"name": "bad"}], "fail": True},
    ],
    ["catalog_id", "score", "bad"],
)
SLOW = _model(
    {"sleeper": ["feature_initializer"]},
    [{"component": "sleeper", "outputs": [{"name": "score"}], "sleep_ms": 3000}],
    ["catalog_id", "score"],
)
REJECTED = _model({"ghost": ["feature_initializer"]}, [], ["catalog_id"])

TREE = {
    PREFIX + "point": POINT,
    PREFIX + "slate": SLATE,
    PREFIX + "broken": BROKEN,
    PREFIX + "slow": SLOW,
    PREFIX + "rejected": REJECTED,
}


class Recorder:
    """A request observer registered through the register_request_observers hook."""

    def __init__(self) -> None:
        self.seen: list[Any] = []
        self.started = self.stopped = False

    def observe(self, served: Any) -> None:
        self.seen.append(served)

    async def start(self, host: Any) -> None:
        self.started = True
        self.host = host

    async def stop(self, grace_s: float) -> None:
        self.stopped = True


class ObserverPlugin:
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    @hookimpl
    def register_request_observers(self, register: Any) -> None:
        register(self.recorder)


def make_runtime(recorder: Recorder | None = None, **settings: Any) -> Runtime:
    plugins: dict[str, object] = {"probe": ProbePlugin()}
    if recorder is not None:
        plugins["recorder"] = ObserverPlugin(recorder)
    return testing.make_runtime(settings=ServiceSettings(**settings), **plugins)


def point_request(model: str = "point", prices: tuple[bytes, ...] = (b"2.5", b"", b"abc")) -> Any:
    return predict_pb2.PointWiseRequest(
        model_config_id=model,
        tracking_id="trk",
        context_features=[predict_pb2.ContextFeature(name="user_id", value=b"42", data_type=STRING)],
        target_input_schema=[predict_pb2.FeatureSchema(name="price", data_type=FP32)],
        targets=[predict_pb2.Target(id=str(100 + i), feature_values=[p]) for i, p in enumerate(prices)],
    )


REPO = Path(__file__).resolve().parents[1]


def _plugin_dir(tmp: Path) -> Path:
    plugdir = tmp / "plugins"
    plugdir.mkdir()
    (plugdir / "probe_ep.py").write_text("from tests.helpers import ProbePlugin\n\nplugin = ProbePlugin()\n")
    entry_point_plugin(plugdir, "probe-ep", "probe_ep:plugin")
    return plugdir


P = predict_pb2
FP64V = P.DataTypeFP64Vector


def amplification_request(rows: int = 10_000, dim: int = 50_000) -> P.PointWiseRequest:
    """One FP64Vector row of ``dim`` elements, every other row empty (193 KiB on the wire)."""
    big = b":".join([b"1"] * dim)
    return P.PointWiseRequest(
        model_config_id="point",
        target_input_schema=[P.FeatureSchema(name="emb", data_type=FP64V)],
        targets=[P.Target(id=str(i), feature_values=[big if i == 0 else b""]) for i in range(rows)],
    )


def _with_value(value: float) -> str:
    return POINT.replace('"value": 0.5', f'"value": {value}')


async def _score(stub: Any, model: str = "point") -> float:
    resp = await stub.InferPointWise(point_request(model, prices=(b"1",)), timeout=5)
    return float(np.frombuffer(resp.target_scores[0].output_values[1], dtype="<f4")[0])


async def _wait_for(stub: Any, value: float, within: float) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        got = await _score(stub)
        if got == value:
            return loop.time() - start
        if loop.time() - start > within:
            raise AssertionError(f"still serving {got}, wanted {value} after {within}s")
        await asyncio.sleep(0.02)
