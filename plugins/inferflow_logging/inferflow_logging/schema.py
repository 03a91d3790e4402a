"""The logged feature schema of a model (go-compatibility §7.2) and the metadata byte (7.3).

Derived once per compiled model (cached by its digest) from the components' declared columns, in Go
Inferflow's order: feature-store outputs, numerix outputs, predator outputs (then outputs of any other
component section), then the inputs of numerix, predator and other non-feature components that are
not yet present. Deliberate difference from Go Inferflow: every entry is typed by the compiled model's
column spec (the type the matrix really holds); Go Inferflow forced model inputs to ``String``
(go-compatibility §10.D1), which made the logged bytes of numeric inputs a text re-encoding.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from inferflow_core.api import CompiledModel, DataType

FEATURE_SECTION = "feature_components"
# rank of each component section in Go Inferflow's schema order; unknown sections come last
_OUTPUT_RANK = {FEATURE_SECTION: 0, "numerix_components": 1, "predator_components": 2}
_INPUT_RANK = {"numerix_components": 0, "predator_components": 1}
FORMAT_CODES = {"proto": 0, "arrow": 1, "parquet": 2}  # Go Inferflow's formats: their codes are fixed
EXTENSION_CODE = 3  # any other format: its name follows the metadata byte (see ``metadata_byte``)
MAX_FORMAT_NAME = 64  # bytes of an extension format's name
MAX_VERSION = 15


@dataclass(frozen=True)
class SchemaEntry:
    name: str
    dtype: DataType

    @cached_property
    def is_var(self) -> bool:
        """Variable-length in the proto format (strings, vectors): uint16 length-prefixed."""
        return self.dtype.is_vector or not self.dtype.is_fixed_width

    @cached_property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    @cached_property
    def block_dtype(self) -> np.dtype | None:
        """The little-endian numpy dtype of a fixed-width column's values; None for strings."""
        if not self.dtype.is_fixed_width:
            return None
        return np.dtype(self.dtype.numpy_dtype).newbyteorder("<")


@dataclass(frozen=True)
class LogSchema:
    """What one model logs: target entries, slate entries, the id column and version warnings."""

    model_id: str
    entries: tuple[SchemaEntry, ...]
    slate_entries: tuple[SchemaEntry, ...]
    id_column: str
    cache_version: int

    def to_json(self, slate: bool = False) -> list[list[str]]:
        """``[[name, wire type name], ...]``: the form written next to log files and read by the CLI.

        Built once per schema (it is attached to every message); treat the result as read-only.
        """
        return self._described[1 if slate else 0]

    @cached_property
    def _described(self) -> tuple[list[list[str]], list[list[str]]]:
        return tuple(
            [[e.name, e.dtype.wire_name] for e in entries] for entries in (self.entries, self.slate_entries)
        )  # type: ignore[return-value]


def metadata_byte(compression_enabled: bool, cache_version: int, fmt: str) -> bytes:
    """``InferflowLog.metadata``: bit 0 compression flag, bits 2-5 the cache version masked to 4 bits,
    bits 6-7 the format code (go-compatibility §7.3).

    Go Inferflow's formats (proto 0, arrow 1, parquet 2) are that one byte, as Go writes it. Any other
    format is code 3, "extension", followed by its name in UTF-8: a Go reader sees a format it does not
    know (never one it would misread), and ``unpack_metadata`` names it.
    """
    code = FORMAT_CODES.get(fmt, EXTENSION_CODE)
    value = (1 if compression_enabled else 0) | ((cache_version & 0x0F) << 2) | (code << 6)
    if code != EXTENSION_CODE:
        return bytes([value])
    return bytes([value]) + fmt.encode("utf-8")


def unpack_metadata(meta: bytes) -> tuple[bool, int, str]:
    """Inverse of :func:`metadata_byte`: (compression flag, version, format name)."""
    byte = meta[0] if meta else 0
    code = byte >> 6
    if code == EXTENSION_CODE:
        name = meta[1:].decode("utf-8", errors="replace")
        fmt = name if name else "unknown(extension without a name)"
    else:
        fmt = {v: k for k, v in FORMAT_CODES.items()}[code]
    return bool(byte & 1), (byte >> 2) & 0x0F, fmt


def check_model_config(model: CompiledModel) -> list[tuple[str, str]]:
    """Problems that make a model's logs ambiguous, as (json path, message); empty when fine.

    The log metadata byte has 4 bits for ``cache_version``: a larger version is logged masked (its low
    4 bits) and counted. Config tooling can call this to reject such configs up front.
    """
    version = model.config.component_config.cache_version
    if version > MAX_VERSION:
        return [
            (
                "component_config.cache_version",
                f"model {model.model_id}: cache_version {version} does not fit the 4-bit log metadata "
                f"version (max {MAX_VERSION}); logs carry {version & 0x0F}",
            )
        ]
    return []


def _sections(model: CompiledModel) -> dict[str, str]:
    """component name -> the config section that declared it."""
    out: dict[str, str] = {}
    for section, entries in model.config.component_config.sections().items():
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("component"), str):
                out.setdefault(entry["component"], section)
    return out


def _typed(dtype: DataType) -> DataType:
    return DataType.STRING if dtype.scalar is DataType.UNKNOWN else dtype


def derive_schema(model: CompiledModel) -> LogSchema:
    """Build the schema of go-compatibility §7.2 with column-spec types (see the module docstring)."""
    sections = _sections(model)
    comps: list[tuple[str, Any]] = [
        (sections.get(name, "~"), comp) for name, comp in model.components.items()
    ]
    target: OrderedDict[str, DataType] = OrderedDict()
    slate: OrderedDict[str, DataType] = OrderedDict()

    def add(specs: Iterable[Any]) -> None:
        for spec in specs:
            store = slate if spec.slate else target
            if spec.name not in store:
                own = model.column_spec(spec.name, slate=spec.slate)
                store[spec.name] = _typed(own.dtype if own is not None else spec.dtype)

    by_output = sorted(comps, key=lambda sc: _OUTPUT_RANK.get(sc[0], 3))  # stable: config order kept
    for _section, comp in by_output:
        add(comp.outputs())
    inputs = [sc for sc in comps if sc[0] != FEATURE_SECTION]
    for _section, comp in sorted(inputs, key=lambda sc: _INPUT_RANK.get(sc[0], 2)):
        add(comp.required_columns())

    response = model.config.response_config
    entries = [SchemaEntry(n, t) for n, t in target.items()]
    if response.log_features:
        known = dict(target)
        entries = []
        for name in dict.fromkeys(response.features):
            spec = model.column_spec(name)
            dtype = known.get(name) or (_typed(spec.dtype) if spec is not None else DataType.STRING)
            entries.append(SchemaEntry(name, dtype))
        chosen = {e.name for e in entries}
        for comp in model.components.values():  # e.g. shadow scores: logged whatever log_features selects
            for spec in getattr(comp, "log_columns", tuple)():
                if not spec.slate and spec.name not in chosen:
                    chosen.add(spec.name)
                    entries.append(SchemaEntry(spec.name, known.get(spec.name, _typed(spec.dtype))))
    return LogSchema(
        model_id=model.model_id,
        entries=tuple(entries),
        slate_entries=tuple(SchemaEntry(n, t) for n, t in slate.items()),
        id_column=response.id_column,  # features[0], "id" when absent (as the Predict APIs)
        cache_version=model.config.component_config.cache_version,
    )


class SchemaCache:
    """Schemas by model digest (a reloaded config gets a new digest, hence a new schema)."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[str, str], LogSchema] = OrderedDict()

    def get(self, model: CompiledModel) -> tuple[LogSchema, bool]:
        """(schema, created now?)."""
        key = (model.model_id, model.digest)
        with self._lock:
            got = self._items.get(key)
            if got is not None:
                self._items.move_to_end(key)
                return got, False
        schema = derive_schema(model)
        with self._lock:
            self._items[key] = schema
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return schema, True
