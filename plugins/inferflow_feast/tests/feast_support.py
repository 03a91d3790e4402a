"""Test support for inferflow-feast: a real Feast repository (SQLite online store) over Parquet files written
here, the truth read back from those files, and model-config builders. (A uniquely named module: plugin
test dirs are not packages.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from inferflow_feast.repo import EntityTable, build_repo

N_USERS = 40
N_CATALOGS = 30


def write_sources(root: Path) -> list[EntityTable]:
    """Deterministic users (string key) with every kind of feature and a few nulls; catalogs (int key)."""
    rng = np.random.default_rng(11)
    n = N_USERS
    fp32 = rng.random(n).astype(np.float32)
    fp32_nulls = [None if i % 7 == 3 else float(v) for i, v in enumerate(fp32)]
    users = pa.table(
        {
            "user_id": [f"u{i}" for i in range(n)],
            "fp32": pa.array(fp32_nulls, type=pa.float32()),
            "fp64": pa.array(rng.random(n)),
            "i64": pa.array(rng.integers(-(10**12), 10**12, n)),
            "i32": pa.array(rng.integers(-1000, 1000, n).astype(np.int32)),
            "flag": pa.array(rng.random(n) > 0.5),
            "name": pa.array([f"name-{i}" for i in range(n)]),
            "emb": pa.array(list(rng.random((n, 8)).astype(np.float32)), type=pa.list_(pa.float32())),
            "ivec": pa.array(list(rng.integers(-5, 5, (n, 3))), type=pa.list_(pa.int64())),
            "tags": pa.array([[f"t{i}", "x" * (i % 3 + 1)] for i in range(n)], type=pa.list_(pa.string())),
        }
    )
    catalogs = pa.table(
        {
            "catalog_id": pa.array(np.arange(100, 100 + N_CATALOGS, dtype=np.int64)),
            "price": pa.array(rng.random(N_CATALOGS).astype(np.float32) * 100),
        }
    )
    pq.write_table(users, root / "users.parquet")
    pq.write_table(catalogs, root / "catalogs.parquet")
    scalars = {c: c for c in ("fp32", "fp64", "i64", "i32", "flag", "name")}
    vectors = {c: c for c in ("emb", "ivec", "tags")}
    return [
        EntityTable("user", "user_id", users, {"user_scalars": scalars, "user_vectors": vectors}),
        EntityTable("catalog", "catalog_id", catalogs, {"catalog_stats": {"price": "price"}}),
    ]  # fmt: skip


def make_repo(root: Path) -> tuple[Path, dict[str, pa.Table]]:
    """The repo (applied and materialized) and the Parquet sources it was built from, read back."""
    (root / "sources").mkdir(parents=True)
    build_repo(root / "repo", write_sources(root / "sources"), project="inferflow_test")
    truth = {name: pq.read_table(root / "sources" / f"{name}.parquet") for name in ("users", "catalogs")}
    return root / "repo", truth


def user_component(name: str = "user_features", **extra: Any) -> dict:
    """The OnFS ``feature_components`` entry shape: scalars typed per feature, vectors per group."""
    return {
        "component": name,
        "component_id": "user_id",
        "fs_keys": [{"schema": "user_id", "col": "user_id"}],
        "fs_request": {
            "label": "user",
            "featureGroups": [
                {"label": "scalars", "view": "user_scalars", "data_type": "DataTypeFP32",
                 "features": ["fp32", "fp64@DataTypeFP64", "i64@DataTypeInt64", "i32@DataTypeInt32",
                              "flag@DataTypeBool", "name@DataTypeString"]},
                {"label": "vectors", "view": "user_vectors", "data_type": "DataTypeFP32Vector",
                 "features": ["emb", "ivec@DataTypeInt64Vector", "tags@DataTypeStringVector"]},
            ],
        },
        "fs_flatten_resp_keys": ["user_id"],
        **extra,
    }  # fmt: skip


def catalog_component(name: str = "catalog_features", **extra: Any) -> dict:
    return {
        "component": name,
        "component_id": "catalog_id",
        "fs_keys": [{"schema": "catalog_id", "col": "catalog_id"}],
        "fs_request": {
            "label": "catalog",
            "featureGroups": [{"label": "catalog_stats", "data_type": "fp32", "features": ["price"]}],
        },
        **extra,
    }


def model_json(components: list[dict], cache: dict | None = None, features: list[str] | None = None) -> str:
    return json.dumps(
        {
            "dag_execution_config": {
                "component_dependency": {c["component"]: ["feature_initializer"] for c in components}
            },
            "component_config": {**(cache or {}), "feast_components": components},
            "response_config": {"features": features or ["catalog_id"]},
        }
    )
