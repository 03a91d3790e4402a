"""Run a plugin's own gRPC server (``inferflow-onfs serve``, ``inferflow-numerix serve`` ...) as a service
that can be deployed and probed like the main server, without copying its code.

:func:`serve_grpc_service` adds to the plugin's handlers: ``grpc.health.v1`` (SERVING once started,
NOT_SERVING while draining), server reflection, per-method metrics (``inferflow_grpc_server_handled_total``
and ``inferflow_grpc_server_handling_seconds``) with process/GC collectors on an HTTP port
(``/metrics``, ``/health/self``, ``/health/ready``), and a graceful stop on SIGTERM/SIGINT: health goes
NOT_SERVING, the server stops accepting and in-flight calls get ``grace`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from ..observability.metrics import Metrics
from ..tls import ServerTls
from .http import HttpSidePort

log = logging.getLogger("inferflow.standalone")


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags every plugin server's ``serve`` command shares with :func:`serve_grpc_service`: TLS
    (``--tls-cert``, ``--tls-key``, ``--tls-client-ca``), ``--metrics-port`` and ``--grace``."""
    parser.add_argument("--tls-cert", default="", help="serve TLS with this certificate chain (PEM)")
    parser.add_argument("--tls-key", default="", help="... and this private key (PEM)")
    parser.add_argument("--tls-client-ca", default="", help="require client certificates from this CA (mTLS)")
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="HTTP port for /metrics, /health/self and /health/ready (0 = any free port; default: none)",
    )
    parser.add_argument(
        "--grace", type=float, default=5.0, help="on SIGTERM, seconds in-flight calls get to finish"
    )


def server_tls(args: argparse.Namespace) -> ServerTls | None:
    """The TLS of :func:`add_serve_arguments`' flags (None: plaintext); a setting that cannot work raises
    :class:`~inferflow_core.tls.TlsConfigError` naming the flag."""
    if not (args.tls_cert or args.tls_key or args.tls_client_ca):
        return None
    return ServerTls(args.tls_cert, args.tls_key, args.tls_client_ca or None, what="--tls-*")


class _MethodMetrics(grpc.aio.ServerInterceptor):
    """Counts and times every unary call by method and status code."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary
        service, _, method = details.method.lstrip("/").partition("/")
        metrics = self.metrics

        async def counted(request: Any, context: Any) -> Any:
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                result = inner(request, context)
                if inspect.isawaitable(result):
                    result = await result
                code = context.code() or grpc.StatusCode.OK
                return result
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except Exception:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            finally:
                name = code.name if isinstance(code, grpc.StatusCode) else str(code)
                metrics.count("grpc_server_handled", grpc_service=service, grpc_method=method, grpc_code=name)
                metrics.observe(
                    "grpc_server_handling_seconds",
                    time.perf_counter() - started,
                    grpc_service=service,
                    grpc_method=method,
                )

        return grpc.unary_unary_rpc_method_handler(
            counted, handler.request_deserializer, handler.response_serializer
        )


async def serve_grpc_service(
    register: Callable[[grpc.aio.Server], None],
    service_names: Sequence[str],
    *,
    port: int,
    host: str = "127.0.0.1",
    tls: ServerTls | None = None,
    metrics_port: int | None = None,
    grace: float = 5.0,
    options: Sequence[tuple[str, Any]] = (),
    on_ready: Callable[[int, int | None], None] | None = None,
    metrics: Metrics | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT (or ``stop`` is set), then drain for ``grace`` s.

    ``register(server)`` adds the plugin's handlers; ``service_names`` are their full names (for health
    and reflection). ``metrics_port``: HTTP port for ``/metrics`` and health (0 = any free port, None =
    none). ``on_ready(grpc_port, metrics_port)`` is called once both listen."""
    metrics = metrics or Metrics(core=False)
    by_method = ("grpc_method", "grpc_service")
    metrics.declare(
        "counter",
        "grpc_server_handled",
        ("grpc_code", *by_method),
        help="RPCs completed by this server, by service, method and gRPC status code",
    )
    metrics.declare(
        "histogram",
        "grpc_server_handling_seconds",
        by_method,
        help="Time this server took to answer an RPC, by service and method",
    )
    health = HealthServicer()
    server = grpc.aio.server(options=list(options), interceptors=(_MethodMetrics(metrics),))
    register(server)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
    reflection.enable_server_reflection((*service_names, health_name, reflection.SERVICE_NAME), server)
    address = f"{host}:{port}"
    bound = (
        server.add_insecure_port(address)
        if tls is None
        else server.add_secure_port(address, tls.grpc_credentials())
    )
    if not bound:
        raise OSError(f"cannot listen on {address}")
    await server.start()
    draining = False
    for name in ("", *service_names):
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)

    def ready() -> tuple[bool, dict[str, Any]]:
        return not draining, {"ready": not draining, "services": list(service_names)}

    http = None
    if metrics_port is not None:
        http = HttpSidePort(ready, metrics.exposition, host, metrics_port)
        metrics_port = await http.start()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    log.info(
        "serving", extra={"grpc_port": bound, "metrics_port": metrics_port, "services": list(service_names)}
    )
    if on_ready is not None:
        on_ready(bound, metrics_port)
    try:
        await stop.wait()
    finally:
        draining = True
        await health.enter_graceful_shutdown()
        await server.stop(grace)
        if http is not None:
            await http.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        log.info("stopped")
