"""Test support for inferflow-onfs: a Parquet store covering every data type, ``inferflow-onfs serve``
as a subprocess, model-config builders, and a cached feature component with a run of it. (A uniquely
named module: plugin test dirs are not packages.)"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from inferflow_onfs.backends import FetchRequest
from inferflow_onfs.config import FeatureComponentConfig, feature_specs
from inferflow_onfs.plugin import FeatureComponentType

from inferflow_core.api import BuildContext as Build
from inferflow_core.api import Metrics, ModelConfig, features
from inferflow_core.testing import make_context, pick_free_port

N_USERS = 40


def _fp8_field(name: str, dtype: str, vector: bool) -> pa.Field:
    typ = pa.list_(pa.uint8(), 2) if vector else pa.uint8()
    return pa.field(name, typ, metadata={"inferflow.dtype": dtype})


def write_store(root: Path) -> dict:
    """Deterministic data; returns the numpy truth for the tests to compare with."""
    rng = np.random.default_rng(7)
    n = N_USERS
    ids = [f"u{i}" for i in range(n)]
    truth: dict = {"ids": ids}
    cols: dict[str, pa.Array] = {"user_id": pa.array(ids)}
    scalar_types = {
        "fp16": (np.float16, pa.float16()), "fp32": (np.float32, pa.float32()),
        "fp64": (np.float64, pa.float64()),
        "i8": (np.int8, pa.int8()), "i16": (np.int16, pa.int16()), "i32": (np.int32, pa.int32()),
        "i64": (np.int64, pa.int64()), "u8": (np.uint8, pa.uint8()), "u16": (np.uint16, pa.uint16()),
        "u32": (np.uint32, pa.uint32()), "u64": (np.uint64, pa.uint64()),
    }  # fmt: skip
    for name, (npt, pat) in scalar_types.items():
        vals = (rng.random(n) * 100).astype(npt)
        truth[f"scalars:{name}"] = vals
        cols[f"scalars:{name}"] = pa.array(vals, type=pat)
    truth["scalars:flag"] = rng.random(n) > 0.5
    cols["scalars:flag"] = pa.array(truth["scalars:flag"])
    truth["scalars:name"] = np.array([f"name-{i}" for i in range(n)], dtype=object)
    cols["scalars:name"] = pa.array(list(truth["scalars:name"]))
    f8 = rng.random(n).astype(np.float32).astype(ml_dtypes.float8_e4m3fn)
    truth["scalars:f8"] = f8
    cols["scalars:f8"] = pa.array(f8.view(np.uint8))
    emb = rng.random((n, 8)).astype(np.float32)
    truth["vectors:emb"] = emb
    cols["vectors:emb"] = pa.array(list(emb), type=pa.list_(pa.float32(), 8))
    ivec = rng.integers(-5, 5, (n, 3)).astype(np.int32)
    truth["vectors:ivec"] = ivec
    cols["vectors:ivec"] = pa.array(list(ivec), type=pa.list_(pa.int32()))
    bvec = rng.random((n, 4)) > 0.5
    truth["vectors:bvec"] = bvec
    cols["vectors:bvec"] = pa.array([list(map(bool, r)) for r in bvec], type=pa.list_(pa.bool_()))
    svec = [[f"t{i}", "x" * (i % 3 + 1)] for i in range(n)]
    truth["vectors:svec"] = svec
    cols["vectors:svec"] = pa.array(svec, type=pa.list_(pa.string()))
    f8v = rng.random((n, 2)).astype(np.float32).astype(ml_dtypes.float8_e5m2)
    truth["vectors:f8v"] = f8v
    fields = [pa.field(k, v.type) for k, v in cols.items()]
    fields.append(_fp8_field("vectors:f8v", "FP8E5M2Vector", True))
    fields[[f.name for f in fields].index("scalars:f8")] = _fp8_field("scalars:f8", "FP8E4M3", False)
    arrays = [*cols.values(), pa.array([list(r) for r in f8v.view(np.uint8)], type=pa.list_(pa.uint8(), 2))]
    pq.write_table(pa.Table.from_arrays(arrays, schema=pa.schema(fields)), root / "user.parquet")
    # composite keys, written as a folder of two parts
    pair_dir = root / "pair.parquet"
    pair_dir.mkdir()
    score = rng.random(6).astype(np.float32)
    users, cats = ["u0", "u0", "u1", "u1", "u2", "u2"], ["c1", "c2", "c1", "c2", "c1", "c2"]
    truth["pair"] = {(u, c): s for u, c, s in zip(users, cats, score, strict=True)}
    for part in (0, 1):
        sl = slice(part * 3, part * 3 + 3)
        table = pa.table({"user_id": users[sl], "catalog_id": cats[sl], "aff:score": pa.array(score[sl])})
        pq.write_table(table, pair_dir / f"part-{part}.parquet")
    return truth


@contextlib.contextmanager
def onfs_server(
    data: Path, *args: str, env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[int]:
    """``inferflow-onfs serve`` as a subprocess on ``port`` (default: a free one); waits (bounded) until
    it accepts."""
    port = port or pick_free_port()
    exe = shutil.which("inferflow-onfs", path=os.path.dirname(sys.executable)) or "inferflow-onfs"
    proc = subprocess.Popen(
        [exe, "serve", "--data", str(data), "--port", str(port), *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {proc.stdout.read() if proc.stdout else ''}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        else:
            raise RuntimeError("server did not start within 15 s")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# ---- config builders

SCALARS = ["fp16", "fp32", "fp64", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "flag", "name", "f8"]
SCALAR_TYPES = {
    "fp16": "FP16", "fp32": "FP32", "fp64": "FP64", "i8": "Int8", "i16": "Int16", "i32": "Int32",
    "i64": "Int64", "u8": "Uint8", "u16": "Uint16", "u32": "Uint32", "u64": "Uint64", "flag": "Bool",
    "name": "String", "f8": "FP8E4M3",
}  # fmt: skip
VECTOR_TYPES = {
    "emb": "FP32Vector", "ivec": "Int32Vector", "bvec": "BoolVector", "svec": "StringVector",
    "f8v": "FP8E5M2Vector",
}  # fmt: skip


def all_types_component(name: str = "user_features", **extra: Any) -> dict:
    """Every data type, two groups (types given per feature with the ``@`` suffix)."""
    return {
        "component": name,
        "component_id": "user_id",
        "fs_keys": [{"schema": "user_id", "col": "user_id"}],
        "fs_request": {
            "label": "user",
            "featureGroups": [
                {"label": "scalars", "data_type": "DataTypeFP32",
                 "features": [f"{f}@DataType{SCALAR_TYPES[f]}" for f in SCALARS]},
                {"label": "vectors", "data_type": "DataTypeFP32Vector",
                 "features": [f"{f}@DataType{t}" for f, t in VECTOR_TYPES.items()]},
            ],
        },
        "fs_flatten_resp_keys": ["user_id"],
        **extra,
    }  # fmt: skip


def pair_component(name: str = "pair_features", **extra: Any) -> dict:
    return {
        "component": name,
        "component_id": "pair_key",
        "composite_id": True,
        "fs_keys": [{"schema": "user_id", "col": "user_id"}, {"schema": "catalog_id", "col": "catalog_id"}],
        "fs_request": {
            "label": "pair",
            "featureGroups": [{"label": "aff", "data_type": "fp32", "features": ["score"]}],
        },
        "fs_flatten_resp_keys": ["user_id", "catalog_id"],
        **extra,
    }


def fetch_request(component: dict) -> FetchRequest:
    cfg = FeatureComponentConfig.model_validate(component)
    return FetchRequest(cfg.fs_request.label, tuple(k.schema_ for k in cfg.fs_keys), feature_specs(cfg))


def model_json(components: list[dict], cache: dict | None = None, id_col: str = "catalog_id") -> str:
    return json.dumps(
        {
            "dag_execution_config": {
                "component_dependency": {c["component"]: ["feature_initializer"] for c in components}
            },
            "component_config": {**(cache or {}), "feature_components": components},
            "response_config": {"features": [id_col]},
        }
    )


def _build(backend, cache: features.FeatureCache, version: int = 1, ttl: int = 0):  # type: ignore[no-untyped-def]
    comp_cfg = all_types_component(comp_cache_enabled=True, comp_cache_ttl=ttl)
    cc = {"cache_enabled": True, "cache_version": version, "cache_ttl": 300}
    model = ModelConfig.model_validate(json.loads(model_json([comp_cfg], cc)))
    metrics = Metrics()
    build = Build(model_id="m", model=model, config={}, metrics=metrics)
    comp = FeatureComponentType(backend=backend, cache=cache).build(
        FeatureComponentConfig.model_validate(comp_cfg), build
    )
    return comp, metrics


async def _run(comp, users: list[str]):  # type: ignore[no-untyped-def]
    ctx = make_context(comp, rows=len(users), texts={"user_id": users}, model_id="m")
    await comp.run(ctx)
    return ctx
