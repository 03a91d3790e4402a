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
from collections.abc import Callable
from pathlib import Path

import grpc

from inferflow_core.api import net, sources

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
        self.source = sources.DirectorySource(config_dir, [self.prefix], interval=interval)
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
    tls: net.ServerTls | None = None,
    metrics_port: int | None = None,
    grace: float = 5.0,
) -> None:
    """Serve until SIGINT/SIGTERM (graceful: health NOT_SERVING, in-flight calls get ``grace`` s).
    Prints ``inferflow-numerix serving on HOST:PORT`` (and ``metrics on HOST:PORT``) when ready.
    With ``tls``: TLS, and mTLS when it has a client CA. grpc.health.v1, reflection and ``/metrics``
    come from the core's :func:`net.serve_grpc_service`."""
    store = ExpressionStore(config_dir, app_name)
    await store.start()

    def register(server: grpc.aio.Server) -> None:
        pb_grpc.add_NumerixServicer_to_server(NumerixServicer(store.get, auth_token), server)

    def ready(bound: int, metrics_bound: int | None) -> None:
        extra = f", metrics on {host}:{metrics_bound}" if metrics_bound is not None else ""
        print(f"inferflow-numerix serving on {host}:{bound}{extra}", flush=True)

    try:
        await net.serve_grpc_service(
            register,
            [pb.DESCRIPTOR.services_by_name["Numerix"].full_name],
            port=port,
            host=host,
            tls=tls,
            metrics_port=metrics_port,
            grace=grace,
            options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
            on_ready=ready,
        )
    finally:
        await store.stop()
