"""RetrieveModelScore (go-compatibility §6.5): the legacy entity API, with Go Inferflow's defects fixed.

Entities become string columns (first entity's ids = the rows; single-id entities broadcast),
``USER-ID`` / ``APP-VERSION-CODE`` metadata become entities ``user_id`` / ``app_version_code``, and
the response is a header row plus one text row per input row. No entities is INVALID_ARGUMENT
(Go Inferflow panics); an entity or feature whose value count fits neither the rows nor broadcasting is
INVALID_ARGUMENT naming it (Go Inferflow silently drops features).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import mmh3

from ..components.feature_init import InitialData
from ..engine.compile import CompiledModel
from ..errors import RequestError, clip
from ..matrix import ComponentMatrix
from .budget import Budget, no_budget

METADATA_ENTITIES = (("user-id", "user_id"), ("app-version-code", "app_version_code"))


def enabled_for_user_today(user_id: str, percentage: int, now: float | None = None) -> bool:
    """Go Inferflow's user-day sampling: ``abs(int32(murmur3_32(user_id + DDMMYYYY))) % 100 < pct``."""
    if percentage <= 0:
        return False
    if percentage >= 100:
        return True
    day = time.strftime("%d%m%Y", time.localtime(now))
    h = mmh3.hash(user_id + day, 0, signed=True)
    return abs(h) % 100 < percentage


def decode_retrieve(
    request: object, metadata: Mapping[str, Sequence[str]], budget: Budget | None = None
) -> InitialData:
    """Validate the request and lay out its rows (entity ids and per-id features as text)."""
    budget = budget or no_budget()
    entities = list(request.entities)  # type: ignore[attr-defined]
    budget.check("entities", len(entities), "max_context_features")
    budget.check("entity features", sum(len(e.features) for e in entities), "max_features_per_target")
    if not request.model_config_id:  # type: ignore[attr-defined]
        raise RequestError("model_config_id is empty")
    if not entities:
        raise RequestError("entities: at least one entity is required")
    first = entities[0]
    rows = len(first.ids)
    if rows == 0:
        raise RequestError(f"entities[0] ({clip(first.entity)}).ids is empty")
    budget.check("entities[0].ids", rows, "max_targets")
    initial = InitialData(rows=rows)
    seen: set[str] = set()
    columns: dict[str, list[str]] = {}
    for i, ent in enumerate(entities):
        if not ent.entity:
            raise RequestError(f"entities[{i}].entity is empty")
        if ent.entity in seen:
            continue  # first occurrence wins (go-compatibility §6.5 step 2)
        seen.add(ent.entity)
        if len(ent.ids) not in (1, rows):
            raise RequestError(
                f"entities[{i}] ({clip(ent.entity)}) has {len(ent.ids)} ids; "
                f"expected 1 or {rows} (entities[0])"
            )
        columns[ent.entity] = list(ent.ids)
    for i, ent in enumerate(entities):
        for j, feat in enumerate(ent.features):
            if feat.name in seen:
                continue
            seen.add(feat.name)
            if len(feat.ids_feature_value) != rows:
                raise RequestError(
                    f"entities[{i}].features[{j}] ({clip(feat.name)}) has "
                    f"{len(feat.ids_feature_value)} values for {rows} rows"
                )
            columns[feat.name] = list(feat.ids_feature_value)
    for header, name in METADATA_ENTITIES:
        values = list(metadata.get(header, ()))
        if values and name not in seen:
            seen.add(name)
            columns[name] = values if len(values) == rows else [values[0]] * rows
    budget.charge("entities", rows * len(columns))
    for name, values in columns.items():
        initial.texts[name] = values[0] if len(values) == 1 and rows != 1 else values
    return initial


def response_columns(model: CompiledModel, user_id: str) -> list[str]:
    rc = model.config.response_config
    if rc.model_schema_features_perc and enabled_for_user_today(user_id, rc.model_schema_features_perc):
        cols = list(model.model_inputs)
        return cols + [f for f in rc.features if f not in cols]
    return list(rc.features)


def component_rows(matrix: ComponentMatrix, columns: list[str]) -> list[list[str]]:
    """Header row + one text row per matrix row (missing cells and unknown columns are ``""``)."""
    texts = [matrix.texts(c) if matrix.has(c) else [""] * matrix.rows for c in columns]
    return [columns, *([list(r) for r in zip(*texts, strict=True)] if texts else [[]] * matrix.rows)]
