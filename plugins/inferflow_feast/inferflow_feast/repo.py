"""Make a Feast repository from Parquet feature files: ``feature_store.yaml`` (local provider, SQLite online
store), one entity per table, feature views over Parquet sources, ``apply`` and ``materialize`` through the
SDK. Used by the tests, ``inferflow feast demo`` and the benchmark; also a starting point for a real repo.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

YAML = """project: {project}
registry: {root}/data/registry.db
provider: local
online_store:
  type: sqlite
  path: {root}/data/online_store.db
offline_store:
  type: file
entity_key_serialization_version: 3
"""
EVENT_TS = "event_timestamp"
STAMP = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class EntityTable:
    """An entity (``name``, join key ``key``) and its feature views: view name -> ``{feature: column of
    table}``. ``table`` holds the key column and the feature columns (any Arrow types Feast maps)."""

    name: str
    key: str
    table: pa.Table
    views: Mapping[str, Mapping[str, str]]


def feast_type(typ: pa.DataType) -> Any:
    from feast import types as ft

    if pa.types.is_list(typ) or pa.types.is_fixed_size_list(typ) or pa.types.is_large_list(typ):
        return ft.Array(feast_type(typ.value_type))
    table = {
        pa.float32(): ft.Float32, pa.float64(): ft.Float64, pa.float16(): ft.Float32,
        pa.int8(): ft.Int32, pa.int16(): ft.Int32, pa.int32(): ft.Int32, pa.int64(): ft.Int64,
        pa.uint8(): ft.Int32, pa.uint16(): ft.Int32, pa.uint32(): ft.Int64,
        pa.bool_(): ft.Bool, pa.string(): ft.String, pa.large_string(): ft.String, pa.binary(): ft.Bytes,
    }  # fmt: skip
    if typ not in table:
        raise TypeError(f"no Feast type for Arrow {typ}")
    return table[typ]


def _castable(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Feast stores narrower types widened (its value types are 32/64-bit): write them widened."""
    typ = column.type
    widen = {
        pa.float16(): pa.float32(), pa.int8(): pa.int32(), pa.int16(): pa.int32(), pa.uint8(): pa.int32(),
        pa.uint16(): pa.int32(), pa.uint32(): pa.int64(),
    }  # fmt: skip
    if pa.types.is_fixed_size_list(typ):
        column = column.cast(pa.list_(typ.value_type))
        typ = column.type
    if pa.types.is_list(typ) and typ.value_type in widen:
        return column.cast(pa.list_(widen[typ.value_type]))
    return column.cast(widen[typ]) if typ in widen else column


def build_repo(root: Path, entities: Sequence[EntityTable], project: str = "inferflow") -> Path:
    """Write the repository under ``root``, apply it and materialize every view; returns ``root``."""
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType

    root = Path(root).resolve()
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "feature_store.yaml").write_text(YAML.format(project=project, root=root))
    objects: list[Any] = []
    for ent in entities:
        key_type = ent.table.schema.field(ent.key).type
        value_type = ValueType.INT64 if pa.types.is_integer(key_type) else ValueType.STRING
        entity = Entity(name=ent.name, join_keys=[ent.key], value_type=value_type)
        objects.append(entity)
        n = ent.table.num_rows
        for view, features in ent.views.items():
            cols = {ent.key: ent.table.column(ent.key)}
            cols.update({feature: _castable(ent.table.column(col)) for feature, col in features.items()})
            cols[EVENT_TS] = pa.chunked_array([pa.array([STAMP] * n, type=pa.timestamp("us", tz="UTC"))])
            path = root / "data" / f"{view}.parquet"
            pq.write_table(pa.table(cols), path)
            schema = [Field(name=f, dtype=feast_type(cols[f].type)) for f in features]
            source = FileSource(name=f"{view}_source", path=str(path), timestamp_field=EVENT_TS)
            objects.append(
                FeatureView(name=view, entities=[entity], schema=schema, source=source, ttl=dt.timedelta(0))
            )
    store = FeatureStore(repo_path=str(root))
    store.apply(objects)
    store.materialize(STAMP - dt.timedelta(days=1), STAMP + dt.timedelta(days=1))
    return root
