"""feast_components against a real Feast repository (SQLite online store, materialized from Parquet files
written by the test): through ``Runtime`` and served over gRPC, checked against the Parquet source."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import numpy as np
import pytest
from feast_support import N_USERS, catalog_component, model_json, user_component
from inferflow_feast.backend import FeastBackend
from inferflow_feast.config import FeastComponentConfig
from inferflow_feast.plugin import FeastComponentType

from inferflow_core.api import BuildContext, InitialData, Metrics, ModelConfig, RequestInfo, Runtime
from inferflow_core.testing import ComponentConformance, make_context
from inferflow_core.testing.protos import predict_pb2, predict_pb2_grpc
from inferflow_core.testing.server import running_server

PREFIX = "inferflow/services/inferflow/model-config/config-map/"


def _runtime(components: list[dict], cache: dict | None = None) -> Runtime:
    rt = Runtime()
    assert "feast_components" in rt.registry.components, rt.host.failures
    rt.apply_tree({rt.settings.config_map_prefix + "m": model_json(components, cache)})
    assert not rt.store.current.errors, rt.store.current.errors
    return rt


async def _execute(rt: Runtime, users: list[str], cats: list[str] | None = None) -> Any:
    cats = cats or [str(100 + i % 5) for i in range(len(users))]
    initial = InitialData(rows=len(users), texts={"catalog_id": cats, "user_id": users})
    return await rt.execute("m", initial, RequestInfo(api="pointwise"))


def _check_users(ctx: Any, truth: dict, users: list[str]) -> None:
    ids = truth["users"]["user_id"]
    for name in ("fp32", "fp64", "i64", "i32", "flag", "name", "emb", "ivec", "tags"):
        group = "vectors" if name in ("emb", "ivec", "tags") else "scalars"
        values, valid = ctx.matrix.read(f"user:{group}:{name}")
        for row, user in enumerate(users):
            want = truth["users"][name][ids.index(user)] if user in ids else None
            assert bool(valid[row]) == (want is not None), (name, user)
            if want is None:
                continue
            got = values[row]
            if name in ("fp32", "emb"):
                assert np.array_equal(np.asarray(got, np.float32), np.asarray(want, np.float32)), (name, user)
            elif name == "tags":
                assert list(got) == want
            else:
                assert np.array_equal(np.asarray(got), np.asarray(want)), (name, user)
    assert ctx.matrix.read("user:vectors:emb")[0].dtype == np.float32
    assert ctx.matrix.read("user:vectors:ivec")[0].shape == (len(users), 3)


async def test_dag_reads_feast_like_onfs(feast_env: dict) -> None:
    rt = _runtime([user_component(), catalog_component()])
    users = ["u1", "u1", "", "u2", "ghost", "u3", "u1"] + [f"u{i}" for i in range(N_USERS)]
    ctx = await _execute(rt, users, [str(100 + i % 40) for i in range(len(users))])  # 130.. are unknown
    assert not ctx.failures, ctx.failures
    _check_users(ctx, feast_env, users)
    price, valid = ctx.matrix.read("catalog:catalog_stats:price")
    catalogs = feast_env["catalogs"]
    for row in range(len(users)):
        cid = 100 + row % 40
        assert bool(valid[row]) == (cid < 130)
        if valid[row]:
            assert price[row] == np.float32(catalogs["price"][catalogs["catalog_id"].index(cid)])
    labels = {"model_id": "m", "component": "user_features"}
    assert rt.metrics.value("feast_fetched_entities", **labels) == N_USERS + 1  # unique, "" never sent
    assert rt.metrics.value("feast_missing_entities", **labels) == 1  # ghost
    assert rt.metrics.value("feast_batches", **labels) == 6  # 41 keys, batch size 7
    cat = {"model_id": "m", "component": "catalog_features"}
    assert rt.metrics.value("feast_missing_entities", **cat) == 10


async def test_served_over_grpc(feast_env: dict) -> None:
    config = model_json([user_component()], features=["catalog_id", "user:scalars:fp64", "user:scalars:name"])
    rt = Runtime()
    async with running_server(rt, {PREFIX + "feast": config}) as srv:
        stub = predict_pb2_grpc.PredictStub(srv.channel)
        request = predict_pb2.PointWiseRequest(
            model_config_id="feast",
            context_features=[
                predict_pb2.ContextFeature(name="user_id", value=b"u5", data_type=predict_pb2.DataTypeString)
            ],
            targets=[predict_pb2.Target(id=str(i)) for i in range(3)],
        )
        resp = await stub.InferPointWise(request, timeout=10)
    assert not resp.request_error, resp.request_error
    users = feast_env["users"]
    fp64 = np.float64(users["fp64"][users["user_id"].index("u5")]).tobytes()
    for i, score in enumerate(resp.target_scores):
        assert list(score.output_values) == [str(i).encode(), fp64, b"name-5"]


async def test_cache_serves_repeat_entities(feast_env: dict) -> None:
    cache = {"cache_enabled": True, "cache_version": 1, "cache_ttl": 60}
    rt = _runtime([user_component(comp_cache_enabled=True)], cache)
    users = [f"u{i}" for i in range(10)] + ["ghost"]
    first = await _execute(rt, users)
    second = await _execute(rt, [*users, "u11"])
    assert not first.failures
    assert not second.failures
    _check_users(second, feast_env, [*users, "u11"])
    labels = {"model_id": "m", "component": "user_features"}
    assert rt.metrics.value("feast_fetched_entities", **labels) == 11 + 2  # then only ghost and u11


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"view": "nope"}, "feature view 'nope' not found"),
        ({"features": ["fp32", "absent"]}, "no feature(s) ['absent']"),
    ],
)
def test_bad_references_are_config_errors(feast_env: dict, change: dict, message: str) -> None:
    component = user_component()
    component["fs_request"]["featureGroups"][0].update(change)
    rt = Runtime()
    rt.apply_tree({rt.settings.config_map_prefix + "m": model_json([component])})
    assert message in str(rt.store.current.errors)


def test_join_key_mismatch_is_a_config_error(feast_env: dict) -> None:
    component = user_component()
    component["fs_keys"] = [{"schema": "customer", "col": "user_id"}]
    rt = Runtime()
    rt.apply_tree({rt.settings.config_map_prefix + "m": model_json([component])})
    assert "do not match the join keys" in str(rt.store.current.errors)


def test_no_repo_validates_and_fails_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INFERFLOW_FEAST_REPO", raising=False)
    rt = _runtime([user_component()])
    ctx = asyncio.run(_execute(rt, ["u1"]))
    assert ctx.failures
    assert "INFERFLOW_FEAST_REPO" in ctx.failures[0].message


def _build_ctx() -> BuildContext:
    model = ModelConfig.model_validate(json.loads(model_json([user_component()])))
    return BuildContext(model_id="m", model=model, config={}, metrics=Metrics())


class _Flaky:
    """Wraps the SDK store: ``mode`` ok / broken (raises) / slow (sleeps past any deadline)."""

    def __init__(self, store: Any) -> None:
        self.store, self.mode = store, "ok"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def get_online_features(self, *args: Any, **kwargs: Any) -> Any:
        if self.mode == "broken":
            raise RuntimeError("online store unavailable")
        if self.mode == "slow":
            time.sleep(1.0)
        return self.store.get_online_features(*args, **kwargs)


async def test_deadline_bounds_a_slow_store(feast_repo: tuple) -> None:
    backend = FeastBackend(str(feast_repo[0]), batch_size=50, deadline_ms=5000, workers=2)
    backend.store = _Flaky(backend.store)  # type: ignore[assignment]
    backend.store.mode = "slow"  # type: ignore[attr-defined]
    comp = FeastComponentType(backend).build(
        FeastComponentConfig.model_validate(user_component()), _build_ctx()
    )
    ctx = make_context(comp, rows=3, texts={"user_id": ["u1", "u2", "u1"]})
    ctx.deadline = asyncio.get_running_loop().time() + 0.15
    started = time.perf_counter()
    with pytest.raises(Exception, match="exceeded"):
        await comp.run(ctx)
    assert time.perf_counter() - started < 0.6
    assert not ctx.matrix.column("user:scalars:fp64").valid.any()
    backend.close()


class TestConformance(ComponentConformance):
    """ok: the real repo; broken: the SDK raises; slow: the SDK call outlives the deadline."""

    @pytest.fixture(autouse=True)
    def _backend(self, feast_repo: tuple) -> Any:
        self.backend = FeastBackend(str(feast_repo[0]), batch_size=50, deadline_ms=3000, workers=2)
        self.flaky = _Flaky(self.backend.store)
        self.backend.store = self.flaky  # type: ignore[assignment]
        yield
        self.backend.close()

    def make_component(self):  # type: ignore[no-untyped-def]
        cfg = FeastComponentConfig.model_validate(user_component())
        return FeastComponentType(self.backend).build(cfg, _build_ctx())

    def make_context(self, mode: str):  # type: ignore[no-untyped-def]
        self.flaky.mode = mode
        return make_context(self.make_component(), rows=2, texts={"user_id": ["u1", "u2"]})
