"""Where features come from: one interface, two backends (the OnFS gRPC client and the embedded store).

A backend gets the unique, non-empty entity keys of one request and returns a :class:`FeatureFrame` with one
row per key (missing entities and failed batches = missing rows) plus the failures it contained, by kind.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from inferflow_core.api import DataType, features

from .config import FeatureSpec
from .store import LabelTable, LocalStore


@dataclass(frozen=True)
class FetchRequest:
    """What one feature component asks for (fixed at build time)."""

    label: str
    keys_schema: tuple[str, ...]
    specs: tuple[FeatureSpec, ...]

    def __hash__(self) -> int:
        # used as a dict key on every call (query templates, row templates): hash the 65 specs only once
        got = self.__dict__.get("_hash")
        if got is None:
            got = hash((self.label, self.keys_schema, self.specs))
            object.__setattr__(self, "_hash", got)
        return got

    @functools.cached_property
    def dtypes(self) -> tuple[DataType, ...]:
        return tuple(s.dtype for s in self.specs)

    @property
    def groups(self) -> list[tuple[str, list[str]]]:
        """``(group label, wire feature labels)`` in first-seen group order."""
        out: dict[str, list[str]] = {}
        for spec in self.specs:
            out.setdefault(spec.group, []).append(spec.wire_label)
        return list(out.items())


@dataclass
class FetchOutcome:
    """``frame`` has one row per key, or — when ``rows`` is set (the embedded store) — key ``i`` is row
    ``rows[i]`` of ``frame`` and ``missing_row`` is an all-missing row, so the caller can gather once."""

    frame: features.FeatureFrame
    failures: list[tuple[str, str]] = field(default_factory=list)  # (kind, message)
    failed_all: bool = False
    calls: int = 0
    rows: np.ndarray | None = None
    missing_row: int = -1

    def per_key(self) -> features.FeatureFrame:
        """The frame with one row per key."""
        return self.frame if self.rows is None else self.frame.take(self.rows)


class Backend(Protocol):
    name: str

    def check(self, request: FetchRequest) -> None:
        """Build-time validation; raise ValueError/LookupError with a message naming what is wrong."""

    async def fetch(
        self, request: FetchRequest, keys: list[tuple[str, ...]], timeout: float | None
    ) -> FetchOutcome: ...


class LocalBackend:
    """The embedded store: typed numpy blocks taken directly, no bytes on the way."""

    name = "local"

    def __init__(self, store: LocalStore) -> None:
        self.store = store
        self._resolved: dict[FetchRequest, tuple[features.FeatureFrame, LabelTable]] = {}

    def _columns(self, request: FetchRequest) -> list[tuple[str, DataType | None]]:
        return [(f"{s.group}:{s.name}", s.dtype) for s in request.specs]

    def check(self, request: FetchRequest) -> None:
        self.store.prepared(request.label, request.keys_schema, self._columns(request))

    def resolve(self, request: FetchRequest) -> tuple[features.FeatureFrame, LabelTable]:
        """The request's frame (its features over every stored entity plus the missing last row) and the
        label's table, looked up once per request layout."""
        got = self._resolved.get(request)
        if got is None:
            frame = self.store.prepared(request.label, request.keys_schema, self._columns(request))
            got = self._resolved[request] = (frame, self.store.table(request.label, request.keys_schema))
        return got

    async def fetch(
        self, request: FetchRequest, keys: list[tuple[str, ...]], timeout: float | None
    ) -> FetchOutcome:
        frame, table = self.resolve(request)
        return FetchOutcome(frame, rows=table.positions(keys), missing_row=frame.n - 1)
