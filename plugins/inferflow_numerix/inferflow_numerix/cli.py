"""``inferflow-numerix serve --config-dir DIR --port P``: a Numerix-protocol server.

Also reachable as ``inferflow numerix ...`` through the ``inferflow.cli`` entry point.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from inferflow_core.api import net


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inferflow-numerix", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve /numerix.Numerix/Compute over the embedded evaluator")
    serve.add_argument(
        "--config-dir", required=True, help="config directory (<dir>/<app>/expression-config/<id>.json)"
    )
    serve.add_argument(
        "--port", type=int, default=8083, help="gRPC port (0 = any free port; the bound port is printed)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    serve.add_argument(
        "--app-name", default=os.environ.get("NUMERIX_APP_NAME", "numerix"), help="expression-config app name"
    )
    serve.add_argument(
        "--auth-token",
        default=os.environ.get("NUMERIX_SERVER_AUTHTOKEN", ""),
        help="require this numerix-auth-token metadata (default: no check)",
    )
    net.add_serve_arguments(serve)
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if not os.path.isdir(args.config_dir):
        print(f"inferflow-numerix: config directory {args.config_dir!r} does not exist", file=sys.stderr)
        return 2
    from .server import serve

    try:
        tls = net.server_tls(args)
    except net.TlsConfigError as exc:
        print(f"inferflow-numerix: {exc.message}", file=sys.stderr)
        return 2
    try:
        asyncio.run(
            serve(
                args.config_dir,
                args.port,
                args.host,
                args.app_name,
                args.auth_token,
                tls,
                args.metrics_port,
                args.grace,
            )
        )
    except OSError as exc:
        print(f"inferflow-numerix: {exc}", file=sys.stderr)
        return 1
    return 0


def main() -> None:
    sys.exit(run())
