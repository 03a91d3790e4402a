"""``inferflow logs read FILE|DIR...``: decode ``.binpb`` log files to JSON lines, one per logged entity.

Each line: model id, tracking id, user id, entity id, parent entity, created_at, format, version and
``features`` (name -> text in the core's one text format, ``null`` where missing). Schemas come from the
file's ``.schema.json`` sidecar (written by the file sink) or ``--schema``; without one, features are
keyed by schema position and shown as hex. A directory means every ``.binpb`` file under it;
``.schema.json`` sidecars given as files are skipped. ``--format csv|parquet`` (with ``--output``) writes
one row per entity and one column per feature, for pandas.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from inferflow_core.api import DataTypeError, codecs

from .envelope import SLATE_EVENT_NAME, unwrap
from .formats import FORMATS
from .hookspecs import FORMATS_HOOK
from .schema import SchemaEntry, unpack_metadata
from .sinks import read_delimited, schema_path

Schemas = dict[str, tuple[SchemaEntry, ...]]


def _entries(raw: list[list[str]]) -> tuple[SchemaEntry, ...]:
    return tuple(SchemaEntry(name, codecs.parse_dtype(dtype)) for name, dtype in raw)


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
        return codecs.bytes_to_text(cell, entry.dtype)
    except (DataTypeError, ValueError, UnicodeDecodeError):
        return "0x" + cell.hex()


def installed_formats() -> dict[str, Any]:
    """Every log format the installed plugins register (the built-ins too)."""
    from inferflow_core.api import Runtime

    formats: dict[str, Any] = dict(FORMATS)
    formats.update(Runtime().registry.registered(FORMATS_HOOK))
    return formats


def decode_record(
    value: bytes, schemas: Schemas, formats: Mapping[str, Any] | None = None
) -> Iterator[dict[str, Any]]:
    """The JSON objects (one per entity) of one Kafka message value, decoded by the format its metadata
    names (``formats``: name -> format, the built-ins when not given)."""
    formats = FORMATS if formats is None else formats
    event, logged = unwrap(value)
    compression, version, fmt_name = unpack_metadata(logged.metadata)
    key = logged.model_config_id + ("#slate" if event.event_name == SLATE_EVENT_NAME else "")
    entries = schemas.get(key) or schemas.get("*")
    fmt = formats.get(fmt_name)
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
        why = "no schema" if fmt is not None else f"log format {fmt_name!r} is not installed"
        if fmt is None:
            why += f" (installed: {', '.join(sorted(formats)) or 'none'})"
        for i, entity in enumerate(logged.entities):
            raw = blobs[i].hex() if fmt_name == "proto" and i < len(blobs) else None
            yield {
                **base,
                "entity": entity,
                "features": None,
                "raw": raw,
                "schema": "unknown",
                "undecoded": why,
            }
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


def log_files(names: Sequence[str]) -> list[Path]:
    """The log files named (a directory: its ``*.binpb`` files, recursively); sidecars are skipped."""
    out: list[Path] = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            out += sorted(p for p in path.rglob("*.binpb") if p.is_file())
        elif path.name.endswith(".schema.json"):
            print(f"skipping {path}: a schema sidecar, not a log file", file=sys.stderr)
        elif not path.exists():
            raise FileNotFoundError(f"{path}: no such file or directory")
        else:
            out.append(path)
    return out


def read_files(
    paths: Sequence[str], schema_file: str | None = None, formats: Mapping[str, Any] | None = None
) -> Iterator[dict[str, Any]]:
    """Every record of the log files, decoded by any installed format (``formats`` when given)."""
    forced = load_schemas(Path(schema_file)) if schema_file else None
    formats = installed_formats() if formats is None else formats
    for path in log_files(paths):
        side = schema_path(path)
        schemas = forced or (load_schemas(side) if side.exists() else {})
        for value in read_delimited(path):
            yield from decode_record(value, schemas, formats)


def flat(line: dict[str, Any]) -> dict[str, Any]:
    """One record as a flat row: the envelope fields, then one column per feature (text)."""
    row = {k: v for k, v in line.items() if k != "features"}
    row["parent_entity"] = ",".join(line.get("parent_entity") or [])
    row.update(line.get("features") or {})
    return row


def write(lines: Iterator[dict[str, Any]], fmt: str, output: str | None) -> int:
    """Write the records as JSON lines (stdout or ``output``), CSV or Parquet; returns the record count."""
    if fmt == "jsonl":
        out = open(output, "w", encoding="utf-8") if output else sys.stdout  # noqa: SIM115
        n = 0
        try:
            for line in lines:
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
                n += 1
        finally:
            if output:
                out.close()
        return n
    if not output:
        raise ValueError(f"--format {fmt} needs --output FILE")
    rows = [flat(line) for line in lines]
    columns = list(dict.fromkeys(k for row in rows for k in row))
    if fmt == "csv":
        import csv

        with open(output, "w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({c: pa.array([row.get(c) for row in rows]) for c in columns})
        pq.write_table(table, output)
    return len(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inferflow logs", description="inference-log tools")
    sub = parser.add_subparsers(dest="command", required=True)
    read = sub.add_parser(
        "read",
        help="decode .binpb log files to JSON lines, CSV or Parquet",
        description=(__doc__ or "").split("\n\n")[0],
    )
    read.add_argument("files", nargs="+", help=".binpb log files or directories holding them")
    read.add_argument("--schema", help="schema JSON (sidecar form or [[name, type], ...]) for every file")
    read.add_argument(
        "--format", choices=("jsonl", "csv", "parquet"), default="jsonl", help="output format (default jsonl)"
    )
    read.add_argument("--output", "-o", help="write to this file (required for csv and parquet)")
    read.add_argument(
        "--json", action="store_true", help="JSON lines on stdout (the default; = --format jsonl)"
    )
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.json and args.format != "jsonl":
        parser.error("--json and --format csv/parquet exclude each other")
    try:
        n = write(read_files(args.files, args.schema), args.format, args.output)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.output:
        print(f"wrote {n} records to {args.output}", file=sys.stderr)
    return 0
