"""Reliability settings (issue 19): input budgets, admission control, deadline margin, offloading.

A mixin of :class:`~inferflow_core.config.settings.ServiceSettings` (kept in its own module so the
budgets are found in one place). Every field has a safe default; each is read from ``INFERFLOW_<NAME>``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, BaseModel, Field


def _env(name: str) -> AliasChoices:
    return AliasChoices(f"INFERFLOW_{name.upper()}", name)


class ReliabilitySettings(BaseModel):
    """Budgets and load-shedding knobs. Over a budget a request is INVALID_ARGUMENT naming the limit."""

    max_targets: int = Field(100_000, gt=0, validation_alias=_env("max_targets"))
    """Targets per Predict request (RetrieveModelScore: ids of the first entity)."""
    max_pairs: int = Field(100_000, gt=0, validation_alias=_env("max_pairs"))
    """Pairs per PairWise request."""
    max_slates: int = Field(100_000, gt=0, validation_alias=_env("max_slates"))
    """Slates per SlateWise request."""
    max_slate_size: int = Field(10_000, gt=0, validation_alias=_env("max_slate_size"))
    """Target indices per slate."""
    max_context_features: int = Field(1_000, gt=0, validation_alias=_env("max_context_features"))
    """Context features per request (RetrieveModelScore: entities + entity features)."""
    max_features_per_target: int = Field(1_000, gt=0, validation_alias=_env("max_features_per_target"))
    """Feature values per target / pair / slate (the length of the input schema)."""
    max_vector_elements: int = Field(65_536, gt=0, validation_alias=_env("max_vector_elements"))
    """Elements of one vector cell."""
    max_decoded_cells: int = Field(8_000_000, gt=0, validation_alias=_env("max_decoded_cells"))
    """Cells a request may decode into, counting every element of the dense vector columns
    (rows x dimension, also for rows that sent nothing). 8 M elements is at most 64 MB of FP64
    (1,000 targets x 10 features x 256-element embeddings is 2.6 M)."""
    produced_feature_policy: Literal["reject", "ignore"] = Field(
        "reject", validation_alias=_env("produced_feature_policy")
    )
    """A request feature named like a column a component produces: ``reject`` (INVALID_ARGUMENT) or
    ``ignore`` (dropped, named in ``request_error``)."""
    max_in_flight: int = Field(256, ge=1, validation_alias=_env("max_in_flight"))
    """Requests executing at once per worker; more wait (bounded by ``max_queued`` and queue time)."""
    max_queued: int = Field(512, ge=0, validation_alias=_env("max_queued"))
    """Requests waiting for a slot per worker; beyond it RESOURCE_EXHAUSTED at once."""
    max_queue_ms: int = Field(500, ge=0, validation_alias=_env("max_queue_ms"))
    """Longest wait for a slot (also cut to the deadline minus ``min_work_ms``); then UNAVAILABLE."""
    min_work_ms: int = Field(10, ge=0, validation_alias=_env("min_work_ms"))
    """A request with less budget than this left when its turn comes is dropped (DEADLINE_EXCEEDED)
    before any work starts."""
    deadline_margin_ms: int = Field(50, ge=0, validation_alias=_env("deadline_margin_ms"))
    """Time kept back from the request's budget to build and send the partial answer (at most 20% of
    the budget). Backend calls are bounded by the remaining budget minus this margin."""
    offload_bytes: int = Field(256 * 1024, ge=0, validation_alias=_env("offload_bytes"))
    """Requests larger than this are decoded and their answers built in a worker thread, so the event
    loop keeps serving small requests (0 = always offload)."""
