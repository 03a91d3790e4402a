"""``inferflow serve``: settings, logging, worker processes and signal handling.

One worker runs in this process. ``--workers N`` (N > 1) spawns N processes (spawn, not fork: gRPC
must not be forked) that all bind the same gRPC and HTTP ports with SO_REUSEPORT, each with its own
event loop, runtime and config watch; the parent forwards SIGTERM/SIGINT and exits with the worst
worker exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing as mp
import os
import shutil
import signal
import sys
import tempfile
from typing import Any

from ..config.settings import ServiceSettings
from ..errors import InferflowError
from ..observability.logs import setup_logging

log = logging.getLogger("inferflow.app")


def _settings(args: argparse.Namespace) -> tuple[ServiceSettings, int, int]:
    updates: dict[str, Any] = {}
    if getattr(args, "config_dir", None):
        updates["config_dir"] = args.config_dir
    settings = ServiceSettings()
    if updates:
        settings = settings.model_copy(update=updates)
    port = args.port if getattr(args, "port", None) is not None else settings.app_port
    http_port = getattr(args, "http_port", None) or settings.http_port or port + 1
    return settings, port, http_port


async def serve(settings: ServiceSettings, port: int, http_port: int, reuse_port: bool = False) -> int:
    """Run one worker until SIGTERM/SIGINT, then stop gracefully. Returns the exit code."""
    from ..observability.metrics import Metrics
    from ..observability.statsd import StatsdClient
    from ..runtime import Runtime
    from .server import InferflowServer

    runtime = Runtime(settings, metrics=Metrics(statsd=StatsdClient.from_env()))
    server = InferflowServer(runtime, port, http_port, host=settings.bind_host, reuse_port=reuse_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
    except InferflowError as exc:  # e.g. TLS requested but not usable: one clear line, no traceback
        log.error("cannot start: %s", exc.message)
        await server.stop(0)
        runtime.metrics.close()
        return 2
    log.info("worker ready", extra={"grpc_port": server.port, "http_port": server.http_port})
    await stop.wait()
    log.info("shutdown requested, draining", extra={"grace_s": settings.shutdown_grace_s})
    await server.stop(settings.shutdown_grace_s)
    runtime.metrics.close()
    return 0


def _worker(settings_json: str, port: int, http_port: int) -> None:
    settings = ServiceSettings.model_validate_json(settings_json)
    setup_logging(settings.app_log_level, settings.log_json)
    sys.exit(asyncio.run(serve(settings, port, http_port, reuse_port=True)))


def main(args: argparse.Namespace) -> int:
    settings, port, http_port = _settings(args)
    setup_logging(settings.app_log_level, settings.log_json)
    workers = max(1, int(getattr(args, "workers", 1) or 1))
    if workers == 1:
        return asyncio.run(serve(settings, port, http_port))
    if port == 0:
        log.error("--workers > 1 needs a fixed --port")
        return 2
    # Prometheus multiprocess mode: each worker writes its values to mmap files in this dir, and any
    # worker's /metrics merges all of them. It must be set before the workers import prometheus_client.
    own_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        own_dir = tempfile.mkdtemp(prefix="inferflow-prom-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_dir
    try:
        return _run_workers(settings, port, http_port, workers)
    finally:
        if own_dir is not None:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
            shutil.rmtree(own_dir, ignore_errors=True)


def _run_workers(settings: ServiceSettings, port: int, http_port: int, workers: int) -> int:
    from prometheus_client import multiprocess

    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(target=_worker, args=(settings.model_dump_json(), port, http_port), name=f"worker-{i}")
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()

    def forward(signum: int, _frame: object) -> None:
        for proc in procs:
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for proc in procs:
        proc.join()
        if proc.pid is not None:
            multiprocess.mark_process_dead(proc.pid)  # drops its live gauges; counters stay summed
    return max((p.exitcode or 0) if (p.exitcode or 0) >= 0 else 1 for p in procs)
