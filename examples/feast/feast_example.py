"""The CTR example with its features in Feast instead of the embedded OnFS store.

``build_example_repo`` turns the example's Parquet feature files (``<label>.parquet``, columns
``<group>:<feature>``) into a Feast repository — entity ``<label>`` keyed by ``<label>_id``, one feature
view ``<label>_<group>`` per group — applied and materialized into the SQLite online store.
``to_feast`` rewrites a model config's ``feature_components`` into ``feast_components``: the same entries,
each group naming its view. Matrix columns (``user:A:u00`` ...) do not change, so nothing downstream does.

Used by ``demo.py`` (``make demo-feast``) and ``benchmarks/feast_triton.py``; runs in .venv-feast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from inferflow_feast.repo import EntityTable, build_repo

MODEL_REL = "inferflow/services/inferflow/model-config/config-map"


def build_example_repo(features_dir: Path, root: Path) -> Path:
    """A Feast repo under ``root`` from ``features_dir/{user,catalog}.parquet``; returns ``root``."""
    tables = []
    for label in ("user", "catalog"):
        table = pq.read_table(features_dir / f"{label}.parquet")
        key = f"{label}_id"
        views: dict[str, dict[str, str]] = {}
        for name in table.column_names:
            if ":" in name:
                group, feature = name.split(":", 1)
                views.setdefault(f"{label}_{group}", {})[feature] = name
        tables.append(EntityTable(label, key, table, views))
    return build_repo(root, tables, project="inferflow_example")


def to_feast(model: dict[str, Any]) -> dict[str, Any]:
    """The model config with every ``feature_components`` entry moved to ``feast_components``."""
    cc = model["component_config"]
    entries = cc.pop("feature_components", [])
    for entry in entries:
        label = entry["fs_request"]["label"]
        for group in entry["fs_request"]["featureGroups"]:
            group["view"] = f"{label}_{group['label']}"
    cc["feast_components"] = entries
    return model


def rewrite_config_dir(config_dir: Path) -> list[str]:
    """Apply :func:`to_feast` to every model config of a config directory; the models it changed."""
    changed = []
    for path in sorted((config_dir / MODEL_REL).glob("*.json")):
        model = json.loads(path.read_text())
        if model.get("component_config", {}).get("feature_components"):
            path.write_text(json.dumps(to_feast(model), indent=2))
            changed.append(path.stem)
    return changed
