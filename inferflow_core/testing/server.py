"""An in-process Inferflow server for plugin authors' tests (real grpc.aio server on loopback).

Usage::

    async with running_server(runtime, tree) as srv:
        stub = predict_pb2_grpc.PredictStub(srv.channel)
        ...

``tree`` (keys relative to ``/config/``) is written to a temp config directory that the server watches,
so ``srv.update(tree)`` exercises hot reload through the real directory source.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc

from ..config.sources import ConfigSource, DirectorySource, write_config_dir
from ..runtime import Runtime
from ..serving.server import InferflowServer

APPLY_WITHIN = 5.0  # seconds RunningServer.update waits for the watcher to apply a change


@dataclass
class RunningServer:
    server: InferflowServer
    runtime: Runtime
    channel: grpc.aio.Channel
    address: str
    config_dir: Path | None

    @property
    def http_port(self) -> int | None:
        return self.server.http_port

    async def update(self, tree: Mapping[str, str]) -> None:
        """Write ``tree`` into the watched directory and wait (at most ``APPLY_WITHIN`` s) until a new
        snapshot is applied."""
        if self.config_dir is None:
            raise RuntimeError("this server does not watch a directory")
        before = self.runtime.store.current.version
        write_config_dir(self.config_dir, dict(tree))
        try:
            async with asyncio.timeout(APPLY_WITHIN):
                while self.runtime.store.current.version == before:
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise TimeoutError(f"config change not applied within {APPLY_WITHIN}s") from None


@contextlib.asynccontextmanager
async def running_server(
    runtime: Runtime,
    tree: Mapping[str, str] | None = None,
    source: ConfigSource | None = None,
    http: bool = True,
    credentials: grpc.ChannelCredentials | None = None,
    channel_options: tuple[tuple[str, object], ...] = (),
) -> AsyncIterator[RunningServer]:
    """Start a server for ``runtime`` on 127.0.0.1 (free ports); stop it (1 s grace) afterwards.

    ``credentials`` (e.g. ``grpc.ssl_channel_credentials(ca, key, cert)``) make ``srv.channel`` a TLS
    channel, for a runtime whose settings turn server TLS on."""
    with tempfile.TemporaryDirectory(prefix="inferflow-cfg-") as tmp:
        config_dir: Path | None = None
        if source is None:
            config_dir = Path(tmp)
            write_config_dir(config_dir, dict(tree or {}))
            source = DirectorySource(config_dir, runtime.prefixes, interval=0.05)
        server = InferflowServer(runtime, 0, 0 if http else None, host="127.0.0.1", source=source)
        await server.start()
        address = f"127.0.0.1:{server.port}"
        if credentials is None:
            channel = grpc.aio.insecure_channel(address, options=list(channel_options))
        else:
            channel = grpc.aio.secure_channel(address, credentials, options=list(channel_options))
        try:
            yield RunningServer(server, runtime, channel, address, config_dir)
        finally:
            await channel.close()
            await server.stop(1.0)
