"""The ``feast_components`` entry: the OnFS ``feature_components`` entry, read against a Feast store.

The keys are the same as OnFS's so a model swaps one store for the other by renaming its section:
``fs_keys[].schema`` is a Feast join key, ``fs_keys[].col`` the matrix column holding it; ``fs_request.label``
names the entity (it only prefixes column names); each feature group is a Feast feature view (``label``, or
``view`` when the view's name differs: Feast view names are unique per project, OnFS group names per entity)
with the data type its features land in. Columns are ``<prefix><label>:<group label>:<feature>``. A feature
written ``name@DataTypeX`` is read as ``name`` and lands typed X (Feast has no server-side quantisation).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from inferflow_core.api import DataType
from inferflow_core.api import features as fs


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FeatureViewConfig(_Strict):
    label: str = Field(min_length=1)
    view: str = ""  # the Feast feature view when its name differs from ``label`` (view names are global)
    data_type: fs.DataTypeSpelling
    features: fs.FeatureNames = Field(min_length=1)


class FsRequest(_Strict):
    label: str = Field(min_length=1)
    feature_groups: list[FeatureViewConfig] = Field(min_length=1, alias="featureGroups")


class FeastComponentConfig(_Strict):
    component: str = Field(min_length=1)
    component_id: str = ""
    composite_id: bool = False
    fs_keys: list[fs.FsKey] = Field(min_length=1)
    fs_request: FsRequest
    fs_flatten_resp_keys: list[str] = []  # accepted for a drop-in swap with OnFS; unused (as there)
    comp_cache_enabled: bool = False
    comp_cache_ttl: int = Field(default=0, ge=0)
    col_name_prefix: str = ""


@dataclass(frozen=True)
class FeatureSpec:
    """One requested feature: its Feast reference (``view:feature``), matrix column and type."""

    view: str
    name: str
    column: str
    dtype: DataType

    @property
    def ref(self) -> str:
        return f"{self.view}:{self.name}"


def feature_specs(cfg: FeastComponentConfig) -> tuple[FeatureSpec, ...]:
    out = []
    for group in cfg.fs_request.feature_groups:
        for feature in group.features:
            name, typed = fs.split_typed_feature(feature)
            dtype = typed or group.data_type
            column = f"{cfg.col_name_prefix}{cfg.fs_request.label}:{group.label}:{name}"
            out.append(FeatureSpec(group.view or group.label, name, column, dtype))
    return tuple(out)
