"""The ``feature_components`` entry (go-compatibility §2.2) and the feature layout derived from it at load.

Unknown keys are rejected; ``data_type`` spellings are normalised with ``api.codecs.parse_dtype``. A feature
written ``name@DataTypeX`` is requested from the store verbatim (OnFS quantises it) and lands in column
``...:name`` typed X — Go Inferflow registered that column but never filled it (go-compatibility §5.2, step
9).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from inferflow_core.api import DataType
from inferflow_core.api import features as fs


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FeatureGroupConfig(_Strict):
    label: str = Field(min_length=1)
    data_type: fs.DataTypeSpelling
    features: fs.FeatureNames = []


class FsRequest(_Strict):
    label: str = Field(min_length=1)
    feature_groups: list[FeatureGroupConfig] = Field(default=[], alias="featureGroups")


class FeatureComponentConfig(_Strict):
    component: str = Field(min_length=1)
    component_id: str = ""
    composite_id: bool = False
    fs_keys: list[fs.FsKey] = Field(min_length=1)
    fs_request: FsRequest
    fs_flatten_resp_keys: list[str] = []
    comp_cache_enabled: bool = False
    comp_cache_ttl: int = Field(default=0, ge=0)
    col_name_prefix: str = ""
    # extension: "default" (Go) = missing features take the consumers' defaults (counted);
    # "error" = a target with a missing entity or feature also gets a per-target error naming it
    missing_features: Literal["default", "error"] = "default"


@dataclass(frozen=True)
class FeatureSpec:
    """One requested feature: where it comes from, what it is called on the wire and in the matrix."""

    group: str
    wire_label: str  # sent to the store verbatim (may carry "@DataTypeX")
    name: str  # feature name without the suffix
    column: str  # matrix column: prefix + label:group:name
    dtype: DataType


def feature_specs(cfg: FeatureComponentConfig) -> tuple[FeatureSpec, ...]:
    """Features in group/feature order. Empty if the first group has none (go-compatibility §5.2, step 4)."""
    groups = cfg.fs_request.feature_groups
    if not groups or not groups[0].features:
        return ()
    out = []
    for group in groups:
        for feature in group.features:
            name, typed = fs.split_typed_feature(feature)
            dtype = typed or group.data_type
            column = f"{cfg.col_name_prefix}{cfg.fs_request.label}:{group.label}:{name}"
            out.append(FeatureSpec(group.label, feature, name, column, dtype))
    return tuple(out)
