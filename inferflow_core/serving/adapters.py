"""Request adapters: validate a Predict request and decode it into :class:`InitialData` (+ slates).

Feature values are decoded by their declared ``data_type`` (go-compatibility §6.1 ignores it; we do not):
with ``INFERFLOW_REQUEST_VALUE_ENCODING=text`` (what existing clients send, e.g. ``b"0.25"``) they are
parsed as text, with ``binary`` they are little-endian cells. A value that does not decode makes that
target's (pair's, slate's) ``error`` say so; it is never silently turned into a zero. Malformed requests
raise :class:`RequestError` (INVALID_ARGUMENT) naming the offending field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from ..components.feature_init import InitialData, TypedValues
from ..dtypes import DataType, cells_to_array, parse_text_column
from ..errors import RequestError, clip
from .budget import Budget, binary_counts, no_budget, text_counts
from .wire import Fields

TEXT, BINARY = "text", "binary"


@dataclass
class Decoded:
    """A decoded request: the initial data, slates (target indices) and per-row decode errors."""

    initial: InitialData
    slates: list[np.ndarray] | None = None
    target_errors: dict[int, str] = field(default_factory=dict)
    slate_errors: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # for ``request_error`` (e.g. ignored features)
    # the id column as decoded (name, ids) and as it arrived: the response echoes those bytes when the
    # matrix still holds these ids
    ids: tuple[str, list[str], Fields] | None = None


def _dtype(value: int, where: str) -> DataType:
    try:
        dt = DataType(value)
    except ValueError:
        raise RequestError(f"{where}.data_type: unknown data type {value}") from None
    return DataType.STRING if dt is DataType.UNKNOWN else dt


def _check_schema(schema: Sequence, field_name: str, budget: Budget) -> list[tuple[str, DataType]]:
    budget.check(f"{field_name}: features", len(schema), "max_features_per_target")
    out: list[tuple[str, DataType]] = []
    seen: set[str] = set()
    for i, feat in enumerate(schema):
        where = f"{field_name}[{i}]"
        if not feat.name:
            raise RequestError(f"{where}.name is empty")
        if feat.name in seen:
            raise RequestError(f"{where}.name: duplicate feature name {clip(feat.name)}")
        seen.add(feat.name)
        out.append((feat.name, _dtype(feat.data_type, where)))
    return out


def _charge(budget: Budget, cells: Sequence, dtype: DataType, where: str, binary: bool) -> None:
    """Charge a column to the request's budget before its (dense) array is allocated."""
    if not dtype.is_vector:
        budget.charge(where, len(cells))
        return
    if binary and dtype.is_fixed_width:
        counts = binary_counts(cells, dtype)
    elif binary:  # string vectors: ragged object cells, charged by their bytes
        counts = np.fromiter(map(len, cells), dtype=np.int64, count=len(cells))
    else:
        counts = text_counts(cells)
    if dtype.is_fixed_width:
        budget.vector_column(where, counts)
    else:
        budget.check(
            f"{where}: vector elements in one cell", int(counts.max(initial=0)), "max_vector_elements"
        )
        budget.charge(where, len(cells) + int(counts.sum()))


def decode_column(
    raw: list[bytes],
    dtype: DataType,
    encoding: str,
    name: str,
    errors: dict[int, str],
    what: str,
    budget: Budget | None = None,
) -> tuple[np.ndarray | None, TypedValues | None]:
    """Decode one feature column: ``(texts, None)`` for strings, ``(None, typed)`` otherwise.

    Rows whose non-empty value does not decode get an entry in ``errors``. The column is charged to
    ``budget`` (INVALID_ARGUMENT when over) before anything proportional to it is allocated.
    """
    budget = budget or no_budget()
    where = f"{what} feature {clip(name)}"
    if dtype is DataType.STRING:
        budget.charge(where, len(raw))
        texts = np.array([v.decode("utf-8", "surrogateescape") for v in raw], dtype=object)
        return texts, None
    if encoding == BINARY:
        _charge(budget, raw, dtype, where, binary=True)
        values, valid = cells_to_array(raw, dtype)
        text = None
        sent = np.fromiter((len(v) > 0 for v in raw), dtype=bool, count=len(raw))
    else:
        decoded = [v.decode("utf-8", "surrogateescape") for v in raw]
        _charge(budget, decoded, dtype, where, binary=False)
        values, valid = parse_text_column(decoded, dtype)
        text = np.array(decoded, dtype=object)
        sent = text != ""
        text[~valid] = ""  # a value that did not parse must not come back as a text fallback
    bad = np.flatnonzero(sent & ~valid)
    for row in bad.tolist():
        errors.setdefault(row, f"{where}: value does not decode as {dtype.wire_name} ({encoding})")
    return None, TypedValues(dtype, values, valid, text)


def _put(
    name: str, texts: np.ndarray | None, typed: TypedValues | None, into: InitialData, slate: bool
) -> None:
    text_map = into.slate_texts if slate else into.texts
    typed_map = into.slate_typed if slate else into.typed
    text_map.pop(name, None)
    typed_map.pop(name, None)
    if typed is not None:
        typed_map[name] = typed
    elif texts is not None:
        text_map[name] = texts


def _row_features(
    items: Sequence, schema: list[tuple[str, DataType]], field_name: str, schema_name: str
) -> list[list[bytes]]:
    """Transpose ``items[r].feature_values`` into per-feature columns, checking counts."""
    n = len(schema)
    values = [item.feature_values for item in items]
    counts = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    bad = np.flatnonzero(counts != n)
    if bad.size:
        r = int(bad[0])
        raise RequestError(
            f"{field_name}[{r}].feature_values has {counts[r]} values but {schema_name} has {n}"
        )
    if not n:
        return []
    return [list(col) for col in zip(*values, strict=True)]


def _context(
    request: object, rows: int, initial: InitialData, encoding: str, slate: bool, budget: Budget
) -> None:
    features = request.context_features  # type: ignore[attr-defined]
    budget.check("context_features", len(features), "max_context_features")
    seen: set[str] = set()
    for i, feat in enumerate(features):
        where = f"context_features[{i}]"
        if not feat.name:
            raise RequestError(f"{where}.name is empty")
        if feat.name in seen:
            raise RequestError(f"{where}.name: duplicate context feature {clip(feat.name)}")
        seen.add(feat.name)
        dtype = _dtype(feat.data_type, where)
        if dtype is DataType.STRING:  # the usual context feature (a user id): no column to decode
            budget.charge(f"context feature {clip(feat.name)}", 1)
            _put(feat.name, None, None, initial, slate)
            (initial.slate_texts if slate else initial.texts)[feat.name] = feat.value.decode(
                "utf-8", "surrogateescape"
            )
            continue
        errs: dict[int, str] = {}
        texts, typed = decode_column([feat.value], dtype, encoding, feat.name, errs, "context", budget)
        if typed is not None and rows > 1:  # repeated for every row below
            width = typed.values.shape[1] if typed.values.ndim == 2 else 1
            budget.charge(f"{where} (repeated for {rows} rows)", rows * max(1, width))
        if errs:
            raise RequestError(f"{where}.value does not decode as {dtype.wire_name} ({encoding})")
        if texts is not None:
            _put(feat.name, None, None, initial, slate)
            (initial.slate_texts if slate else initial.texts)[feat.name] = str(texts[0])
        elif typed is not None:
            reps = TypedValues(
                dtype,
                np.repeat(typed.values, rows, axis=0),
                np.repeat(typed.valid, rows),
                np.repeat(typed.text, rows) if typed.text is not None else None,
            )
            _put(feat.name, None, reps, initial, slate)


def _raw_targets_class() -> Any:
    """A shadow of ``PointWiseRequest.targets`` (field 5) as ``repeated bytes``.

    Parsing the same request bytes with it gives each target's serialized ``Target`` in one C call;
    a target that is only ``id`` (field 1, < 128 bytes) is ``0x0a <len> <id>``, checked with numpy.
    That replaces a Python wrapper object per target for reading the ids and checking that no
    target carries feature values when there is no target schema.
    """
    fd = descriptor_pb2.FileDescriptorProto(
        name="inferflow_core/raw_targets.proto", package="inferflow_core_raw", syntax="proto3"
    )
    msg = fd.message_type.add(name="RawTargets")
    msg.field.add(
        name="targets",
        number=5,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("inferflow_core_raw.RawTargets"))


_RawTargets = _raw_targets_class()


def _ids_only(raw: bytes | None) -> tuple[list[str], Fields] | None:
    """Target ids from the request bytes when every target is just a short ``id``, and the targets'
    bytes (``0x0a, length, id`` each); else None."""
    if raw is None:
        return None
    targets = list(_RawTargets.FromString(raw).targets)
    lens = np.fromiter(map(len, targets), dtype=np.int64, count=len(targets))
    if not lens.size or lens.min() < 3 or lens.max() > 129:
        return None
    buf = np.frombuffer(b"".join(targets), dtype=np.uint8)
    starts = np.cumsum(lens) - lens
    if not ((buf[starts] == 0x0A).all() and (buf[starts + 1] == lens - 2).all()):
        return None
    # valid UTF-8 (the full parse checked it): with every header made "\n\n", one decode and one split
    # give the ids, unless an id holds a "\n" itself
    seps = buf.copy()
    seps[starts + 1] = 0x0A
    if np.count_nonzero(seps == 0x0A) == 2 * len(targets):
        ids = seps.tobytes().decode("utf-8").split("\n")[2::2]
    else:
        ids = [t[2:].decode("utf-8") for t in targets]
    return ids, Fields(buf, lens - 2)


def decode_targets(
    request: object,
    id_column: str,
    encoding: str,
    payload: bytes | None = None,
    budget: Budget | None = None,
) -> Decoded:
    """Targets (+ context features) of any Predict request -> the target part of :class:`Decoded`.

    ``payload`` (the request's bytes) enables the fast path for requests whose targets carry only ids.
    """
    budget = budget or no_budget()
    targets = request.targets  # type: ignore[attr-defined]
    rows = len(targets)
    budget.check("targets", rows, "max_targets")
    budget.charge("targets", rows)
    schema = _check_schema(request.target_input_schema, "target_input_schema", budget)  # type: ignore[attr-defined]
    initial = InitialData(rows=rows)
    out = Decoded(initial)
    got = None if schema else _ids_only(payload)
    if got is not None:
        ids, fields = got
        initial.texts[id_column] = np.array(ids, dtype=object)
        out.ids = (id_column, ids, fields)
        _context(request, rows, initial, encoding, False, budget)
        return out
    initial.texts[id_column] = np.array([t.id for t in targets], dtype=object)
    cols = _row_features(targets, schema, "targets", "target_input_schema")
    for (name, dtype), raw in zip(schema, cols, strict=True):
        texts, typed = decode_column(raw, dtype, encoding, name, out.target_errors, "target", budget)
        _put(name, texts, typed, initial, slate=False)
    _context(request, rows, initial, encoding, False, budget)
    return out


def decode_pointwise(
    request: object,
    id_column: str,
    encoding: str,
    payload: bytes | None = None,
    budget: Budget | None = None,
) -> Decoded:
    if not request.targets:  # type: ignore[attr-defined]
        raise RequestError("targets: pointwise request must have at least one target")
    return decode_targets(request, id_column, encoding, payload, budget)


def _check_index(value: int, ntargets: int, where: str) -> None:
    if value < 0 or value >= ntargets:
        raise RequestError(f"{where} = {value} is out of range for {ntargets} targets")


def _slate_features(
    out: Decoded,
    items: Sequence,
    request: object,
    schema_field: str,
    items_field: str,
    encoding: str,
    budget: Budget,
) -> None:
    schema = _check_schema(getattr(request, schema_field), schema_field, budget)
    cols = _row_features(items, schema, items_field, schema_field)
    for (name, dtype), raw in zip(schema, cols, strict=True):
        texts, typed = decode_column(raw, dtype, encoding, name, out.slate_errors, items_field[:-1], budget)
        _put(name, texts, typed, out.initial, slate=True)
    _context(request, len(items), out.initial, encoding, True, budget)


def decode_pairwise(
    request: object,
    id_column: str,
    encoding: str,
    payload: bytes | None = None,
    budget: Budget | None = None,
) -> Decoded:
    budget = budget or no_budget()
    pairs = request.pairs  # type: ignore[attr-defined]
    if not pairs:
        raise RequestError("pairs: pairwise request must have at least one pair")
    if not request.targets:  # type: ignore[attr-defined]
        raise RequestError("targets: pairwise request must have at least one target")
    budget.check("pairs", len(pairs), "max_pairs")
    budget.charge("pairs", 2 * len(pairs))
    n = len(request.targets)  # type: ignore[attr-defined]
    count = len(pairs)
    idx = np.empty((count, 2), dtype=np.int64)
    idx[:, 0] = np.fromiter((p.first_target_index for p in pairs), dtype=np.int64, count=count)
    idx[:, 1] = np.fromiter((p.second_target_index for p in pairs), dtype=np.int64, count=count)
    bad = np.argwhere((idx < 0) | (idx >= n))
    if bad.size:
        i, side = (int(v) for v in bad[0])
        name = "first_target_index" if side == 0 else "second_target_index"
        _check_index(int(idx[i, side]), n, f"pairs[{i}].{name}")
    out = decode_targets(request, id_column, encoding, None, budget)
    out.slates = list(idx.astype(np.intp))
    _slate_features(out, pairs, request, "pair_input_schema", "pairs", encoding, budget)
    return out


def decode_slatewise(
    request: object,
    id_column: str,
    encoding: str,
    payload: bytes | None = None,
    budget: Budget | None = None,
) -> Decoded:
    budget = budget or no_budget()
    items = request.slates  # type: ignore[attr-defined]
    if not items:
        raise RequestError("slates: slatewise request must have at least one slate")
    if not request.targets:  # type: ignore[attr-defined]
        raise RequestError("targets: slatewise request must have at least one target")
    budget.check("slates", len(items), "max_slates")
    n = len(request.targets)  # type: ignore[attr-defined]
    sizes = np.fromiter((len(s.target_indices) for s in items), dtype=np.int64, count=len(items))
    budget.check("slates: target indices in one slate", int(sizes.max(initial=0)), "max_slate_size")
    budget.charge("slates", len(items) + int(sizes.sum()))
    flat = np.fromiter((t for s in items for t in s.target_indices), dtype=np.int64, count=int(sizes.sum()))
    bad = np.flatnonzero((flat < 0) | (flat >= n))
    if bad.size:
        at = int(bad[0])
        i = int(np.searchsorted(np.cumsum(sizes), at, side="right"))
        j = at - int(sizes[:i].sum())
        _check_index(int(flat[at]), n, f"slates[{i}].target_indices[{j}]")
    slates = np.split(flat.astype(np.intp), np.cumsum(sizes)[:-1]) if len(items) else []
    out = decode_targets(request, id_column, encoding, None, budget)
    out.slates = slates
    _slate_features(out, items, request, "slate_input_schema", "slates", encoding, budget)
    return out
