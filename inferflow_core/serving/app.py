"""``inferflow serve``: settings, logging, worker processes and signal handling.

One worker runs in this process. ``--workers N`` (N > 1) spawns N processes (spawn, not fork: gRPC
must not be forked) that all bind the same gRPC and HTTP ports with SO_REUSEPORT, each with its own
event loop, runtime and config watch. The parent supervises them (``supervisor.py``: a dead worker is
restarted with backoff, a crash loop ends the process non-zero), forwards SIGTERM/SIGINT and exits with
the worst worker exit code.
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
from pathlib import Path
from typing import Any

from ..config.settings import ServiceSettings
from ..errors import InferflowError
from ..observability.logs import setup_logging
from . import eventloop

log = logging.getLogger("inferflow.app")


def _settings(args: argparse.Namespace) -> tuple[ServiceSettings, int, int]:
    updates: dict[str, Any] = {}
    if getattr(args, "config_dir", None):
        updates["config_dir"] = args.config_dir
    settings = ServiceSettings()
    if updates:
        settings = settings.model_copy(update=updates)
    port = args.port if getattr(args, "port", None) is not None else settings.app_port
    http_port = getattr(args, "http_port", None)
    if http_port is None:
        http_port = settings.http_port
    if http_port is None:  # unset: next to the gRPC port, or a free port when the gRPC port is free too
        http_port = port + 1 if port else 0
    return settings, port, http_port


class StartupError(Exception):
    """A reason ``serve`` cannot start at all (printed as one line; the process exits non-zero)."""


def check_startup(settings: ServiceSettings) -> None:
    """What can be known before binding anything: the config directory must exist when it is the source."""
    name = settings.config_source or ("etcd" if settings.etcd_server else "directory")
    if name != "directory":
        return
    if not settings.config_dir:
        raise StartupError("no config source: pass --config-dir DIR, set INFERFLOW_CONFIG_DIR or ETCD_SERVER")
    path = Path(settings.config_dir)
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "does not exist"
        raise StartupError(f"config directory {settings.config_dir} {what}")


async def serve(settings: ServiceSettings, port: int, http_port: int, reuse_port: bool = False) -> int:
    """Run one worker until SIGTERM/SIGINT, then stop gracefully. Returns the exit code."""
    from ..observability import tracing
    from ..observability.metrics import Metrics
    from ..observability.statsd import StatsdClient
    from ..runtime import Runtime
    from .server import InferflowServer

    tracing.configure_from_env(settings.app_name)  # per worker process; off unless OTEL_TRACES_EXPORTER
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
    except (OSError, RuntimeError) as exc:
        await server.stop(0.0)
        raise StartupError(
            f"cannot listen on {settings.bind_host} (gRPC {port}, HTTP {http_port}): {exc}"
        ) from None
    log.info(
        "worker ready: gRPC port %d, HTTP port %s",
        server.port,
        server.http_port,
        extra={"grpc_port": server.port, "http_port": server.http_port},
    )
    await stop.wait()
    log.info("shutdown requested, draining", extra={"grace_s": settings.shutdown_grace_s})
    await server.stop(settings.shutdown_grace_s)
    runtime.metrics.close()
    tracing.shutdown()
    return 0


def _die_with_parent() -> None:
    """Linux: the kernel sends this worker SIGTERM when the supervisor dies, even by SIGKILL, so no orphan
    keeps serving on the shared port outside the pod's process tree."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG
    parent = mp.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died before prctl took effect
        sys.exit(0)


def _worker(settings_json: str, port: int, http_port: int) -> None:
    # a SIGTERM before the event loop's handler is installed is an orderly stop, not a crash
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    _die_with_parent()
    settings = ServiceSettings.model_validate_json(settings_json)
    setup_logging(settings.app_log_level, settings.log_json)
    try:
        sys.exit(eventloop.run(serve(settings, port, http_port, reuse_port=True), settings.idle_spin_us))
    except StartupError as exc:
        print(f"inferflow serve: error: {exc}", file=sys.stderr)
        sys.exit(1)


def main(args: argparse.Namespace) -> int:
    settings, port, http_port = _settings(args)
    try:
        check_startup(settings)
    except StartupError as exc:
        print(f"inferflow serve: error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.app_log_level, settings.log_json)
    workers = max(1, int(getattr(args, "workers", 1) or 1))
    if workers == 1:
        try:
            return eventloop.run(serve(settings, port, http_port), settings.idle_spin_us)
        except StartupError as exc:
            print(f"inferflow serve: error: {exc}", file=sys.stderr)
            return 1
    if port == 0:
        print("inferflow serve: error: --workers > 1 needs a fixed --port", file=sys.stderr)
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

    from ..observability.metrics import Metrics
    from .supervisor import WorkerSupervisor

    ctx = mp.get_context("spawn")
    metrics = Metrics()  # the parent's own counters land in the shared multiprocess dir too

    def make(index: int) -> Any:
        return ctx.Process(
            target=_worker, args=(settings.model_dump_json(), port, http_port), name=f"worker-{index}"
        )

    def exited(proc: Any) -> None:
        if proc.pid is not None:
            multiprocess.mark_process_dead(proc.pid)  # drops its live gauges; counters stay summed

    supervisor = WorkerSupervisor(
        make,
        workers,
        max_restarts=settings.worker_max_restarts,
        window_s=settings.worker_restart_window_s,
        on_restart=lambda index, code: metrics.count("worker_restarts", exit_code=code),
        on_exit=exited,
        # a worker's stop is bounded by the grace period, plus its observers' and plugins' closing: one
        # still running well after that hangs, and is killed
        kill_after_s=settings.shutdown_grace_s + 10.0,
    )
    signal.signal(signal.SIGTERM, lambda signum, _frame: supervisor.request_stop(signum))
    signal.signal(signal.SIGINT, lambda signum, _frame: supervisor.request_stop(signum))
    return supervisor.run()
