"""The built-in ``feature_initializer`` node (go-compatibility §5.1): lays out the request's matrix.

The serving adapters decode a request into :class:`InitialData` (Predict: one row per target, the id
column plus target and context features; RetrieveModelScore: one row per id of the first entity, with
single-id entities broadcast). This node writes that data into the matrix, then declares every column
the model's components produce (so consumers see "missing", not "unknown") and fills constant columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..config.model import FEATURE_INITIALIZER
from ..dtypes import DataType, DataTypeError
from ..matrix import ComponentMatrix
from .base import ColumnSpec, Component, RunContext
from .declarations import ColumnDecls


@dataclass
class TypedValues:
    """A request feature decoded by its declared type (binary or parsed text)."""

    dtype: DataType
    values: np.ndarray
    valid: np.ndarray
    text: np.ndarray | None = None  # the text as sent (text encoding), kept for string consumers


@dataclass
class InitialData:
    """A request decoded by a serving adapter: what the feature initializer writes."""

    rows: int
    texts: dict[str, Sequence[str] | np.ndarray | str] = field(default_factory=dict)
    typed: dict[str, TypedValues] = field(default_factory=dict)
    slate_texts: dict[str, Sequence[str] | np.ndarray | str] = field(default_factory=dict)
    slate_typed: dict[str, TypedValues] = field(default_factory=dict)


def write_initial(matrix: ComponentMatrix, texts: dict, typed: dict[str, TypedValues]) -> None:
    for name, value in texts.items():
        matrix.set_text(name, value)
    for name, tv in typed.items():
        matrix.declare(name, tv.dtype)
        matrix.set_column(name, tv.values, tv.valid)
        if tv.text is not None:
            matrix.column(name).text = tv.text


def declare_all(matrix: ComponentMatrix, specs: Sequence[ColumnSpec] | ColumnDecls) -> None:
    """Declare every column of ``specs`` (a request feature of another type is converted to the
    producer's type), then fill the constant columns."""
    plan = specs if isinstance(specs, ColumnDecls) else ColumnDecls.of(specs)
    for name in matrix.declare_missing(plan.decls):  # the columns the request sent
        spec = plan.by_name[name]
        try:
            matrix.declare(spec.name, spec.dtype)
        except DataTypeError:
            values, valid = matrix.read(spec.name, spec.dtype)
            col = matrix.column(spec.name)
            col.dtype, col.values, col.valid = spec.dtype, values, valid
    for name, constant in plan.constants:
        matrix.set_text(name, constant)


class FeatureInitComponent(Component):
    """Root of every DAG (``feature_initializer``). The model compiler builds one for each compiled model,
    with every column the model's components produce or require."""

    kind = FEATURE_INITIALIZER

    def __init__(
        self, model_id: str, target_columns: tuple[ColumnSpec, ...], slate_columns: tuple[ColumnSpec, ...]
    ) -> None:
        super().__init__(FEATURE_INITIALIZER, model_id)
        self.target_columns = target_columns
        self.slate_columns = slate_columns
        self.target_decls = ColumnDecls.of(target_columns)  # derived once per model version
        self.slate_decls = ColumnDecls.of(slate_columns)

    async def run(self, ctx: RunContext) -> None:
        initial: InitialData | None = ctx.initial
        if initial is not None:
            write_initial(ctx.matrix, initial.texts, initial.typed)
        declare_all(ctx.matrix, self.target_decls)
        if ctx.slate_matrix is not None:
            if initial is not None:
                write_initial(ctx.slate_matrix, initial.slate_texts, initial.slate_typed)
            declare_all(ctx.slate_matrix, self.slate_decls)
