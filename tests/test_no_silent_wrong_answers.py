"""Issue 12: every mistake in a config, a deployment or a request is caught early and said clearly.

Core cases with the probe component (tests/helpers.py); the plugins' own cases (predator inputs and
ONNX signatures, numerix expressions, the feature store) are in each plugin's tests.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import BaseModel

from inferflow_core import testing
from inferflow_core._proto import predict_pb2_grpc
from inferflow_core.api import BuildContext, Component, InitialData, RequestInfo, RunContext, hookimpl
from inferflow_core.components.base import ComponentFailure
from inferflow_core.engine.executor import log_failure
from inferflow_core.errors import ConfigError
from inferflow_core.runtime import Runtime
from inferflow_core.testing.server import running_server
from tests.helpers import ProbePlugin, probe_runtime
from tests.serving_support import PREFIX, make_runtime, point_request


def _model(dag: dict, probes: list[dict], features: list[str], **extra: Any) -> str:
    return json.dumps(
        {
            "dag_execution_config": {"component_dependency": dag},
            "component_config": {"probe_components": probes, **extra.pop("component_config", {})},
            "response_config": {"features": features},
            **extra,
        }
    )


# a model that reads "prise" (a typo of the request feature "price")
TYPO = _model(
    {"doubler": ["feature_initializer"]},
    [{"component": "doubler", "outputs": [{"name": "price_x2"}], "copy_from": "prise", "value": 2}],
    ["catalog_id", "price_x2"],
    request_features=["price"],
)


# ------------------------------------------------------------------------------------------ load time
def test_unproduced_column_is_a_warning_with_did_you_mean() -> None:
    compiled = probe_runtime().compiler.compile("m", TYPO, {})
    assert any(
        p == "component_config.probe_components[0]" and "'prise'" in m and "did you mean 'price'" in m
        for p, m in compiled.warnings
    ), compiled.warnings


def test_strict_validation_makes_the_warning_an_error() -> None:
    rt = probe_runtime()
    rt.compiler.strict = True
    with pytest.raises(ConfigError) as info:
        rt.compiler.compile("m", TYPO, {})
    assert any("'prise'" in m and "did you mean 'price'" in m for _, m in info.value.problems)


def test_declared_request_features_and_the_id_column_need_no_producer() -> None:
    ok = TYPO.replace('"copy_from": "prise"', '"copy_from": "price"')
    assert probe_runtime().compiler.compile("m", ok, {}).warnings == ()


def test_reading_a_column_produced_by_a_non_upstream_component_is_an_error() -> None:
    raw = _model(
        {"a": ["feature_initializer"], "b": ["feature_initializer"]},
        [
            {"component": "a", "outputs": [{"name": "x"}]},
            {"component": "b", "outputs": [{"name": "y"}], "copy_from": "x"},
        ],
        ["id", "y"],
    )
    with pytest.raises(ConfigError) as info:
        probe_runtime().compiler.compile("m", raw, {})
    assert any(
        "'x' read by 'b' is produced by 'a'" in m and "not upstream" in m for _, m in info.value.problems
    )


def test_unknown_component_config_key_is_an_error_with_did_you_mean() -> None:
    raw = _model({"a": ["feature_initializer"]}, [{"component": "a"}], ["id"])
    data = json.loads(raw)
    data["component_config"]["cache_enabeld"] = True
    with pytest.raises(ConfigError) as info:
        probe_runtime().compiler.compile("m", json.dumps(data), {})
    assert any(
        p == "component_config.cache_enabeld" and "did you mean 'cache_enabled'" in m
        for p, m in info.value.problems
    )


def test_unproduced_response_feature_is_a_warning() -> None:
    raw = _model(
        {"a": ["feature_initializer"]}, [{"component": "a", "outputs": [{"name": "score"}]}], ["id", "scroe"]
    )
    warnings = probe_runtime().compiler.compile("m", raw, {}).warnings
    assert any(p == "response_config.features[1]" and "did you mean 'score'" in m for p, m in warnings)


def test_two_root_dag_says_what_is_wrong() -> None:
    raw = _model(
        {"a": ["feature_initializer"], "b": [], "c": ["b"]},
        [{"component": n} for n in "abc"],
        ["id"],
    )
    with pytest.raises(ConfigError) as info:
        probe_runtime().compiler.compile("m", raw, {})
    text = " | ".join(m for _, m in info.value.problems)
    assert "'b' has no prerequisites" in text
    assert "second root" in text
    assert "add 'feature_initializer' to its prerequisites" in text
    assert "'c' is not reachable from 'feature_initializer' (it depends only on a second root)" in text


# ----------------------------------------------------------------------- component types, config keys
class _Empty(BaseModel):
    pass


class _AnyKeyType:
    config_key = "scorers"  # does not end in _components
    config_model = _Empty

    def build(self, config: Any, ctx: BuildContext) -> Component:
        from tests.helpers import ProbeComponent, ProbeConfig

        return ProbeComponent(ProbeConfig(component="s", outputs=[{"name": "score"}]), ctx.model_id)  # type: ignore[list-item]


class _BadKeyType(_AnyKeyType):
    config_key = "cache_ttl"


class _KeyPlugin:
    def __init__(self, ctype: Any) -> None:
        self.ctype = ctype

    @hookimpl
    def register_components(self, register: Any) -> None:
        register(self.ctype)


def _runtime_with(ctype: Any) -> Runtime:
    return testing.make_runtime(keys=_KeyPlugin(ctype))


async def test_a_component_type_with_any_config_key_is_used() -> None:
    rt = _runtime_with(_AnyKeyType())
    raw = json.dumps(
        {
            "dag_execution_config": {"component_dependency": {"s": ["feature_initializer"]}},
            "component_config": {"scorers": [{}]},
            "response_config": {"features": ["id", "score"]},
        }
    )
    snap = rt.apply_tree({rt.settings.config_map_prefix + "m": raw})
    assert not snap.errors, snap.errors
    ctx = await rt.execute("m", InitialData(rows=2, texts={"id": ["a", "b"]}), RequestInfo(api="pointwise"))
    assert ctx.matrix.read("score")[0].tolist() == [1.0, 1.0]


def test_a_config_key_that_cannot_name_a_section_fails_registration_clearly() -> None:
    rt = _runtime_with(_BadKeyType())
    assert "cache_ttl" not in rt.registry.components
    assert any("'cache_ttl' is a component_config switch" in f.error for f in rt.host.failures), (
        rt.host.failures
    )


# ------------------------------------------------------------------------------------- request time
async def test_request_lacking_a_read_column_is_told_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw = TYPO.replace('"copy_from": "prise"', '"copy_from": "price"')
    async with running_server(make_runtime(), {PREFIX + "m": raw}) as srv:
        stub = predict_pb2_grpc.PredictStub(srv.channel)
        req = point_request("m")
        del req.target_input_schema[:]
        for t in req.targets:
            del t.feature_values[:]
        with caplog.at_level(logging.WARNING, "inferflow.engine"):
            resp = await stub.InferPointWise(req, timeout=5)
        assert "feature 'price' (read by 'doubler') is neither produced" in resp.request_error
        assert srv.runtime.metrics.value("request_missing_columns", model_id="m", column="price") == 1
        assert any("request lacks feature 'price'" in r.getMessage() for r in caplog.records)
        ok = await stub.InferPointWise(point_request("m", prices=(b"1",)), timeout=5)
        assert ok.request_error == ""


# ------------------------------------------------------------------------------------ engine defects
class _OwnTimeout(Component):
    """Follows docs/writing-a-plugin.md: bounds its own call with ctx.bound(...); its timeout is None."""

    async def run(self, ctx: RunContext) -> None:
        await asyncio.wait_for(asyncio.sleep(1), 0.01)


async def test_a_component_timing_out_on_its_own_bound_is_a_timeout_not_internal() -> None:
    from inferflow_core.engine.executor import _run_node

    ctx = RunContext("m", None, RequestInfo(api="pointwise"), {})  # type: ignore[arg-type]
    comp = _OwnTimeout("own", "m")
    assert comp.timeout is None
    await _run_node(comp, (), ctx, None)
    assert [(f.component, f.kind) for f in ctx.failures] == [("own", "timeout")]


async def test_deadline_cut_components_are_counted_as_errors() -> None:
    raw = _model(
        {"sleeper": ["feature_initializer"]},
        [{"component": "sleeper", "outputs": [{"name": "score"}], "sleep_ms": 2000}],
        ["id", "score"],
    )
    rt = make_runtime()
    rt.apply_tree({rt.settings.config_map_prefix + "m": raw})
    deadline = asyncio.get_running_loop().time() + 0.05
    ctx = await rt.execute(
        "m", InitialData(rows=1, texts={"id": ["a"]}), RequestInfo(api="pointwise"), deadline
    )
    assert [(f.component, f.kind) for f in ctx.failures] == [("sleeper", "deadline")]
    assert rt.metrics.value("component_errors", model_id="m", component="sleeper", kind="deadline") == 1


# ---------------------------------------------------------------------------------------- error logs
def test_failure_logging_follows_go_sampling(caplog: pytest.LogCaptureFixture) -> None:
    failure = ComponentFailure("m", "ranker", "predator-api-error", "connection refused")
    with caplog.at_level(logging.WARNING, "inferflow.engine"):
        assert not log_failure(failure, 0)  # 0 = never
        assert log_failure(failure, 100)  # 100 = always
        draws = random.Random(7)
        logged = sum(log_failure(failure, 30, draws) for _ in range(2000))
    assert 450 < logged < 750  # rand.Intn(100) < 30
    line = caplog.records[0].getMessage()
    assert "model m" in line
    assert "ranker" in line
    assert "predator-api-error" in line
    assert "connection refused" in line


async def test_component_failures_are_logged_with_model_component_kind_and_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw = _model(
        {"broken": ["feature_initializer"]},
        [{"component": "broken", "outputs": [{"name": "bad"}], "fail": True}],
        ["id", "bad"],
        component_config={"error_logging_percent": 100},
    )
    rt = make_runtime()
    rt.apply_tree({rt.settings.config_map_prefix + "m": raw})
    with caplog.at_level(logging.WARNING, "inferflow.engine"):
        await rt.execute("m", InitialData(rows=1, texts={"id": ["a"]}), RequestInfo(api="pointwise"))
    lines = [r.getMessage() for r in caplog.records if "component failed" in r.getMessage()]
    assert lines
    assert "model m component broken (error): RuntimeError: broken was told to fail" in lines[0]
    assert rt.metrics.value("component_errors", model_id="m", component="broken") == 1


# ----------------------------------------------------------------------------------------- readiness
REJECTED = _model({"ghost": ["feature_initializer"]}, [], ["id"])
OK = _model(
    {"a": ["feature_initializer"]}, [{"component": "a", "outputs": [{"name": "score"}]}], ["id", "score"]
)


async def test_a_rejected_model_makes_the_pod_not_ready_unless_allowed() -> None:
    tree = {PREFIX + "ok": OK, PREFIX + "bad": REJECTED}
    async with running_server(make_runtime(), tree) as srv:
        ok, details = srv.server.readiness()
        assert not ok
        assert details["not_ready_because"]
        assert "'bad'" in details["not_ready_because"][0]
        assert "ghost" in details["not_ready_because"][0]
        assert await _grpc_health(srv, "inferflow.readiness") == health_pb2.HealthCheckResponse.NOT_SERVING
        assert await _grpc_health(srv, "") == health_pb2.HealthCheckResponse.SERVING  # liveness unaffected
        await srv.update({PREFIX + "bad": OK})  # fixed: ready
        for _ in range(100):
            if await _grpc_health(srv, "inferflow.readiness") == health_pb2.HealthCheckResponse.SERVING:
                break
            await asyncio.sleep(0.02)
        assert await _grpc_health(srv, "inferflow.readiness") == health_pb2.HealthCheckResponse.SERVING
    async with running_server(make_runtime(ready_with_rejected=True), tree) as srv:
        ok, details = srv.server.readiness()
        assert ok
        assert "bad" in details["rejected_models"]


async def _grpc_health(srv: Any, service: str) -> Any:
    got = await health_pb2_grpc.HealthStub(srv.channel).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=5
    )
    return got.status


async def test_a_model_needing_a_plugin_that_failed_to_load_makes_the_pod_not_ready() -> None:
    class Broken:
        @hookimpl
        def register_components(self, register: Any) -> None:
            raise ImportError("No module named 'onnxruntime'")

    rt = testing.make_runtime(probe=ProbePlugin(), predator=Broken())
    rt.compiler.missing_plugins = rt.host.missing_reason()
    raw = json.dumps(
        {
            "dag_execution_config": {"component_dependency": {"ranker": ["feature_initializer"]}},
            "component_config": {"predator_components": [{"component": "ranker"}]},
        }
    )
    async with running_server(rt, {PREFIX + "m": raw}) as srv:
        ok, details = srv.server.readiness()
    assert not ok
    reason = details["not_ready_because"][0]
    assert "'m'" in reason
    assert "predator_components" in reason
    assert "onnxruntime" in reason
    assert "not a configured component" not in reason  # no cascade of DAG noise


async def test_rejected_model_still_answers_invalid_argument_naming_the_reason() -> None:
    async with running_server(make_runtime(ready_with_rejected=True), {PREFIX + "bad": REJECTED}) as srv:
        stub = predict_pb2_grpc.PredictStub(srv.channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.InferPointWise(point_request("bad"), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ghost" in (err.value.details() or "")


class _Partial(Component):
    """Records a partial failure itself (like a predator batch) and returns normally."""

    async def run(self, ctx: RunContext) -> None:
        ctx.fail(self.name, "predator-api-error", "1/2 batches failed")


async def test_partial_failures_recorded_by_the_component_are_counted() -> None:
    from inferflow_core.engine.executor import _run_node
    from inferflow_core.observability.metrics import Metrics

    metrics = Metrics()
    ctx = RunContext("m", None, RequestInfo(api="pointwise"), {})  # type: ignore[arg-type]
    await _run_node(_Partial("p", "m"), (), ctx, metrics)
    assert metrics.value("component_errors", model_id="m", component="p", kind="predator-api-error") == 1


@pytest.mark.parametrize(
    ("section", "value", "needle"),
    [
        ("probe_components", {"component": "a"}, "must be a list"),
        ("feature_initializer", [{"component": "x"}], "built in"),
        ("probe_component", [{"component": "a"}], "did you mean 'probe_components'"),
    ],
)
def test_malformed_component_sections_are_named(section: str, value: Any, needle: str) -> None:
    data = {
        "dag_execution_config": {"component_dependency": {"a": ["feature_initializer"]}},
        "component_config": {section: value},
    }
    with pytest.raises(ConfigError) as info:
        probe_runtime().compiler.compile("m", json.dumps(data), {})
    assert any(p == f"component_config.{section}" and needle in m for p, m in info.value.problems), info.value


def test_a_configured_component_missing_from_the_dag_is_a_warning() -> None:
    raw = _model(
        {"a": ["feature_initializer"]},
        [{"component": "a", "outputs": [{"name": "x"}]}, {"component": "lost", "outputs": [{"name": "y"}]}],
        ["id", "x"],
    )
    warnings = probe_runtime().compiler.compile("m", raw, {}).warnings
    assert (
        "component_config.probe_components[1]",
        "component 'lost' is not in dag_execution_config.component_dependency: it never runs",
    ) in warnings
