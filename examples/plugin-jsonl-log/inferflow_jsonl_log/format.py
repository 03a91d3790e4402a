"""The ``jsonl`` log format: one JSON object per logged entity, ``{feature name: value}``.

A value is the core's text of the cell (``inferflow_core.api.codecs.bytes_to_text``), a vector a JSON list of
its elements' texts, a missing cell ``null``; decoding turns each back into the same wire cell. Each
entity's object is one ``features`` blob of the message (as the proto format's rows), so the blobs of
a message, one per line, are JSON Lines.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from inferflow_logging.api import Chunk, LogTable, SchemaEntry

from inferflow_core.api import DataType, codecs


def _value(cell: bytes, dtype: DataType) -> Any:
    if not dtype.is_vector:
        return codecs.bytes_to_text(cell, dtype)
    scalar = dtype.scalar
    if scalar is DataType.STRING:
        return codecs.decode_string_vector(cell)
    size = scalar.itemsize
    return [codecs.bytes_to_text(cell[i : i + size], scalar) for i in range(0, len(cell), size)]


def _cell(value: Any, dtype: DataType) -> bytes | None:
    if value is None:
        return None
    if not dtype.is_vector:
        return codecs.text_to_bytes(str(value), dtype) or None
    if dtype.scalar is DataType.STRING:
        return codecs.encode_string_vector([str(v) for v in value]) or None
    return b"".join(codecs.text_to_bytes(str(v), dtype.scalar) for v in value) or None


class JsonLinesFormat:
    """See the module docstring. Not one of Go Inferflow's formats: no ``code`` (the extension code)."""

    name = "jsonl"

    def bad_rows(self, table: LogTable) -> np.ndarray:
        return np.zeros(table.rows, dtype=bool)  # every cell has a text

    def encode(self, table: LogTable, batch_size: int) -> list[Chunk]:
        names = [(e.name, e.dtype) for e in table.entries]
        blobs = []
        for row in table.cells():
            obj = {n: None if c is None else _value(c, t) for (n, t), c in zip(names, row, strict=True)}
            blobs.append(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        size = max(1, batch_size)
        return [Chunk(table.entities[i : i + size], blobs[i : i + size]) for i in range(0, table.rows, size)]

    def decode(self, features: list[bytes], entries: tuple[SchemaEntry, ...]) -> list[list[bytes | None]]:
        rows = []
        for blob in features:
            obj = json.loads(blob)
            if not isinstance(obj, dict):
                raise ValueError(f"a jsonl log row is a JSON object, got {type(obj).__name__}")
            rows.append([_cell(obj.get(e.name), e.dtype) for e in entries])
        return rows
