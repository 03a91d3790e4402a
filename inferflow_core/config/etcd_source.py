"""The etcd config source (``aetcd``, not ``etcd3`` - see docs/dependencies.md), registered as ``etcd``.

Keys are ``/config/<key>`` with the Go version's layout, e.g.
``/config/inferflow/services/<APP_NAME>/model-config/config-map/<id>`` (go-compatibility §2.1); the tree this
source yields uses keys relative to ``/config/``. Each prefix is loaded with one range read and then
watched. After any watch failure (etcd restart, network) we reconnect and re-watch from the last seen
revision + 1, so a change made during the outage is delivered; if that revision was compacted away we
reload the whole tree instead.

TLS: an ``https://`` endpoint (or any of the ``INFERFLOW_ETCD_*`` TLS files with a bare ``host:port``)
connects over TLS with the configured CA, client certificate/key and server-name override. A TLS request
that cannot be honoured (unreadable file, ``http://`` together with TLS files, mixed schemes) is a
:class:`~inferflow_core.tls.TlsConfigError` when the source is created: never a plaintext fall-back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aetcd
from aetcd import exceptions as etcd_errors
from aetcd import rpc
from aetcd import watcher as aetcd_watcher

from ..tls import ClientTls, TlsConfigError
from .sources import ConfigSource

log = logging.getLogger("inferflow.config.etcd")
ROOT = "/config/"


def parse_endpoint(server: str) -> tuple[str, int]:
    """``ETCD_SERVER`` ("host:port", "http://host:port", or a comma-separated list: first wins)."""
    first = server.split(",")[0].strip()
    for scheme in ("http://", "https://"):
        if first.startswith(scheme):
            first = first[len(scheme) :]
    first = first.rstrip("/")
    host, _, port = first.rpartition(":")
    if not host:
        return first, 2379
    return host, int(port)


def etcd_tls(settings: Any) -> ClientTls | None:
    """The TLS settings for ``ETCD_SERVER``, None for plaintext; raises TlsConfigError if TLS is asked
    for but cannot be set up (so the server refuses to start rather than downgrade)."""
    server = getattr(settings, "etcd_server", None) or ""
    schemes = {e.strip().partition("://")[0].lower() for e in server.split(",") if "://" in e}
    tls = ClientTls(
        getattr(settings, "etcd_ca_file", None) or "",
        getattr(settings, "etcd_cert_file", None) or "",
        getattr(settings, "etcd_key_file", None) or "",
        getattr(settings, "etcd_server_name", None) or "",
        what="etcd TLS (ETCD_SERVER, INFERFLOW_ETCD_*)",
    )
    if len(schemes) > 1:
        raise TlsConfigError(f"{tls.what}: ETCD_SERVER mixes schemes {sorted(schemes)}; use one")
    scheme = next(iter(schemes), "")
    if scheme not in ("", "http", "https"):
        raise TlsConfigError(f"{tls.what}: unsupported scheme {scheme!r} in ETCD_SERVER")
    if scheme == "http":
        if tls.customised:
            raise TlsConfigError(
                f"{tls.what}: ETCD_SERVER is http:// but TLS files are set; use https:// "
                "(refusing to talk to etcd in plaintext)"
            )
        return None
    if scheme == "https" or tls.customised:
        tls.check()
        return tls
    return None


class TlsEtcdClient(aetcd.Client):
    """``aetcd.Client`` over a TLS channel (aetcd 1.0 itself only opens plaintext channels).

    ``connect`` mirrors aetcd 1.0's own (same stubs, auth and watcher); only the channel differs."""

    _options: dict[str, Any]
    _is_connecting: bool

    def __init__(self, *args: Any, credentials: Any, channel_options: Sequence[Any] = (), **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._credentials = credentials
        self._options = {**dict(channel_options), **self._options}

    async def connect(self) -> None:
        if self._connected.is_set():
            return
        if self._is_connecting:
            await asyncio.wait_for(self._connected.wait(), self._connect_wait_timeout)
            return
        try:
            self._is_connecting = True
            target = f"{self._host}:{self._port}"
            self.channel = rpc.secure_channel(target, self._credentials, options=list(self._options.items()))
            if self._username is not None and self._password is not None:
                self.auth_stub = rpc.AuthStub(self.channel)
                request = rpc.AuthenticateRequest(name=self._username, password=self._password)
                try:
                    resp = await self.auth_stub.Authenticate(request, timeout=self._timeout)
                except rpc.AioRpcError as exc:
                    etcd_errors._handle_exception(exc)
                self.metadata = (("token", resp.token),)
            self.kvstub = rpc.KVStub(self.channel)
            self.clusterstub = rpc.ClusterStub(self.channel)
            self.leasestub = rpc.LeaseStub(self.channel)
            self.maintenancestub = rpc.MaintenanceStub(self.channel)
            self._watcher = aetcd_watcher.Watcher(
                rpc.WatchStub(self.channel), timeout=self._timeout, metadata=self.metadata
            )
            self._connected.set()
        finally:
            self._is_connecting = False


def etcd_client(
    host: str,
    port: int,
    username: str | None = None,
    password: str | None = None,
    timeout: int = 5,
    tls: ClientTls | None = None,
) -> aetcd.Client:
    """An aetcd client, over TLS when ``tls`` is given (see :func:`etcd_tls`)."""
    if tls is None:
        if password and host not in ("127.0.0.1", "localhost", "::1"):
            log.warning(
                "etcd: sending ETCD_PASSWORD over a plaintext connection; use https:// for ETCD_SERVER"
            )
        return aetcd.Client(host, port, username=username, password=password, timeout=timeout)
    return TlsEtcdClient(
        host,
        port,
        username=username,
        password=password,
        timeout=timeout,
        credentials=tls.credentials(),
        channel_options=tls.channel_options(),
    )


class EtcdSource(ConfigSource):
    """Loads and watches ``/config/<prefix>`` for each prefix."""

    def __init__(
        self,
        host: str,
        port: int,
        prefixes: Sequence[str],
        username: str | None = None,
        password: str | None = None,
        timeout: float = 5.0,
        watch_enabled: bool = True,
        tls: ClientTls | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.prefixes = tuple(prefixes)
        self.username, self.password = username, password
        self.timeout = timeout
        self.watch_enabled = watch_enabled  # ETCD_WATCHER_ENABLED=false: load once, never watch
        self.tls = tls
        self.revision = 0  # last revision reflected in self.tree
        self.tree: dict[str, str] = {}
        self._client: aetcd.Client | None = None

    async def _connect(self) -> aetcd.Client:
        if self._client is None:
            client = etcd_client(
                self.host, self.port, self.username, self.password, int(self.timeout) or 1, self.tls
            )
            await asyncio.wait_for(client.connect(), self.timeout)
            self._client = client
        return self._client

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), 2.0)

    async def load(self) -> dict[str, str]:
        client = await self._connect()
        tree: dict[str, str] = {}
        revision = 0
        try:
            for prefix in self.prefixes:
                got = await asyncio.wait_for(client.get_prefix((ROOT + prefix).encode()), self.timeout)
                revision = max(revision, got.header.revision)
                for kv in got:
                    tree[kv.key.decode()[len(ROOT) :]] = kv.value.decode("utf-8", "replace")
        except Exception:
            await self._drop()
            raise
        self.tree, self.revision = tree, revision
        return dict(tree)

    def _apply(self, event: Any) -> None:
        key = event.kv.key.decode()[len(ROOT) :]
        if event.kind == "DELETE":
            self.tree.pop(key, None)
        else:
            self.tree[key] = event.kv.value.decode("utf-8", "replace")
        self.revision = max(self.revision, event.kv.mod_revision)

    async def _pump(self, client: aetcd.Client, prefix: str, start: int, queue: asyncio.Queue[Any]) -> None:
        try:
            watch = await asyncio.wait_for(
                client.watch_prefix((ROOT + prefix).encode(), start_revision=start), self.timeout
            )
            await queue.put(("ready", None))
            async for event in watch:
                await queue.put(("event", event))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            await queue.put(("error", exc))

    async def watch(self) -> AsyncIterator[dict[str, str]]:
        if not self.watch_enabled:
            await asyncio.Event().wait()
        delay = 0.1
        while True:
            queue: asyncio.Queue[Any] = asyncio.Queue()
            tasks: list[asyncio.Task[None]] = []
            try:
                client = await self._connect()
                start = self.revision + 1
                tasks = [asyncio.create_task(self._pump(client, p, start, queue)) for p in self.prefixes]
                while True:
                    kind, item = await queue.get()
                    if kind == "error":
                        raise item
                    if kind == "ready":
                        delay = 0.1
                        continue
                    self._apply(item)
                    while not queue.empty():  # coalesce a burst (e.g. a multi-key push) into one tree
                        kind, item = queue.get_nowait()
                        if kind == "error":
                            raise item
                        if kind == "event":
                            self._apply(item)
                    yield dict(self.tree)
            except asyncio.CancelledError:
                raise
            except etcd_errors.RevisionCompactedError:
                log.warning("etcd watch: revision %d compacted, reloading the whole tree", self.revision + 1)
                await self._reload_after_failure()
                yield dict(self.tree)
            except Exception as exc:
                log.warning(
                    "etcd watch failed (%s: %s); re-watching from revision %d in %.1fs",
                    type(exc).__name__,
                    exc,
                    self.revision + 1,
                    delay,
                )
                await self._drop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(BaseException):
                        await task

    async def _reload_after_failure(self) -> None:
        while True:
            try:
                await self.load()
                return
            except Exception as exc:
                log.warning("etcd reload failed: %s", exc)
                await self._drop()
                await asyncio.sleep(0.5)

    async def close(self) -> None:
        await self._drop()


class EtcdSourceFactory:
    """Registered as config source ``etcd`` (chosen when ETCD_SERVER is set)."""

    name = "etcd"

    def create(self, settings: Any, prefixes: Sequence[str]) -> ConfigSource:
        server = getattr(settings, "etcd_server", None)
        if not server:
            raise ValueError("the etcd config source needs ETCD_SERVER (host:port)")
        host, port = parse_endpoint(server)
        tls = etcd_tls(settings)
        return EtcdSource(
            host,
            port,
            prefixes,
            getattr(settings, "etcd_username", None),
            getattr(settings, "etcd_password", None),
            watch_enabled=bool(getattr(settings, "etcd_watcher_enabled", True)),
            tls=tls,
        )
