"""The embedded store's fast path (no cache) has exactly the general path's effects: the same matrix, metrics
series, EXPLAIN notes, per-target errors and failures, for every key layout, with one key column or two."""

from __future__ import annotations

import json

import numpy as np
import pytest
from inferflow_onfs.component import FeatureComponent
from onfs_support import all_types_component, model_json, pair_component

from inferflow_core.api import InitialData, RequestInfo, Runtime

LAYOUTS = {
    "one key, stored": ["u1"] * 6,
    "one key, unknown": ["ghost"] * 4,
    "one row": ["u5"],
    "distinct, stored": ["u1", "u2", "u3", "u39"],
    "distinct, one unknown": ["u1", "ghost", "u2"],
    "repeats": ["u1", "u2", "u1", "u3", "u2"],
    "repeats and unknowns": ["u1", "gh1", "u1", "gh2", "gh1"],
    "first equals last only": ["u1", "u2", "u1"],
    "an empty key": ["u1", "", "u2"],
    "only empty keys": ["", ""],
    "long and non-ASCII": ["u1", "u\u00e9", "u1" * 40, "u1\x00"],
}


def dense_component(**extra: object) -> dict:
    """Fixed-width features every stored entity has: the store serves them as dense blocks."""
    groups = [
        {
            "label": "scalars",
            "data_type": "DataTypeFP32",
            "features": ["fp32", "fp64@DataTypeFP64", "u8@Uint8"],
        },
        {"label": "vectors", "data_type": "DataTypeFP32Vector", "features": ["emb"]},
    ]
    component = all_types_component(**extra)
    component["fs_request"]["featureGroups"] = groups
    return component


@pytest.fixture
def local_env(store_dir, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXTERNAL_SERVICE_ONFS_FS_HOST", raising=False)
    monkeypatch.setenv("INFERFLOW_ONFS_LOCAL_DIR", str(store_dir[0]))


class _Notes:
    """A node lifecycle recording what components report for EXPLAIN (durations left out)."""

    def __init__(self) -> None:
        self.seen: list[tuple] = []

    def before_node(self, component: object, ctx: object) -> None:
        pass

    def after_node(self, component: object, ctx: object, outcome: str | None) -> None:
        self.seen.append(("after", getattr(component, "name", ""), outcome))

    def note(self, component: str, key: str, n: int = 1) -> None:
        self.seen.append(("note", component, key, n))

    def external_call(
        self, component: str, endpoint: str, batches: int, rows: int, seconds: float | None = None
    ) -> None:
        self.seen.append(("call", component, endpoint, batches, rows, seconds is not None))


def _series(rt: Runtime) -> list[str]:
    """Inferflow's metrics series without what depends on time (latencies, creation stamps)."""
    lines = rt.metrics.exposition().decode().splitlines()
    return [
        ln for ln in lines if ln.startswith("inferflow_") and "_seconds_" not in ln and "_created" not in ln
    ]


def _matrix(ctx) -> dict:  # type: ignore[no-untyped-def]
    out = {}
    for name in ctx.matrix.names:
        values, valid = ctx.matrix.read(name)
        out[name] = (ctx.matrix.column(name).dtype, np.asarray(values).tolist(), valid.tolist())
    return out


async def _serve(
    users_per_request: list[list[str]], component: dict, catalogs_per_request: list[list[str]] | None = None
) -> tuple[list, list[str]]:
    rt = Runtime()
    components = [component]
    rt.apply_tree({rt.settings.config_map_prefix + "m": model_json(components)})
    assert not rt.store.current.errors, rt.store.current.errors
    seen = []
    for i, users in enumerate(users_per_request):
        notes = _Notes()
        catalogs = ["c1"] * len(users) if catalogs_per_request is None else catalogs_per_request[i]
        initial = InitialData(rows=len(users), texts={"catalog_id": catalogs, "user_id": users})
        ctx = await rt.execute("m", initial, RequestInfo(api="pointwise"), lifecycle=notes)  # type: ignore[arg-type]
        failures = [(f.component, f.kind, f.message) for f in ctx.failures]
        seen.append((_matrix(ctx), dict(ctx.target_errors), failures, notes.seen))
    return seen, _series(rt)


def _count_fast_path(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record whether each run took the fast path (its return value), from now on."""
    used: list[bool] = []
    run_local = FeatureComponent._run_local

    def counted(self, ctx, backend):  # type: ignore[no-untyped-def]
        done = run_local(self, ctx, backend)
        used.append(done)
        return done

    monkeypatch.setattr(FeatureComponent, "_run_local", counted)
    return used


@pytest.mark.parametrize("build", [all_types_component, dense_component])
@pytest.mark.parametrize("extra", [{}, {"missing_features": "error", "composite_id": True}])
async def test_fast_path_has_the_general_paths_effects(local_env, monkeypatch, build, extra) -> None:
    used = _count_fast_path(monkeypatch)
    component = build(component_id="user_key", **extra)
    requests = list(LAYOUTS.values())
    fast, fast_series = await _serve(requests, component)
    assert used == [all(users) for users in requests]  # a row with no key: the general path
    monkeypatch.setattr(FeatureComponent, "_run_local", lambda self, ctx, backend: False)
    general, general_series = await _serve(requests, component)
    for name, got, want in zip(LAYOUTS, fast, general, strict=True):
        assert json.dumps(got, default=str) == json.dumps(want, default=str), name
    assert fast_series == general_series
    # the counts are those of the distinct entities asked for ("" never asked for)
    text = "\n".join(fast_series)
    asked = sum(len({k for k in users if k}) for users in requests)
    labels = '{component="user_features",model_id="m"}'
    assert f"inferflow_onfs_fetched_entities_total{labels} {float(asked)}" in text, text
    features = sum(len(g["features"]) for g in component["fs_request"]["featureGroups"])
    assert f"inferflow_component_features_total{labels} {float(asked * features)}" in text, text
    assert "inferflow_feature_missing_entities_total" in text, text


PAIR_LAYOUTS = {
    "stored pairs": (["u0", "u1", "u2", "u0"], ["c1", "c2", "c1", "c2"]),
    "repeats and unknowns": (["u0", "u9", "u0", "u1"], ["c1", "c1", "c1", "c9"]),
    "one pair for every row": (["u1"] * 3, ["c2"] * 3),
    "an empty part": (["u0", "", "u1"], ["c1", "c2", ""]),
    "none stored": (["x", "y"], ["c1", "c2"]),
}


@pytest.mark.parametrize("extra", [{}, {"missing_features": "error"}])
async def test_fast_path_with_two_key_columns_has_the_general_paths_effects(
    local_env, monkeypatch, extra
) -> None:
    used = _count_fast_path(monkeypatch)
    component = pair_component(composite_id=False, **extra)
    users = [u for u, _ in PAIR_LAYOUTS.values()]
    catalogs = [c for _, c in PAIR_LAYOUTS.values()]
    fast, fast_series = await _serve(users, component, catalogs)
    # a row with an empty key part: the general path
    assert used == [all(u) and all(c) for u, c in PAIR_LAYOUTS.values()]
    monkeypatch.setattr(FeatureComponent, "_run_local", lambda self, ctx, backend: False)
    general, general_series = await _serve(users, component, catalogs)
    for name, got, want in zip(PAIR_LAYOUTS, fast, general, strict=True):
        assert json.dumps(got, default=str) == json.dumps(want, default=str), name
    assert fast_series == general_series
    used = _count_fast_path(monkeypatch)
    await _serve(users, pair_component(), catalogs)  # a composite id is asked for: the general path
    assert used == []


async def test_a_key_with_an_empty_part_is_never_looked_up_by_the_fast_path(local_env) -> None:
    """A component may write a present but empty key part; the general path never asks for such a key."""
    from inferflow_core.testing import make_context

    rt = Runtime()
    rt.apply_tree({rt.settings.config_map_prefix + "m": model_json([pair_component(composite_id=False)])})
    component = rt.store.current.model("m").components["pair_features"]
    ctx = make_context(component, rows=2, texts={"user_id": ["u0", "u1"]}, model_id="m")
    ctx.matrix.set_column("catalog_id", np.array(["c1", ""], dtype=object), np.ones(2, dtype=bool))
    assert component._run_local(ctx, component._local) is False  # type: ignore[attr-defined]
    ctx.matrix.set_column("catalog_id", np.array(["c1", "c2"], dtype=object), np.ones(2, dtype=bool))
    assert component._run_local(ctx, component._local) is True  # type: ignore[attr-defined]
