"""The ``numerix_components`` entry (go-compatibility §2.2) and its load-time checks.

Go Inferflow crashes on a ``score_mapping`` key without ``@TYPE``; here every problem is a ConfigError
naming the JSON path (``score_mapping.<key>``), reported when the model config is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from inferflow_core.api import ConfigError, DataType, DataTypeError, codecs


class NumerixConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    component: str = Field(min_length=1)
    component_id: str = Field(min_length=1)
    score_col: str = Field(min_length=1)
    data_type: str = "DataTypeFP32"
    score_mapping: dict[str, str]
    compute_id: str = Field(min_length=1)
    slate_component: bool = False

    @field_validator("compute_id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


@dataclass(frozen=True)
class Variable:
    """One expression variable: its name in the expression, declared type and source matrix column."""

    name: str
    declared: DataType
    column: str


@dataclass(frozen=True)
class CheckedConfig:
    raw: NumerixConfig
    data_type: DataType
    variables: tuple[Variable, ...]  # config order (= the schema order sent to a remote Numerix)


def check(cfg: NumerixConfig, model_id: str) -> CheckedConfig:
    """Normalise types and validate the mapping; raises ConfigError listing every problem."""
    problems: list[tuple[str, str]] = []
    try:
        data_type = codecs.parse_dtype(cfg.data_type)
        if data_type.is_vector or data_type is DataType.UNKNOWN:
            problems.append(("data_type", f"{cfg.data_type!r}: the score must be a scalar type"))
    except DataTypeError as exc:
        data_type = DataType.FP32
        problems.append(("data_type", str(exc)))
    variables: list[Variable] = []
    seen: dict[str, str] = {}
    for key, column in cfg.score_mapping.items():
        path = f"score_mapping.{key}"
        name, sep, type_name = key.rpartition("@")
        if not sep:
            problems.append(
                (path, f"key {key!r} has no '@<DataType>' suffix (expected e.g. '{key}@DataTypeFP32')")
            )
            continue
        if not name:
            problems.append((path, f"key {key!r} has an empty variable name"))
            continue
        if not column:
            problems.append((path, "the matrix column name is empty"))
            continue
        try:
            declared = codecs.parse_dtype(type_name)
        except DataTypeError as exc:
            problems.append((path, str(exc)))
            continue
        if name in seen:
            problems.append((path, f"variable {name!r} is also mapped by {seen[name]!r}"))
            continue
        seen[name] = key
        variables.append(Variable(name, declared, column))
    if problems:
        raise ConfigError(model_id, problems)
    return CheckedConfig(cfg, data_type, tuple(variables))
