"""Shared by feature-source plugins (OnFS, Feast): the columnar FeatureFrame and the feature cache.

Plugins reach these through ``inferflow_core.api``. The core itself never fetches features; these are the
data structure a feature component fills and the per-component entity cache (L1 in process, optional
``diskcache`` L2) any feature source can put in front of its store.
"""

from __future__ import annotations

from .cache import FeatureCache, Slab
from .config import DataTypeSpelling, FeatureNames, FsKey, split_typed_feature
from .frame import (
    Block,
    FeatureFrame,
    Slot,
    assemble,
    empty_objects,
    from_raw,
    missing_frame,
    raw_dtype,
    to_raw,
)
from .keys import EntityKeys, entity_keys, read_keys

__all__ = [
    "Block",
    "DataTypeSpelling",
    "EntityKeys",
    "FeatureCache",
    "FeatureFrame",
    "FeatureNames",
    "FsKey",
    "Slab",
    "Slot",
    "assemble",
    "empty_objects",
    "entity_keys",
    "from_raw",
    "missing_frame",
    "raw_dtype",
    "read_keys",
    "split_typed_feature",
    "to_raw",
]
