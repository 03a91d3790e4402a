"""The FeatureComponent in a DAG through ``Runtime`` (entry points loaded), config errors, conformance."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
from inferflow_onfs.backends import LocalBackend
from inferflow_onfs.client import OnfsClient
from inferflow_onfs.config import FeatureComponentConfig
from inferflow_onfs.plugin import FeatureComponentType
from inferflow_onfs.settings import OnfsSettings
from inferflow_onfs.store import LocalStore
from onfs_support import all_types_component, model_json, pair_component

from inferflow_core.api import BuildContext as Build
from inferflow_core.api import InitialData, Metrics, ModelConfig, RequestInfo, Runtime
from inferflow_core.testing import ComponentConformance, make_context, pick_free_port, silent_port


def _runtime(components: list[dict], cache: dict | None = None) -> Runtime:
    rt = Runtime()
    assert "feature_components" in rt.registry.components, rt.host.failures
    rt.apply_tree({rt.settings.config_map_prefix + "m": model_json(components, cache)})
    assert not rt.store.current.errors, rt.store.current.errors
    return rt


async def _execute(rt: Runtime, users: list[str], cats: list[str] | None = None):
    cats = cats or [f"c{i % 2 + 1}" for i in range(len(users))]
    initial = InitialData(rows=len(users), texts={"catalog_id": cats, "user_id": users})
    return await rt.execute("m", initial, RequestInfo(api="pointwise"))


@pytest.fixture
def local_env(store_dir, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("EXTERNAL_SERVICE_ONFS_FS_HOST", raising=False)
    monkeypatch.setenv("INFERFLOW_ONFS_LOCAL_DIR", str(store_dir[0]))
    return store_dir[1]


def _check(ctx, truth: dict, users: list[str]) -> None:
    for name in ("fp32", "i64", "name"):
        values, valid = ctx.matrix.read(f"user:scalars:{name}")
        for row, user in enumerate(users):
            assert valid[row] == (user in truth["ids"])
            if valid[row]:
                assert values[row] == truth[f"scalars:{name}"][truth["ids"].index(user)]
    emb, valid = ctx.matrix.read("user:vectors:emb")
    assert emb.shape == (len(users), 8)
    assert np.array_equal(emb[0], truth["vectors:emb"][truth["ids"].index(users[0])])


async def test_dag_embedded_dedupes_and_skips_empty_keys(local_env) -> None:
    rt = _runtime([all_types_component(), pair_component()])
    users = ["u1", "u1", "", "u2", "ghost", "u1"]
    ctx = await _execute(rt, users)
    assert not ctx.failures, ctx.failures
    _check(ctx, local_env, users)
    labels = {"model_id": "m", "component": "user_features"}
    assert rt.metrics.value("onfs_fetched_entities", **labels) == 3  # u1, u2, ghost; "" never sent
    # Go Inferflow's feature count: unique entities x features
    features = len(rt.store.current.models["m"].nodes["user_features"].outputs())
    assert rt.metrics.value("component_features", **labels) == 3 * features
    pair, valid = ctx.matrix.read("pair:aff:score")
    assert valid.tolist() == [True, True, False, True, False, True]
    assert pair[0] == local_env["pair"][("u1", "c1")]
    assert pair[3] == local_env["pair"][("u2", "c2")]
    keys, _ = ctx.matrix.read("pair_key")
    assert keys.tolist()[:2] == ["u1|c1", "u1|c2"]


@pytest.mark.integration
async def test_dag_remote_gives_the_same_matrix(local_env, remote_env) -> None:
    rt = _runtime([all_types_component(), pair_component()])
    users = [f"u{i}" for i in range(20)] + ["ghost"]
    ctx = await _execute(rt, users)
    assert not ctx.failures, ctx.failures
    _check(ctx, local_env, users)
    labels = {"model_id": "m", "component": "user_features"}
    assert rt.metrics.value("onfs_batches", **labels) == 3  # 21 unique keys, batch size 7


def test_config_errors_name_the_problem(local_env, monkeypatch: pytest.MonkeyPatch) -> None:
    rt = Runtime()

    def errors(components: list[dict]) -> str:
        snap = rt.apply_tree({rt.settings.config_map_prefix + "bad": model_json(components)})
        return json.dumps({k: str(v) for k, v in snap.errors.items()})

    assert "surprise" in errors([all_types_component(surprise=1)])
    bad_type = all_types_component()
    bad_type["fs_request"]["featureGroups"][0]["data_type"] = "DataTypeFP33"
    assert "DataTypeFP33" in errors([bad_type])
    no_label = pair_component()
    no_label["fs_request"]["label"] = "nolabel"
    assert "nolabel" in errors([no_label])
    monkeypatch.setenv("EXTERNAL_SERVICE_ONFS_FS_HOST", "127.0.0.1")
    monkeypatch.setenv("EXTERNAL_SERVICE_ONFS_FS_BATCH_SIZE", "0")
    assert "EXTERNAL_SERVICE_ONFS_FS_BATCH_SIZE" in errors([pair_component()])


def test_outputs_and_quantised_columns() -> None:
    cfg = FeatureComponentConfig.model_validate(
        {
            **pair_component(),
            "col_name_prefix": "p:",
            "fs_request": {
                "label": "pair",
                "featureGroups": [
                    {"label": "aff", "data_type": "DataTypeFP32Vector", "features": ["e@DataTypeFP16"]}
                ],
            },
        }
    )
    backend = OnfsClient(OnfsSettings(fs_host="127.0.0.1"))  # build-time check only
    comp = FeatureComponentType(backend=backend).build(cfg, _build_ctx())
    names = {(s.name, s.dtype.wire_name) for s in comp.outputs()}
    assert names == {("p:pair:aff:e", "DataTypeFP16"), ("pair_key", "DataTypeString")}
    assert [(s.name, s.dtype.wire_name) for s in comp.required_columns()] == [
        ("user_id", "DataTypeString"),
        ("catalog_id", "DataTypeString"),
    ]


def _build_ctx(cache: dict | None = None) -> Build:
    model = ModelConfig.model_validate(json.loads(model_json([pair_component()], cache)))
    return Build(model_id="m", model=model, config={}, metrics=Metrics())


class _Switch:
    """Delegates to the backend the conformance mode picked (the base builds the component first)."""

    name = "switch"

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner = inner

    def check(self, request) -> None:  # type: ignore[no-untyped-def]
        self.inner.check(request)

    async def fetch(self, request, keys, timeout):  # type: ignore[no-untyped-def]
        return await self.inner.fetch(request, keys, timeout)


class TestConformance(ComponentConformance):
    """Backends: the embedded store (ok), a closed port (broken), a store that never answers (slow): a
    loopback socket that accepts connections and never speaks HTTP/2."""

    @pytest.fixture(autouse=True)
    def _store(self, store_dir) -> Iterator[None]:  # type: ignore[no-untyped-def]
        self.switch = _Switch(LocalBackend(LocalStore(str(store_dir[0]))))
        self.local = self.switch.inner
        with silent_port() as port:
            self.blackhole_port = port
            yield

    def make_component(self):  # type: ignore[no-untyped-def]
        cfg = FeatureComponentConfig.model_validate(pair_component())
        return FeatureComponentType(backend=self.switch).build(cfg, _build_ctx())

    def make_context(self, mode: str):  # type: ignore[no-untyped-def]
        if mode == "ok":
            self.switch.inner = self.local
        else:
            # broken: nothing listens on the port; slow: a generous deadline on the black hole
            port = pick_free_port() if mode == "broken" else self.blackhole_port
            settings = OnfsSettings(fs_host="127.0.0.1", fs_port=port, fs_plaintext=True, deadline_ms=30000)
            self.switch.inner = OnfsClient(settings)
        texts = {"user_id": ["u0", "u1", "u0"], "catalog_id": ["c1", "c2", "c2"]}
        return make_context(self.make_component(), rows=3, texts=texts, model_id="m")


def test_no_feature_store_configured_rejects_the_model_naming_the_env_vars(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a store every request would be scored from missing features: the model is rejected."""
    for var in ("EXTERNAL_SERVICE_ONFS_FS_HOST", "INFERFLOW_ONFS_LOCAL_DIR"):
        monkeypatch.delenv(var, raising=False)
    from inferflow_core.api import Runtime

    rt = Runtime()
    snap = rt.apply_tree({rt.settings.config_map_prefix + "m": model_json([all_types_component()])})
    assert "m" not in snap.models
    problems = snap.errors["m"].problems
    assert any(
        p.startswith("component_config.feature_components[0].fs_request")
        and "no feature store configured" in m
        and "INFERFLOW_ONFS_LOCAL_DIR" in m
        for p, m in problems
    ), problems


def test_cache_is_skipped_in_front_of_the_embedded_store_but_kept_for_remote(local_env, monkeypatch) -> None:
    """The embedded store is already in memory: a cache in front of it only adds work (measured)."""
    from inferflow_core.api import Runtime

    cache_on = {"cache_enabled": True}
    comp = all_types_component(comp_cache_enabled=True)
    rt = Runtime()
    snap = rt.apply_tree({rt.settings.config_map_prefix + "m": model_json([comp], cache_on)})
    assert snap.models["m"].components["user_features"].cache is None
    monkeypatch.setenv("EXTERNAL_SERVICE_ONFS_FS_HOST", "127.0.0.1")
    monkeypatch.setenv("EXTERNAL_SERVICE_ONFS_FS_PORT", str(pick_free_port()))
    rt2 = Runtime()
    snap2 = rt2.apply_tree({rt2.settings.config_map_prefix + "m": model_json([comp], cache_on)})
    assert snap2.models["m"].components["user_features"].cache is not None


async def test_missing_entities_and_cells_are_counted(local_env) -> None:
    """Issue 12: an unknown entity was scored on defaults and only the inference log showed it."""
    rt = _runtime([all_types_component()])
    ctx = await _execute(rt, ["u1", "ghost", "", "ghost"])
    assert not ctx.failures
    assert not ctx.target_errors
    labels = {"model_id": "m", "component": "user_features"}
    assert rt.metrics.value("feature_missing_entities", **labels) == 3  # ghost twice, the empty key


async def test_missing_features_error_option_gives_per_target_errors(local_env) -> None:
    from inferflow_core.testing.protos import predict_pb2, predict_pb2_grpc
    from inferflow_core.testing.server import running_server

    rt = Runtime()
    raw = json.loads(model_json([all_types_component(missing_features="error")]))
    raw["response_config"]["features"] = ["catalog_id", "user:scalars:fp32"]
    async with running_server(rt, {rt.settings.config_map_prefix + "m": json.dumps(raw)}) as srv:
        stub = predict_pb2_grpc.PredictStub(srv.channel)
        req = predict_pb2.PointWiseRequest(
            model_config_id="m",
            target_input_schema=[
                predict_pb2.FeatureSchema(name="user_id", data_type=predict_pb2.DataTypeString)
            ],
            targets=[
                predict_pb2.Target(id="c1", feature_values=[b"u1"]),
                predict_pb2.Target(id="c2", feature_values=[b"ghost"]),
            ],
        )
        resp = await stub.InferPointWise(req, timeout=10)
    assert resp.target_scores[0].error == ""
    err = resp.target_scores[1].error
    assert "'user_features'" in err, err
    assert "'ghost' not found" in err, err
    assert "'user'" in err, err
    assert "missing features" in resp.request_error


@pytest.mark.integration
async def test_check_backends_asks_the_remote_store(local_env, remote_env) -> None:
    rt = _runtime([all_types_component()])
    assert await rt.store.current.models["m"].components["user_features"].check_backend() == []
    no_label = all_types_component()
    no_label["fs_request"]["label"] = "nolabel"
    rt = _runtime([no_label])
    problems = await rt.store.current.models["m"].components["user_features"].check_backend()
    assert problems, problems
    assert problems[0][0] == "fs_request", problems
    assert "nolabel" in problems[0][1], problems
