"""Where features come from: one interface, two backends (the OnFS gRPC client and the embedded store).

A backend gets the unique, non-empty entity keys of one request and returns a :class:`FeatureFrame` with one
row per key (missing entities and failed batches = missing rows) plus the failures it contained, by kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from inferflow_core.api import DataType

from .config import FeatureSpec
from .frame import FeatureFrame
from .store import LocalStore


@dataclass(frozen=True)
class FetchRequest:
    """What one feature component asks for (fixed at build time)."""

    label: str
    keys_schema: tuple[str, ...]
    specs: tuple[FeatureSpec, ...]

    @property
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
    frame: FeatureFrame
    failures: list[tuple[str, str]] = field(default_factory=list)  # (kind, message)
    failed_all: bool = False
    calls: int = 0


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

    def _columns(self, request: FetchRequest) -> list[tuple[str, DataType | None]]:
        return [(f"{s.group}:{s.name}", s.dtype) for s in request.specs]

    def check(self, request: FetchRequest) -> None:
        self.store.prepared(request.label, request.keys_schema, self._columns(request))

    async def fetch(
        self, request: FetchRequest, keys: list[tuple[str, ...]], timeout: float | None
    ) -> FetchOutcome:
        frame = self.store.prepared(request.label, request.keys_schema, self._columns(request))
        table = self.store.table(request.label, request.keys_schema)
        return FetchOutcome(frame.take(table.positions(keys)))
