"""Request features against the model's columns (issue 19): a request may feed the inputs of a model,
never overwrite what its components produce, and a value must fit the column it lands in.

A request feature named like a produced column is rejected (INVALID_ARGUMENT) or, with
``INFERFLOW_PRODUCED_FEATURE_POLICY=ignore``, dropped and named in ``request_error``. A vector sent for a
scalar column (or the reverse) is INVALID_ARGUMENT: there is no cell to make of it.
"""

from __future__ import annotations

from ..components.feature_init import InitialData
from ..dtypes import DataType
from ..errors import RequestError, clip
from .responses import ResponsePlan


def _check_maps(
    texts: dict, typed: dict, produced: dict[str, str], types: dict[str, DataType], policy: str, keep: str
) -> list[str]:
    notes: list[str] = []
    for name in [n for n in (*texts, *typed) if n in produced and n != keep]:
        what = f"request feature {clip(name)} is produced by component {clip(produced[name])}"
        if policy != "ignore":
            raise RequestError(f"{what}; a request cannot overwrite it (INFERFLOW_PRODUCED_FEATURE_POLICY)")
        texts.pop(name, None)
        typed.pop(name, None)
        notes.append(f"{what}: ignored")
    for name, tv in typed.items():
        want = types.get(name)
        if want is None or (want.scalar is DataType.STRING and not want.is_vector):
            continue
        if tv.dtype.is_vector != want.is_vector:
            raise RequestError(
                f"request feature {clip(name)}: sent as {tv.dtype.wire_name} but the model reads it as "
                f"{want.wire_name}"
            )
    return notes


def check_inputs(plan: ResponsePlan, initial: InitialData, policy: str) -> list[str]:
    """Apply the rules above to a decoded request in place; returns notes for ``request_error``."""
    notes = _check_maps(initial.texts, initial.typed, plan.producers, plan.types, policy, plan.id_column)
    notes += _check_maps(
        initial.slate_texts, initial.slate_typed, plan.slate_producers, plan.slate_types, policy, ""
    )
    return notes
