"""The ``predator_components`` entry (go-compatibility §2.2), validated once at config load.

Type spellings are normalised here (``FP32``, ``DataTypeFP32``, ``fp32`` all work), so the request path
never looks at a type string again. Errors carry the JSON path below the component entry; the core
prefixes ``component_config.predator_components[i]``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from inferflow_core.api import DataType, DataTypeError, codecs


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class EndpointWeight(_Strict):
    endpoint: str = Field(min_length=1)
    percentage: int = Field(ge=0, le=100)


class RouteEntry(_Strict):
    """Horizon's routing shape: ``{model_name, model_endpoint, routing_percentage}`` (float percent)."""

    model_name: str = ""
    model_endpoint: str = Field(min_length=1)
    routing_percentage: float = Field(ge=0, le=100)


class ShadowEndpoint(_Strict):
    """A shadow model: for ``percentage`` % of requests the same input tensors go to ``endpoint`` after
    the response was sent; its scores are written to ``<shadow_column_prefix><label>:<column>``."""

    endpoint: str = Field(min_length=1)
    percentage: float = Field(ge=0, le=100)
    model_name: str = ""  # default: the component's model_name
    model_version: str = ""  # default: the component's model_version
    timeout_ms: int = Field(1000, ge=1)  # the whole shadow call (it has no request deadline)
    label: str = ""  # names its columns and metrics; default: model_name


class InputConfig(_Strict):
    name: str = Field(min_length=1)
    features: list[str] = Field(min_length=1)
    shape: list[int] = Field(min_length=1)
    data_type: str

    @field_validator("shape")
    @classmethod
    def _shape(cls, shape: list[int]) -> list[int]:
        if any(d == 0 or d < -1 for d in shape):
            raise ValueError("dims must be positive or -1")
        if shape.count(-1) > 1:
            raise ValueError("at most one dim may be -1")
        return shape


class OutputConfig(_Strict):
    name: str = Field(min_length=1)
    model_scores: list[str] = Field(min_length=1)
    model_scores_dims: list[list[int]]
    data_type: str

    @model_validator(mode="after")
    def _dims(self) -> OutputConfig:
        if len(self.model_scores_dims) != len(self.model_scores):
            raise ValueError(
                f"model_scores_dims has {len(self.model_scores_dims)} entries, "
                f"model_scores has {len(self.model_scores)}: they must match"
            )
        for k, dims in enumerate(self.model_scores_dims):
            if any(d == 0 or d < -1 for d in dims):
                raise ValueError(f"model_scores_dims[{k}]: dims must be positive or -1")
        if sum(d.count(-1) for d in self.model_scores_dims) > 1:
            raise ValueError("at most one -1 over all model_scores_dims of an output")
        return self


class PredatorConfig(_Strict):
    component: str = Field(min_length=1)
    component_id: str = Field(min_length=1)
    model_name: str = Field(min_length=1)
    model_version: str = "1"  # our extension; Go Inferflow always sends "1"
    model_end_point: str = ""
    model_end_points: list[EndpointWeight] = []
    route_config: list[RouteEntry] = []
    deadline: int = Field(0, ge=0)  # ms; 0 = only the request budget bounds the call
    batch_size: int = Field(0, ge=0)  # 0 = all rows in one call
    calibration: str = ""
    inputs: list[InputConfig] = Field(min_length=1)
    outputs: list[OutputConfig] = Field(min_length=1)
    slate_component: bool = False
    shadow_end_points: list[ShadowEndpoint] = []
    shadow_column_prefix: str = Field("shadow:", min_length=1)

    @model_validator(mode="after")
    def _shadows(self) -> PredatorConfig:
        labels = [s.label or s.model_name or self.model_name for s in self.shadow_end_points]
        if len(set(labels)) != len(labels):
            raise ValueError(
                f"shadow_end_points: labels {labels} repeat; give each shadow its own label or model_name"
            )
        if self.shadow_end_points and self.slate_component:
            raise ValueError("shadow_end_points: not supported on a slate component")
        return self

    @model_validator(mode="after")
    def _routing(self) -> PredatorConfig:
        total = sum(e.percentage for e in self.model_end_points)
        if total not in (0, 100):
            raise ValueError(f"model_end_points percentages sum to {total}; they must sum to 0 or 100")
        ftotal = sum(e.routing_percentage for e in self.route_config)
        if ftotal != 0 and not math.isclose(ftotal, 100.0, abs_tol=1e-6):
            raise ValueError(f"route_config routing_percentage values sum to {ftotal:g}; must be 0 or 100")
        if not (self.model_end_point or total or ftotal):
            raise ValueError("no endpoint: set model_end_point, model_end_points or route_config")
        return self


@dataclass(frozen=True)
class InputSpec:
    name: str
    features: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: DataType  # scalar element type (STRING for KServe BYTES)
    kserve: str  # datatype sent on the wire
    vector: DataType  # the vector form of ``dtype`` (precomputed: the request path compares it per column)

    @functools.cached_property
    def known_elements(self) -> int:
        return math.prod(d for d in self.shape if d > 0)


@dataclass(frozen=True)
class ScoreSlice:
    column: str
    dims: tuple[int, ...]
    dtype: DataType  # column type: scalar when dims are () or (1,), else the vector type

    @functools.cached_property
    def size(self) -> int:
        """Elements per row; -1 when the dims hold a -1 (resolved from the response)."""
        return -1 if -1 in self.dims else math.prod(self.dims) if self.dims else 1


@dataclass(frozen=True)
class OutputSpec:
    name: str
    slices: tuple[ScoreSlice, ...]

    @functools.cached_property
    def sizes(self) -> tuple[int, ...]:
        """Elements per row of each slice (-1: resolved from the response)."""
        return tuple(s.size for s in self.slices)


def _input_dtype(spelling: str) -> DataType:
    try:
        return codecs.from_kserve(spelling)
    except DataTypeError:
        dt = codecs.parse_dtype(spelling)
    if dt.is_vector:
        raise DataTypeError(f"{spelling!r} is a vector type; input data_type must be an element type")
    dt.kserve_name  # noqa: B018 - raises for types KServe cannot carry (FP8)
    return dt


def resolve(cfg: PredatorConfig) -> tuple[list[InputSpec], list[OutputSpec], list[tuple[str, str]]]:
    """Normalise the type spellings; returns (inputs, outputs, problems as (json path, message))."""
    problems: list[tuple[str, str]] = []
    inputs: list[InputSpec] = []
    for i, inp in enumerate(cfg.inputs):
        try:
            dt = _input_dtype(inp.data_type)
        except DataTypeError as exc:
            problems.append((f"inputs[{i}].data_type", str(exc)))
            continue
        inputs.append(
            InputSpec(inp.name, tuple(inp.features), tuple(inp.shape), dt, dt.kserve_name, dt.vector)
        )
    outputs: list[OutputSpec] = []
    for o, out in enumerate(cfg.outputs):
        try:
            scalar = codecs.parse_dtype(out.data_type).scalar
        except DataTypeError as exc:
            problems.append((f"outputs[{o}].data_type", str(exc)))
            continue
        if scalar is DataType.UNKNOWN:
            problems.append((f"outputs[{o}].data_type", "DataTypeUnknown cannot hold model scores"))
            continue
        slices = tuple(
            ScoreSlice(col, tuple(dims), scalar if list(dims) in ([], [1]) else scalar.vector)
            for col, dims in zip(out.model_scores, out.model_scores_dims, strict=True)
        )
        outputs.append(OutputSpec(out.name, slices))
    return inputs, outputs, problems


def routes(cfg: PredatorConfig, model_route_config: Any = None) -> list[tuple[str, float]]:
    """Weighted endpoints: ``model_end_points``, else the component's ``route_config``, else the model's
    top-level Horizon ``route_config`` entries for this model name. Empty = use ``model_end_point``."""
    if cfg.model_end_points and sum(e.percentage for e in cfg.model_end_points):
        return [(e.endpoint, float(e.percentage)) for e in cfg.model_end_points]
    entries = [e for e in cfg.route_config if e.model_name in ("", cfg.model_name)]
    if not entries and isinstance(model_route_config, list):
        for raw in model_route_config:
            try:
                entry = RouteEntry.model_validate(raw)
            except ValueError:
                continue
            if entry.model_name == cfg.model_name:
                entries.append(entry)
        total = sum(e.routing_percentage for e in entries)
        if not math.isclose(total, 100.0, abs_tol=1e-6):
            entries = []
    if entries and sum(e.routing_percentage for e in entries):
        return [(e.model_endpoint, e.routing_percentage) for e in entries]
    return []
