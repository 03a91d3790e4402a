"""A Numerix-protocol gRPC server over the embedded evaluator (``inferflow-numerix serve``).

Expressions come from a config directory laid out like the core's (file ``<dir>/<key>.json`` holds the
value of ``/config/<key>``): ``<dir>/<app>/expression-config/<compute_id>.json`` = ``{"expression": ...}``.
The directory is polled and changes apply to the next call. Bad requests and expression errors are
answered with the protocol's ``Error`` message (like Numerix); a wrong auth token, when the server was
given one, is rejected with UNAUTHENTICATED.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import signal
from collections.abc import Callable
from pathlib import Path

import grpc

from inferflow_core.api import DirectorySource, ServerTls

from ._proto import numerix_pb2 as pb
from ._proto import numerix_pb2_grpc as pb_grpc
from .client import AUTH_TOKEN_HEADER
from .language import ExpressionError
from .programs import ProgramCache
from .settings import expression_prefix
from .wire import WireError, decode_request, encode_response, error_response

log = logging.getLogger("inferflow.numerix.server")


class ExpressionStore:
    """The expression-config subtree of a config directory, reloaded when files change."""

    def __init__(self, config_dir: str | Path, app_name: str = "numerix", interval: float = 0.2) -> None:
        self.prefix = expression_prefix(app_name)
        self.source = DirectorySource(config_dir, [self.prefix], interval=interval)
        self.tree: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.tree = await self.source.load()
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        async for tree in self.source.watch():
            self.tree = tree
            log.info("expression config reloaded: %d expression(s)", len(tree))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def get(self, compute_id: str) -> str | None:
        return self.tree.get(self.prefix + compute_id)


class NumerixServicer(pb_grpc.NumerixServicer):
    def __init__(self, expressions: Callable[[str], str | None], auth_token: str = "") -> None:
        self.expressions = expressions
        self.auth_token = auth_token
        self.programs = ProgramCache()

    async def Compute(
        self, request: pb.NumerixRequestProto, context: grpc.aio.ServicerContext
    ) -> pb.NumerixResponseProto:
        if self.auth_token:
            sent = dict(context.invocation_metadata() or ()).get(AUTH_TOKEN_HEADER)
            if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), self.auth_token.encode()):
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"missing or wrong {AUTH_TOKEN_HEADER}")
        try:
            req = decode_request(request)
            program = self.programs.get(req.compute_id, self.expressions(req.compute_id))
            scores = program.evaluate(req.columns, req.rows, req.dtype.numpy_dtype)
            return encode_response(req, scores)
        except (WireError, ExpressionError) as exc:
            return error_response(str(exc))


async def serve(
    config_dir: str | Path,
    port: int,
    host: str = "127.0.0.1",
    app_name: str = "numerix",
    auth_token: str = "",
    tls: ServerTls | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM. Prints ``inferflow-numerix serving on HOST:PORT`` when ready.
    With ``tls``: TLS, and mTLS when it has a client CA."""
    store = ExpressionStore(config_dir, app_name)
    await store.start()
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)])
    pb_grpc.add_NumerixServicer_to_server(NumerixServicer(store.get, auth_token), server)
    if tls is None:
        bound = server.add_insecure_port(f"{host}:{port}")
    else:
        bound = server.add_secure_port(f"{host}:{port}", tls.grpc_credentials())
    if not bound:
        raise OSError(f"cannot listen on {host}:{port}")
    await server.start()
    print(f"inferflow-numerix serving on {host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop(grace=1.0)
        await store.stop()
