"""The feature initializer's column declarations, derived once per model version (when the model's root
node is built), so a request only fills arrays."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..dtypes import DataType
from .base import ColumnSpec


@dataclass(frozen=True)
class ColumnDecls:
    """The columns the feature initializer declares in one matrix: name -> type in order (a name given
    twice: its last spec), each name's spec, and the constant columns with their text."""

    specs: tuple[ColumnSpec, ...]
    decls: Mapping[str, DataType]
    by_name: Mapping[str, ColumnSpec]
    constants: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, specs: Sequence[ColumnSpec]) -> ColumnDecls:
        specs = tuple(specs)
        return cls(
            specs,
            {s.name: s.dtype for s in specs},
            {s.name: s for s in specs},
            tuple((s.name, s.constant) for s in specs if s.constant is not None),
        )
