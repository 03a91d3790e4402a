"""Config pieces every feature-source plugin's entry shares (OnFS ``feature_components``, Feast
``feast_components``): entity keys, a data type written in any spelling, and feature names that may carry
an ``@DataTypeX`` suffix (the feature lands typed X).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ..dtypes import DataType, DataTypeError, parse_dtype


def split_typed_feature(name: str) -> tuple[str, DataType | None]:
    """``"price@DataTypeFP16"`` -> ``("price", FP16)``; ``"price"`` -> ``("price", None)``.
    Raises ``ValueError`` naming the feature for an empty name or an unknown type suffix."""
    base, _, suffix = name.rpartition("@") if "@" in name else (name, "", "")
    if not base:
        raise ValueError(f"feature {name!r} has an empty name")
    if not suffix:
        return base, None
    try:
        return base, parse_dtype(suffix)
    except DataTypeError as exc:
        raise ValueError(f"feature {name!r}: {exc}") from None


def _dtype(value: object) -> DataType:
    if isinstance(value, DataType):
        return value
    try:
        return parse_dtype(str(value))
    except DataTypeError as exc:
        raise ValueError(str(exc)) from None


def _feature_names(value: object) -> object:
    if isinstance(value, list):
        for name in value:
            split_typed_feature(str(name))
    return value


DataTypeSpelling = Annotated[DataType, BeforeValidator(_dtype)]
"""A config field holding a data type in any accepted spelling (``FP32``, ``DataTypeFP32``, ``fp32``)."""

FeatureNames = Annotated[list[str], BeforeValidator(_feature_names)]
"""Feature names of a group; each may end in ``@DataTypeX``."""


class FsKey(BaseModel):
    """One entity key: ``schema`` is the store's key name, ``col`` the matrix column holding its values."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: str = Field(alias="schema", min_length=1)
    col: str = Field(min_length=1)
