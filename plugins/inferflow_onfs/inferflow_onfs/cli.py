"""``inferflow-onfs serve --data DIR --port P``: the OnFS-protocol server over a Parquet directory.
``inferflow-onfs import --out DIR --label L --key K FILE...``: build that directory from CSV / Parquet.

Also reachable as ``inferflow onfs ...`` through the ``inferflow.cli`` entry-point group.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict

from inferflow_core.api import net


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inferflow-onfs", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve RetrieveFeatures / RetrieveDecodedResult over a local store")
    serve.add_argument("--data", required=True, help="directory holding <label>.parquet files (or folders)")
    serve.add_argument("--port", type=int, default=8089, help="0 picks a free port (printed on start)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    serve.add_argument("--caller-id", default="", help="require this online-feature-store-caller-id")
    serve.add_argument("--auth-token", default="", help="require this online-feature-store-auth-token")
    net.add_serve_arguments(serve)
    _import_parser(sub)
    return parser


def _import_parser(sub: argparse._SubParsersAction) -> None:
    from . import importer

    imp = sub.add_parser(
        "import",
        help="build the embedded store (<label>.parquet) from CSV / Parquet files",
        description=importer.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    imp.add_argument("files", nargs="+", help="CSV (header row) or Parquet files, all of one entity label")
    imp.add_argument("--out", required=True, help="store directory (INFERFLOW_ONFS_LOCAL_DIR)")
    imp.add_argument("--label", required=True, help="entity label: writes <out>/<label>.parquet")
    imp.add_argument("--key", action="append", required=True, help="key column (repeat for composite keys)")
    imp.add_argument(
        "--map", action="append", default=[], metavar="SRC=GROUP:FEATURE", help="rename a column"
    )
    imp.add_argument("--drop", action="append", default=[], metavar="COLUMN", help="leave a column out")
    imp.add_argument(
        "--type", action="append", default=[], metavar="COLUMN=TYPE", help="declare a type (fp32...)"
    )
    imp.add_argument("--group", help="group of columns without one (default: the label)")
    imp.add_argument("--overwrite", action="store_true", help="replace an existing <label>.parquet")
    imp.add_argument("--json", action="store_true", help="print the summary as JSON")


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise SystemExit(f"inferflow-onfs import: {flag} {item!r}: expected NAME=VALUE")
        out[key] = value
    return out


def run_import(args: argparse.Namespace) -> int:
    from .importer import StoreImportError, build_store

    try:
        summary = build_store(
            args.files, args.out, args.label, args.key, _pairs(args.map, "--map"), args.drop,
            _pairs(args.type, "--type"), args.group, args.overwrite,
        )  # fmt: skip
    except StoreImportError as exc:
        print(f"inferflow-onfs import: nothing written, {len(exc.problems)} problem(s):", file=sys.stderr)
        for line in exc.problems[:50]:
            print(f"  {line}", file=sys.stderr)
        if len(exc.problems) > 50:
            print(f"  ... {len(exc.problems) - 50} more", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"inferflow-onfs import: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(asdict(summary), indent=2))
        return 0
    print(f"wrote {summary.output}: {summary.rows} rows, key {', '.join(summary.keys)}, "
          f"{len(summary.features)} features, {summary.bytes:,} bytes in {summary.seconds}s")  # fmt: skip
    for name, dtype in summary.features.items():
        print(f"  {name:<32} {dtype}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(argv) if argv is not None else None)
    if args.command == "import":
        return run_import(args)
    if not os.path.isdir(args.data):
        print(f"inferflow-onfs: --data {args.data!r} is not a directory", file=sys.stderr)
        return 2
    from .server import serve

    try:
        tls = net.server_tls(args)
    except net.TlsConfigError as exc:
        print(f"inferflow-onfs: {exc.message}", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve(
                args.data,
                args.port,
                args.host,
                args.caller_id,
                args.auth_token,
                tls,
                args.metrics_port,
                args.grace,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
