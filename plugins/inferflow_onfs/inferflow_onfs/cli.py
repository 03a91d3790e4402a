"""``inferflow-onfs serve --data DIR --port P``: the OnFS-protocol server over a Parquet directory.

Also reachable as ``inferflow onfs ...`` through the ``inferflow.cli`` entry-point group.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inferflow-onfs", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve RetrieveFeatures / RetrieveDecodedResult over a local store")
    serve.add_argument("--data", required=True, help="directory holding <label>.parquet files (or folders)")
    serve.add_argument("--port", type=int, default=8089, help="0 picks a free port (printed on start)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--caller-id", default="", help="require this online-feature-store-caller-id")
    serve.add_argument("--auth-token", default="", help="require this online-feature-store-auth-token")
    serve.add_argument("--tls-cert", default="", help="serve TLS with this certificate chain (PEM)")
    serve.add_argument("--tls-key", default="", help="... and this private key (PEM)")
    serve.add_argument("--tls-client-ca", default="", help="require client certificates from this CA (mTLS)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(argv) if argv is not None else None)
    if not os.path.isdir(args.data):
        print(f"inferflow-onfs: --data {args.data!r} is not a directory", file=sys.stderr)
        return 2
    from inferflow_core.api import ServerTls, TlsConfigError

    from .server import serve

    tls = None
    if args.tls_cert or args.tls_key or args.tls_client_ca:
        try:
            tls = ServerTls(args.tls_cert, args.tls_key, args.tls_client_ca or None, what="--tls-*")
        except TlsConfigError as exc:
            print(f"inferflow-onfs: {exc.message}", file=sys.stderr)
            return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.data, args.port, args.host, args.caller_id, args.auth_token, tls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
