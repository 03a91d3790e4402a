"""``inferflow logs read FILE...``: decode ``.binpb`` log files to JSON lines, one per logged entity.

Each line: model id, tracking id, user id, entity id, parent entity, created_at, format, version and
``features`` (name -> text in the core's one text format, ``null`` where missing). Schemas come from the
file's ``.schema.json`` sidecar (written by the file sink) or ``--schema``; without one, features are
keyed by schema position and shown as hex.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from inferflow_core.api import DataTypeError, bytes_to_text, parse_dtype

from .envelope import SLATE_EVENT_NAME, unwrap
from .formats import FORMATS
from .schema import SchemaEntry, unpack_metadata
from .sinks import read_delimited, schema_path

Schemas = dict[str, tuple[SchemaEntry, ...]]


def _entries(raw: list[list[str]]) -> tuple[SchemaEntry, ...]:
    return tuple(SchemaEntry(name, parse_dtype(dtype)) for name, dtype in raw)


def load_schemas(path: Path) -> Schemas:
    """A sidecar ``{"schemas": {key: [[name, type], ...]}}`` or a bare ``[[name, type], ...]`` (key ``*``)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, list):
        return {"*": _entries(data)}
    return {key: _entries(value) for key, value in data.get("schemas", {}).items()}


def _text(cell: bytes | None, entry: SchemaEntry) -> str | None:
    if cell is None:
        return None
    try:
        return bytes_to_text(cell, entry.dtype)
    except (DataTypeError, ValueError, UnicodeDecodeError):
        return "0x" + cell.hex()


def decode_record(value: bytes, schemas: Schemas) -> Iterator[dict[str, Any]]:
    """The JSON objects (one per entity) of one Kafka message value."""
    event, logged = unwrap(value)
    compression, version, fmt_name = unpack_metadata(logged.metadata)
    key = logged.model_config_id + ("#slate" if event.event_name == SLATE_EVENT_NAME else "")
    entries = schemas.get(key) or schemas.get("*")
    fmt = FORMATS.get(fmt_name)
    blobs = [f.encoded_features for f in logged.features]
    base = {
        "model_config_id": logged.model_config_id,
        "tracking_id": logged.tracking_id,
        "user_id": logged.user_id,
        "event_name": event.event_name,
        "created_at": event.created_at,
        "format": fmt_name,
        "version": version,
        "compression_enabled": compression,
        "parent_entity": list(logged.parent_entity),
    }
    if fmt is None or entries is None:
        for i, entity in enumerate(logged.entities):
            raw = blobs[i].hex() if fmt_name == "proto" and i < len(blobs) else None
            yield {**base, "entity": entity, "features": None, "raw": raw, "schema": "unknown"}
        return
    rows = fmt.decode(blobs, entries)
    if len(rows) != len(logged.entities):
        raise ValueError(f"{len(rows)} decoded rows for {len(logged.entities)} entities")
    for i, (entity, cells) in enumerate(zip(logged.entities, rows, strict=True)):
        line = {
            **base,
            "entity": entity,
            "features": {e.name: _text(c, e) for e, c in zip(entries, cells, strict=True)},
        }
        if fmt_name == "proto":
            line["all_present"] = bool(blobs[i][0]) if blobs[i] else False
        yield line


def read_files(paths: Sequence[str], schema_file: str | None = None) -> Iterator[dict[str, Any]]:
    forced = load_schemas(Path(schema_file)) if schema_file else None
    for name in paths:
        path = Path(name)
        side = schema_path(path)
        schemas = forced or (load_schemas(side) if side.exists() else {})
        for value in read_delimited(path):
            yield from decode_record(value, schemas)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inferflow logs", description="inference-log tools")
    sub = parser.add_subparsers(dest="command", required=True)
    read = sub.add_parser("read", help="decode .binpb log files to JSON lines")
    read.add_argument("files", nargs="+")
    read.add_argument("--schema", help="schema JSON (sidecar form or [[name, type], ...]) for every file")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        for line in read_files(args.files, args.schema):
            sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
