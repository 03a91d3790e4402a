"""RetrieveModelScore's ``model_schema_features_perc``: sampled users get the model's input columns first.

The core knows no model plugin: a component marks the columns it feeds to a model
(``ColumnRead.model_input``) and the compiled model lists them in config order, de-duplicated.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from inferflow_core._proto import inferflow_pb2, inferflow_pb2_grpc
from inferflow_core.api import (
    BuildContext,
    ColumnRead,
    ColumnSpec,
    Component,
    DataType,
    RegisterComponent,
    RunContext,
    hookimpl,
)
from inferflow_core.components import builtin_plugin
from inferflow_core.plugins import PluginHost
from inferflow_core.runtime import Runtime
from inferflow_core.testing.server import running_server

PREFIX = "inferflow/services/inferflow/model-config/config-map/"


class ScorerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    component: str
    features: list[str]
    lookup: list[str] = []  # read, but not fed to the model


class Scorer(Component):
    def __init__(self, cfg: ScorerConfig, model_id: str) -> None:
        super().__init__(cfg.component, model_id)
        self.cfg = cfg

    def outputs(self) -> list[ColumnSpec]:
        return [ColumnSpec(f"{self.name}_score", DataType.FP32)]

    def reads(self) -> list[ColumnRead]:
        model = [ColumnRead(f, f"features[{i}]", model_input=True) for i, f in enumerate(self.cfg.features)]
        return model + [ColumnRead(f, f"lookup[{i}]") for i, f in enumerate(self.cfg.lookup)]

    async def run(self, ctx: RunContext) -> None:
        values, valid = ctx.matrix.read(self.cfg.features[0], DataType.FP32)
        ctx.matrix.set_column(f"{self.name}_score", values * 2, valid)


class ScorerType:
    config_key = "scorer_components"
    config_model = ScorerConfig

    def build(self, config: ScorerConfig, ctx: BuildContext) -> Component:
        return Scorer(config, ctx.model_id)


class ScorerPlugin:
    @hookimpl
    def register_components(self, register: RegisterComponent) -> None:
        register(ScorerType())


def _model(perc: int) -> str:
    return json.dumps(
        {
            "dag_execution_config": {"component_dependency": {"a": ["feature_initializer"], "b": ["a"]}},
            "component_config": {
                "scorer_components": [
                    {"component": "a", "features": ["price", "age"], "lookup": ["brand"]},
                    {"component": "b", "features": ["a_score", "age"]},
                ]
            },
            "response_config": {
                "features": ["catalog_id", "b_score", "age"],
                "model_schema_features_perc": perc,
            },
            "request_features": ["price", "age", "brand"],
        }
    )


def _runtime() -> Runtime:
    host = PluginHost()
    host.register(builtin_plugin, name="core")
    host.register(ScorerPlugin(), name="scorer")
    return Runtime(host=host)


def test_the_compiled_model_lists_model_inputs_in_config_order_deduplicated() -> None:
    compiled = _runtime().compiler.compile("m", _model(100), {})
    assert compiled.model_inputs == ("price", "age", "a_score")  # b: a_score, then age again


@pytest.mark.integration
@pytest.mark.parametrize(
    ("perc", "header"),
    [
        (100, ["price", "age", "a_score", "catalog_id", "b_score"]),
        (0, ["catalog_id", "b_score", "age"]),
    ],
)
async def test_sampled_users_get_the_model_inputs_first(perc: int, header: list[str]) -> None:
    async with running_server(_runtime(), {PREFIX + "m": _model(perc)}) as srv:
        stub = inferflow_pb2_grpc.InferflowStub(srv.channel)
        ent = inferflow_pb2.InferflowRequestProto.Entity
        req = inferflow_pb2.InferflowRequestProto(
            model_config_id="m",
            entities=[
                ent(
                    entity="catalog_id",
                    ids=["7", "8"],
                    features=[
                        ent.Feature(name="price", ids_feature_value=["3", "4"]),
                        ent.Feature(name="age", ids_feature_value=["1", ""]),
                    ],
                )
            ],
        )
        resp: Any = await stub.RetrieveModelScore(req, metadata=(("user-id", "42"),), timeout=5)
    rows = [list(r.data) for r in resp.component_data]
    assert rows[0] == header
    by_name = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert [r["b_score"] for r in by_name] == ["12", "16"]  # b doubles a's score (a doubles price)
    if perc:
        assert [r["price"] for r in by_name] == ["3", "4"]
        assert [r["a_score"] for r in by_name] == ["6", "8"]
