"""One serving process: grpc.aio server (APIs, health, reflection), HTTP side port, config source
watch and request observers, with an orderly start and a graceful stop.

Start: plugins are already loaded (the Runtime); observers start; the config source is loaded (on
failure we keep retrying in the background and report not-ready); the watch applies every new tree as
a new immutable snapshot. Stop: health goes NOT_SERVING, the gRPC server stops accepting and lets
in-flight requests finish within the grace period, the watch ends, observers flush with what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from ..components.base import ObserverHost, close_component_types
from ..config.sources import ConfigSource
from ..errors import PluginError, sanitize
from ..runtime import Runtime
from ..tls import ServerTls, TlsConfigError
from .auth import CallerAuth
from .http import HttpSidePort
from .http_api import HttpApi
from .service import SERVICE_NAMES, InferflowService

log = logging.getLogger("inferflow.server")
READINESS_SERVICE = "inferflow.readiness"  # gRPC health service name that means "ready" (/health/ready)


def make_source(runtime: Runtime) -> ConfigSource:
    """The configured source: INFERFLOW_CONFIG_SOURCE, else etcd when ETCD_SERVER is set, else directory."""
    settings = runtime.settings
    name = getattr(settings, "config_source", None) or ("etcd" if settings.etcd_server else "directory")
    factory = runtime.registry.config_sources.get(name)
    if factory is None:
        known = ", ".join(sorted(runtime.registry.config_sources)) or "none"
        raise RuntimeError(f"config source {name!r} is not registered (registered: {known})")
    return factory.create(settings, runtime.prefixes)


def server_tls(settings: Any) -> ServerTls | None:
    """The server certificate from INFERFLOW_TLS_*; None when none of them is set."""
    cert, key, ca = settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file
    if not (cert or key or ca):
        return None
    if not (cert and key):
        raise TlsConfigError(
            "INFERFLOW_TLS_CERT_FILE and INFERFLOW_TLS_KEY_FILE must both be set "
            "(INFERFLOW_TLS_CLIENT_CA_FILE needs them too)"
        )
    return ServerTls(cert, key, ca, what="INFERFLOW_TLS")


def http_tls_mode(settings: Any, tls: ServerTls | None) -> str:
    """``off`` / ``tls`` / ``mtls`` for the HTTP side port (INFERFLOW_HTTP_TLS, ``auto`` = like gRPC)."""
    mode = settings.http_tls
    if mode == "auto":
        return "off" if tls is None else ("mtls" if tls.mtls else "tls")
    if mode != "off" and tls is None:
        raise TlsConfigError(
            f"INFERFLOW_HTTP_TLS={mode} needs INFERFLOW_TLS_CERT_FILE and INFERFLOW_TLS_KEY_FILE"
        )
    if mode == "mtls" and tls is not None and not tls.mtls:
        raise TlsConfigError("INFERFLOW_HTTP_TLS=mtls needs INFERFLOW_TLS_CLIENT_CA_FILE")
    return str(mode)


def grpc_server_options(settings: Any, reuse_port: bool) -> list[tuple[str, int]]:
    """Channel arguments of the gRPC server: message limits, SO_REUSEPORT and the max connection age."""
    limit = settings.max_message_bytes
    options = [
        ("grpc.max_receive_message_length", limit),  # never buffer more than the application accepts
        ("grpc.max_send_message_length", -1),
        ("grpc.so_reuseport", 1 if reuse_port else 0),
    ]
    age = getattr(settings, "grpc_max_connection_age_s", None)
    if age:
        options.append(("grpc.max_connection_age_ms", int(age * 1000)))
        grace = getattr(settings, "grpc_max_connection_age_grace_s", None)
        if grace is not None:
            options.append(("grpc.max_connection_age_grace_ms", int(grace * 1000)))
    return options


def _http_context(tls: ServerTls | None, mode: str) -> Callable[[], ssl.SSLContext] | None:
    if tls is None or mode == "off":
        return None
    verify = mode == "mtls"
    return lambda: tls.ssl_context(verify)


class InferflowServer:
    """Owns the serving resources of one process (or one worker)."""

    def __init__(
        self,
        runtime: Runtime,
        port: int = 0,
        http_port: int | None = 0,
        host: str = "0.0.0.0",
        source: ConfigSource | None = None,
        reuse_port: bool = False,
    ) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.host = host
        self.port = port
        self.http_port = http_port
        self.reuse_port = reuse_port
        self.source = source
        self.service = InferflowService(runtime)
        self.health = HealthServicer()
        self.loaded = False
        self.stopping = False
        self._server: grpc.aio.Server | None = None
        self._http: HttpSidePort | None = None
        self._watch: asyncio.Task[None] | None = None
        self._observers_started: list[Any] = []

    # -- readiness ----------------------------------------------------------------------------
    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready = configs loaded, not stopping, and no model of the config source rejected (a model
        that needs a missing plugin is rejected too) unless ``INFERFLOW_READY_WITH_REJECTED``."""
        snap = self.runtime.store.current
        reasons = []
        if not self.loaded:
            reasons.append("the config source has not been loaded yet")
        if self.stopping:
            reasons.append("the server is stopping")
        if snap.errors and not self.settings.ready_with_rejected:
            for model_id, err in sorted(snap.errors.items()):
                serving = " (its last good version keeps serving)" if model_id in snap.models else ""
                reasons.append(sanitize(f"model {model_id!r} is rejected{serving}: {err.message}"))
        ok = not reasons
        details = {
            "ready": ok,
            "not_ready_because": reasons,
            "config_loaded": self.loaded,
            "stopping": self.stopping,
            "config_version": snap.version,
            "models": sorted(snap.models),
            # callers see no file-system paths (issue 19); the full messages are in the log
            "rejected_models": {m: sanitize(e.message) for m, e in snap.errors.items()},
            "service_config_error": sanitize(snap.service_error) if snap.service_error else None,
            "plugin_failures": [
                sanitize(f"{f.distribution} {f.version}: {f.error}") for f in self.runtime.host.failures
            ],
        }
        return ok, details

    # -- config -------------------------------------------------------------------------------
    def _apply(self, tree: dict[str, str]) -> None:
        snap = self.runtime.apply_tree(tree)
        metrics = self.runtime.metrics
        metrics.gauge("config_version", snap.version, aggregate="max")
        metrics.gauge("models", len(snap.models), aggregate="livemax", state="loaded")
        metrics.gauge("models", len(snap.errors), aggregate="livemax", state="rejected")
        for model in snap.models.values():
            for name, component in model.nodes.items():
                features = len(component.outputs())
                metrics.gauge(
                    "component_output_columns",
                    features,
                    aggregate="livemax",
                    model_id=model.model_id,
                    component=name,
                )
        log.info(
            "config snapshot applied",
            extra={"version": snap.version, "models": sorted(snap.models), "rejected": sorted(snap.errors)},
        )

    async def _load_once(self) -> None:
        assert self.source is not None
        tree = await asyncio.wait_for(self.source.load(), 10.0)
        self._apply(tree)
        if not self.loaded:
            self.loaded = True
            await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self._publish_readiness()

    async def _publish_readiness(self) -> None:
        """gRPC health of service ``READINESS_SERVICE`` follows :meth:`readiness` (a Kubernetes gRPC
        readiness probe names it; ``""`` stays SERVING while the process serves, for liveness)."""
        ok, _ = self.readiness()
        status = health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
        await self.health.set(READINESS_SERVICE, status)

    async def _watch_loop(self) -> None:
        assert self.source is not None
        delay = 0.2
        while True:
            try:
                if not self.loaded:
                    await self._load_once()
                async for tree in self.source.watch():
                    self._apply(tree)
                    await self._publish_readiness()
                    delay = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("config source failed, retrying in %.1fs: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        # security first: a TLS or auth setting that cannot work stops start-up before anything runs
        tls = server_tls(self.settings)
        http_tls = http_tls_mode(self.settings, tls)
        auth = CallerAuth(self.settings, self.runtime.metrics)
        for access in (self.settings.metrics_access, self.settings.ready_details):
            if access == "token" and not auth.tokens.configured:
                raise TlsConfigError(
                    "INFERFLOW_METRICS_ACCESS / INFERFLOW_READY_DETAILS = token needs INFERFLOW_AUTH_TOKENS "
                    "or INFERFLOW_AUTH_TOKENS_FILE"
                )
        reflect = self.settings.grpc_reflection == "on" or (
            self.settings.grpc_reflection == "auto" and not auth.enabled
        )
        host = ObserverHost(self.runtime.metrics, self.runtime.registry.registered)
        for obs in self.service.observers:
            try:
                await obs.start(host)
                self._observers_started.append(obs)
            except PluginError:  # the observer's plugin is misconfigured (e.g. an unknown log sink)
                raise
            except Exception:
                log.exception("request observer %r failed to start", obs)
        await self.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.health.set(READINESS_SERVICE, health_pb2.HealthCheckResponse.NOT_SERVING)
        if self.source is None:
            self.source = make_source(self.runtime)
        try:
            await self._load_once()
        except Exception as exc:
            log.error("initial config load failed (will retry, not ready): %s", exc)
        self._watch = asyncio.get_running_loop().create_task(self._watch_loop())

        # a last-resort bound on live RPCs (grpc.aio stops accepting beyond it, so it is set well above the
        # admission controller's in-flight + queued bound, which answers RESOURCE_EXHAUSTED at once)
        rpcs = 2 * (self.settings.max_in_flight + self.settings.max_queued) + 64
        server = grpc.aio.server(
            options=grpc_server_options(self.settings, self.reuse_port), maximum_concurrent_rpcs=rpcs
        )
        server.add_generic_rpc_handlers(auth.wrap(self.service.generic_handlers()))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        if reflect:
            names = (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name)
            reflection.enable_server_reflection((*names, reflection.SERVICE_NAME), server)
        address = f"{self.host}:{self.port}"
        if tls is None:
            self.port = server.add_insecure_port(address)
        else:
            self.port = server.add_secure_port(address, tls.grpc_credentials())
        if self.port == 0:
            raise RuntimeError(f"cannot bind the gRPC port on {self.host}")
        await server.start()
        self._server = server
        if self.http_port is not None:
            self._http = HttpSidePort(
                self.readiness,
                self.runtime.metrics.exposition,
                self.settings.http_bind_host or self.host,
                self.http_port,
                self.reuse_port,
                tls=_http_context(tls, http_tls),
                allows=auth.allows_http,
                metrics_access=self.settings.metrics_access,
                ready_details=self.settings.ready_details,
                api=HttpApi(self.service, auth) if self.settings.http_api else None,
                max_body=self.settings.max_message_bytes,
                max_connections=self.settings.http_max_connections,
            )
            self.http_port = await self._http.start()
        log.info(
            "serving",
            extra={
                "grpc_port": self.port,
                "http_port": self.http_port,
                "grpc_tls": "off" if tls is None else ("mtls" if tls.mtls else "tls"),
                "http_tls": http_tls,
                "caller_auth": sorted(auth.apis) if auth.enabled else [],
                "reflection": reflect,
            },
        )

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting, let in-flight requests finish within ``grace`` s, flush observers."""
        grace = self.settings.shutdown_grace_s if grace is None else grace
        deadline = time.monotonic() + grace
        self.stopping = True
        await self.health.enter_graceful_shutdown()
        if self._server is not None:
            await self._server.stop(grace)
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watch
        if self.source is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.source.close(), 2.0)
        await self.service.drain_deferred(max(0.1, deadline - time.monotonic()))
        for obs in self._observers_started:
            left = max(0.1, deadline - time.monotonic())
            try:
                await asyncio.wait_for(obs.stop(left), left + 1.0)
            except Exception:
                log.exception("request observer %r failed to stop", obs)
        await close_component_types(self.runtime.registry.components, max(0.5, deadline - time.monotonic()))
        if self._http is not None:
            await self._http.stop()
        log.info("stopped")

    async def __aenter__(self) -> InferflowServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop(1.0)
