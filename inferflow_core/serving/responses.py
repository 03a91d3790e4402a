"""Response builders: matrix columns -> Predict response wire bytes (go-compatibility §6.1-6.3).

* ``*_output_schema`` lists ``response_config.features`` with the type of the producing component's
  column (normalised once per compiled model), else the matrix column's type, else ``DataTypeString``.
* ``output_values`` are the little-endian cells of each column (``matrix.cells``; STRING as UTF-8),
  ``b""`` where missing.
* An item whose output cell is missing because its producer failed gets ``error`` naming the component;
  every item of an output whose producer depends (transitively, in the DAG) on a failed component gets
  ``error`` naming that component (its score was computed from missing inputs); a request with any
  contained failure gets ``request_error``. Messages carry no file-system paths (see ``sanitize``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from ..components.base import ComponentFailure, RunContext
from ..dtypes import DataType
from ..engine.compile import CompiledModel
from ..errors import sanitize
from ..matrix import ComponentMatrix
from . import wire
from .adapters import Decoded


@dataclass(frozen=True)
class ResponsePlan:
    """Per compiled model: which response features live where, their types and producers."""

    all_features: tuple[str, ...]
    target_features: tuple[str, ...]  # pair/slate APIs: features that are not slate columns
    slate_features: tuple[str, ...]
    types: dict[str, DataType]
    slate_types: dict[str, DataType]
    producers: dict[str, str]
    slate_producers: dict[str, str]
    id_column: str = ""
    upstream: dict[str, frozenset[str]] = field(default_factory=dict)  # component -> its DAG ancestors
    outputs_of: dict[str, tuple[str, ...]] = field(default_factory=dict)  # component -> its target columns
    schema_bytes: dict[tuple, bytes] = field(default_factory=dict)  # (field, schema) -> wire bytes

    def schema_field(self, number: int, schema: list[tuple[str, DataType]]) -> bytes:
        """``wire.schema_field`` memoised per plan: the schema of a model rarely varies by request."""
        key = (number, *schema)
        got = self.schema_bytes.get(key)
        if got is None:
            got = wire.schema_field(number, schema)
            if len(self.schema_bytes) < 64:
                self.schema_bytes[key] = got
        return got


def _plan(model: CompiledModel) -> ResponsePlan:
    features = tuple(model.config.response_config.features)
    types = {s.name: s.dtype for s in model.target_columns}
    slate_types = {s.name: s.dtype for s in model.slate_columns}
    producers: dict[str, str] = {}
    slate_producers: dict[str, str] = {}
    for comp in model.components.values():
        for spec in comp.outputs():
            (slate_producers if spec.slate else producers)[spec.name] = comp.name
    wanted = set(features)
    slate_features = tuple(s.name for s in model.slate_columns if s.name in wanted)
    target_features = tuple(f for f in features if f not in slate_types)
    upstream: dict[str, frozenset[str]] = {}
    for node in model.graph.order:
        acc: set[str] = set()
        for dep in model.graph.prerequisites.get(node, ()):
            acc |= {dep, *upstream.get(dep, ())}
        upstream[node] = frozenset(acc)
    outputs_of = {
        name: tuple(s.name for s in comp.outputs() if not s.slate and s.constant is None)
        for name, comp in model.components.items()
    }
    return ResponsePlan(
        features,
        target_features,
        slate_features,
        types,
        slate_types,
        producers,
        slate_producers,
        model.config.response_config.id_column,
        upstream,
        outputs_of,
    )


class PlanCache:
    """Bounded cache of response plans, keyed by the compiled model object (a new version = a new plan)."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._plans: OrderedDict[int, tuple[CompiledModel, ResponsePlan]] = OrderedDict()

    def get(self, model: CompiledModel) -> ResponsePlan:
        hit = self._plans.get(id(model))
        if hit is not None and hit[0] is model:
            return hit[1]
        plan = _plan(model)
        self._plans[id(model)] = (model, plan)
        while len(self._plans) > self.size:
            self._plans.popitem(last=False)
        return plan


def _columns(
    matrix: ComponentMatrix,
    names: tuple[str, ...],
    types: dict[str, DataType],
    ids: tuple[str, list[str], wire.Fields] | None = None,
) -> tuple[list[tuple[str, DataType]], list[wire.Cells]]:
    schema: list[tuple[str, DataType]] = []
    cols: list[wire.Cells] = []
    for name in names:
        dtype = types.get(name)
        present = matrix.has(name)
        if dtype is None:
            dtype = matrix.column(name).dtype if present else DataType.STRING
            if dtype is DataType.UNKNOWN:
                dtype = DataType.STRING
        schema.append((name, dtype))
        if not present:
            cols.append([b""] * matrix.rows)
        elif dtype is DataType.STRING:
            cols.append(_string_cells(matrix, name, ids))
        elif dtype.is_fixed_width and matrix.rows:
            values, valid = matrix.read(name, dtype)
            block_ok = valid.all() and (values.ndim == 1 or values.shape[1] > 0)
            cols.append(
                wire.fixed_block(values, dtype, matrix.rows) if block_ok else matrix.cells(name, dtype)
            )
        else:
            cols.append(matrix.cells(name, dtype))
    return schema, cols


def _string_cells(
    matrix: ComponentMatrix, name: str, ids: tuple[str, list[str], wire.Fields] | None = None
) -> wire.Cells:
    """UTF-8 cells of a STRING column (inline: the generic converter calls a function per cell).

    ``ids``: a column's texts as decoded from the request and the fields they arrived in; when the
    column still holds those texts (equal lists: their UTF-8 is those bytes), the fields are the cells.
    """
    values, valid = matrix.read(name, DataType.STRING)
    if valid.all():
        texts = values.tolist()
        if ids is not None and ids[0] == name and texts == ids[1]:
            return ids[2]
        try:
            return wire.Joined.of_ascii(texts) or [v.encode("utf-8", "surrogateescape") for v in texts]
        except (AttributeError, TypeError):  # a non-str cell (bytes): let the converter handle it
            pass
    return matrix.cells(name, DataType.STRING)


def _failure_text(f: ComponentFailure) -> str:
    return sanitize(f"component {f.component!r} failed ({f.kind}): {f.message}", 512)


def _affected_rows(ctx: RunContext, columns: tuple[str, ...], rows: int) -> range | list[int]:
    """Rows missing any output of a failed component (all rows when none of its outputs is known)."""
    matrix = ctx.matrix
    known = [c for c in columns if matrix.has(c)]
    if not known or matrix.rows != rows:
        return range(rows)
    missing = np.zeros(rows, dtype=bool)
    for name in known:
        missing |= ~np.asarray(matrix.column(name).valid, dtype=bool)
    return np.flatnonzero(missing).tolist()


def _item_errors(
    ctx: RunContext,
    names: tuple[str, ...],
    cols: list[wire.Cells],
    producers: dict[str, str],
    base: dict[int, str],
    plan: ResponsePlan,
    rows: int,
) -> dict[int, str]:
    errors = dict(base)
    if not ctx.failures:
        return errors
    failed = {f.component: f for f in ctx.failures}
    for name, cells in zip(names, cols, strict=True):
        comp = producers.get(name)
        if not comp:
            continue
        f = failed.get(comp)
        if f is None:  # the producer ran, but on the missing outputs of a failed ancestor
            for cause in (failed[a] for a in sorted(plan.upstream.get(comp, ())) if a in failed):
                text = f"{_failure_text(cause)}; output {name!r} computed without its outputs"
                for r in _affected_rows(ctx, plan.outputs_of.get(cause.component, ()), rows):
                    errors.setdefault(r, text)
            continue
        if isinstance(cells, np.ndarray | wire.Fields):  # a block (the request's ids) has every cell
            continue
        text = f"{_failure_text(f)}; output {name!r} missing"
        if isinstance(cells, wire.Joined):  # its empty cells from the lengths, no bytes per cell
            empty: list[int] = np.flatnonzero(cells.sizes == 0).tolist()
        else:
            empty = [r for r, cell in enumerate(cells) if not cell]
        for r in empty:
            errors.setdefault(r, text)
    return errors


def _target_errors(ctx: RunContext, decoded: Decoded) -> dict[int, str]:
    """Per-target errors of the request's decoding, then those components gave (``ctx.target_error``)."""
    if not ctx.target_errors:
        return decoded.target_errors
    return {**ctx.target_errors, **decoded.target_errors}


def request_error(ctx: RunContext, decoded: Decoded) -> str:
    parts = [_failure_text(f) for f in ctx.failures]
    parts += decoded.notes
    parts += ctx.notes
    if decoded.target_errors:
        parts.append(f"{len(decoded.target_errors)} target(s) have feature values that do not decode")
    if ctx.target_errors:
        parts.append(f"{len(ctx.target_errors)} target(s) have missing features (see their error)")
    if decoded.slate_errors:
        parts.append(f"{len(decoded.slate_errors)} pair(s)/slate(s) have feature values that do not decode")
    return "; ".join(parts)


@dataclass
class Part:
    """One table of a response: schema, per-column cells (or fixed-width blocks), per-row errors."""

    schema: list[tuple[str, DataType]]
    cols: list[wire.Cells]
    errors: dict[int, str]
    rows: int


def pointwise_parts(
    plan: ResponsePlan, ctx: RunContext, decoded: Decoded, echo_ids: bool = False
) -> tuple[list[Part], str]:
    """The targets of a PointWise response, and its ``request_error`` (before any wire format).
    ``echo_ids``: the id column's cells may be the request's own fields (:class:`wire.Fields`)."""
    names = plan.all_features
    schema, cols = _columns(ctx.matrix, names, plan.types, decoded.ids if echo_ids else None)
    errors = _item_errors(
        ctx, names, cols, plan.producers, _target_errors(ctx, decoded), plan, ctx.matrix.rows
    )
    return [Part(schema, cols, errors, ctx.matrix.rows)], request_error(ctx, decoded)


def build_pointwise(plan: ResponsePlan, ctx: RunContext, decoded: Decoded) -> bytes:
    (part,), error = pointwise_parts(plan, ctx, decoded, echo_ids=True)
    return (
        plan.schema_field(1, part.schema)
        + wire.score_messages(2, part.cols, part.errors, part.rows)
        + wire.string_field(3, error)
    )


def grouped_parts(plan: ResponsePlan, ctx: RunContext, decoded: Decoded) -> tuple[list[Part], str]:
    """Pairs / slates, then targets (absent when the model answers no target feature), and
    ``request_error`` of a PairWise or SlateWise response."""
    slate = ctx.slate_matrix
    if slate is not None and plan.slate_features:
        s_schema, s_cols = _columns(slate, plan.slate_features, plan.slate_types)
        s_errors = _item_errors(
            ctx,
            plan.slate_features,
            s_cols,
            plan.slate_producers,
            decoded.slate_errors,
            plan,
            slate.rows,
        )
        parts = [Part(s_schema, s_cols, s_errors, slate.rows)]
    else:
        rows = slate.rows if slate is not None else 0
        parts = [Part([], [], dict(decoded.slate_errors), rows)]
    if plan.target_features:
        t_schema, t_cols = _columns(ctx.matrix, plan.target_features, plan.types)
        t_errors = _item_errors(
            ctx,
            plan.target_features,
            t_cols,
            plan.producers,
            _target_errors(ctx, decoded),
            plan,
            ctx.matrix.rows,
        )
        parts.append(Part(t_schema, t_cols, t_errors, ctx.matrix.rows))
    return parts, request_error(ctx, decoded)


def build_grouped(plan: ResponsePlan, ctx: RunContext, decoded: Decoded) -> bytes:
    """PairWise and SlateWise share one layout: field 1 = pair/slate scores, 2 = target scores,
    3 = target schema, 4 = pair/slate schema, 5 = request_error."""
    parts, error = grouped_parts(plan, ctx, decoded)
    groups = parts[0]
    out = wire.score_messages(1, groups.cols, groups.errors, groups.rows)
    if len(parts) > 1:
        targets = parts[1]
        out += wire.score_messages(2, targets.cols, targets.errors, targets.rows)
        out += plan.schema_field(3, targets.schema)
    out += plan.schema_field(4, groups.schema)
    return out + wire.string_field(5, error)
