"""The worker supervisor of ``inferflow serve --workers N``.

The parent process starts N workers and watches them. A worker that dies while the pod is not shutting
down (OOM kill, ``kill -9``, a crash) is logged, counted (``inferflow_worker_restarts_total``) and started
again after a backoff (0.5 s doubling to 10 s; reset once a worker has lived 60 s). If workers keep dying
(more than ``max_restarts`` restarts within ``window_s``) the supervisor stops the others and exits
non-zero, so Kubernetes restarts the pod instead of it serving at reduced capacity. A worker that exits
with code 2 (a start-up error such as an unusable TLS setting) is not restarted: that error would repeat.
SIGTERM/SIGINT are forwarded to every worker; the exit code is the worst worker exit code. A worker still
running ``kill_after_s`` after the stop (its shutdown is bounded by the grace period, so it hangs) is
killed and logged, and the exit code is then non-zero: a stop never waits forever.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any

log = logging.getLogger("inferflow.supervisor")

EXIT_CRASH_LOOP = 3
EXIT_STARTUP = 2


class WorkerSupervisor:
    """Keeps ``count`` processes made by ``make(index)`` alive until asked to stop."""

    def __init__(
        self,
        make: Callable[[int], BaseProcess],
        count: int,
        *,
        max_restarts: int = 5,
        window_s: float = 60.0,
        backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
        on_restart: Callable[[int, int | None], Any] | None = None,
        on_exit: Callable[[BaseProcess], Any] | None = None,
        kill_after_s: float | None = None,
    ) -> None:
        self.make = make
        self.count = count
        self.max_restarts = max_restarts
        self.window_s = window_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.on_restart = on_restart
        self.on_exit = on_exit
        self.kill_after_s = kill_after_s  # after a stop: workers still running then are killed
        self.stop_at: float | None = None  # monotonic time of the first stop request
        self.procs: list[BaseProcess | None] = [None] * count
        self.started_at = [0.0] * count
        self.delay = [backoff_s] * count
        self.due: dict[int, float] = {}  # worker index -> monotonic time to restart it
        self.restarts: deque[float] = deque()
        self.stopping = False
        self.forwarded: set[int] = set()  # signals sent to the workers to stop them
        self.killed: set[int] = set()  # pids killed for not stopping in time
        self.exit_code = 0

    def _start(self, index: int) -> None:
        proc = self.make(index)
        proc.start()
        self.procs[index] = proc
        self.started_at[index] = time.monotonic()

    def signal_all(self, signum: int) -> None:
        for proc in self.procs:
            if proc is not None and proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signum)

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        if self.stop_at is None:
            self.stop_at = time.monotonic()
        self.stopping = True
        self.forwarded.add(signum)
        self.due.clear()
        self.signal_all(signum)

    def _fail(self, code: int, why: str, *args: object) -> None:
        log.error(why, *args)
        self.exit_code = max(self.exit_code, code)
        self.request_stop()

    def _reaped(self, index: int, proc: BaseProcess) -> None:
        code = proc.exitcode
        if self.on_exit is not None:
            self.on_exit(proc)
        if self.stopping:  # killed by the signal we forwarded (before its handlers ran): stopped as asked
            code = code or 0
            self.exit_code = max(self.exit_code, code if code >= 0 else (0 if -code in self.forwarded else 1))
            return
        if code == EXIT_STARTUP:
            self._fail(EXIT_STARTUP, "worker %d exited with a start-up error; stopping", index)
            return
        now = time.monotonic()
        lived = now - self.started_at[index]
        if lived >= self.window_s:
            self.delay[index] = self.backoff_s
        self.restarts.append(now)
        while self.restarts and now - self.restarts[0] > self.window_s:
            self.restarts.popleft()
        if len(self.restarts) > self.max_restarts:
            self._fail(
                EXIT_CRASH_LOOP,
                "workers died %d times within %.0fs (last: worker %d, exit code %s); giving up",
                len(self.restarts),
                self.window_s,
                index,
                code,
            )
            return
        delay = self.delay[index]
        self.delay[index] = min(delay * 2, self.max_backoff_s)
        log.error(
            "worker %d (pid %s) died with exit code %s after %.1fs; restarting in %.1fs",
            index,
            proc.pid,
            code,
            lived,
            delay,
            extra={"worker": index, "exit_code": code, "restart_in_s": delay},
        )
        self.due[index] = now + delay
        if self.on_restart is not None:
            self.on_restart(index, code)

    def _kill_hung(self, now: float) -> None:
        """After ``kill_after_s`` from the stop request, SIGKILL the workers still running (once each)."""
        if self.stop_at is None or self.kill_after_s is None or now < self.stop_at + self.kill_after_s:
            return
        for index, proc in enumerate(self.procs):
            if proc is None or proc.pid is None or not proc.is_alive() or proc.pid in self.killed:
                continue
            log.error(
                "worker %d (pid %s) has not stopped %.0fs after the stop request; killing it",
                index,
                proc.pid,
                self.kill_after_s,
                extra={"worker": index},
            )
            self.killed.add(proc.pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)

    def run(self) -> int:
        """Start the workers, supervise until all have exited after a stop. Returns the exit code."""
        for index in range(self.count):
            if self.stopping:  # a signal arrived while starting: the rest never start
                break
            self._start(index)
        for signum in self.forwarded:  # workers started after the signal must stop as well
            self.signal_all(signum)
        while True:
            alive = {p.sentinel: (i, p) for i, p in enumerate(self.procs) if p is not None}
            if not alive and (self.stopping or not self.due):
                return self.exit_code
            now = time.monotonic()
            timeout = max(0.0, min(self.due.values()) - now) if self.due else 1.0
            self._kill_hung(now)
            for sentinel in wait(list(alive), timeout=min(timeout, 1.0)):
                index, proc = alive[sentinel]  # type: ignore[index]
                proc.join()
                self.procs[index] = None
                self._reaped(index, proc)
            now = time.monotonic()
            for index, when in list(self.due.items()):
                if when <= now and not self.stopping:
                    del self.due[index]
                    log.info("restarting worker %d", index, extra={"worker": index})
                    self._start(index)
