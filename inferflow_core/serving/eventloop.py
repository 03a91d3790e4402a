"""The worker's event loop: asyncio's selector loop that polls for a short while before it sleeps.

A loop that has nothing to do keeps polling its sockets for a while instead of blocking at once (what
Go's scheduler does with its spinning threads before it parks them). Blocking hands the CPU back to
the kernel, and on a virtual machine the vCPU halts: the next request then pays the wake-up and runs
on cold caches, measured here as everything on the request path (ONNX Runtime included) taking
1.3-2.5x its hot-loop time at low load. The poll window is at most ``INFERFLOW_IDLE_SPIN_US``
microseconds and adapts to how long the loop's waits turn out to be (:class:`SpinningSelector`), so
polling costs CPU only while waits are short; ``0`` turns it off.

Each poll releases the GIL (an ``epoll_wait`` with no timeout), and a worker thread finishing a job
(an ONNX run, the logging thread) measured no later at taking it while the loop polls.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
MIN_WINDOW_S = 10e-6  # the first poll window after a reset to 0


class SpinningSelector(selectors.DefaultSelector):
    """The platform's default selector, polling up to its current window before a blocking wait.

    The window adapts like KVM's halt polling: a wait that ended within ``max_s`` (I/O came during the
    poll, or soon after it) doubles it (from :data:`MIN_WINDOW_S`, up to ``max_s``); a longer wait or a
    timeout resets it to 0. Requests arriving back to back keep it at ``max_s``; after a wait on a slow
    backend, a gap of paced traffic or an idle spell it starts again from nothing, so a poll that
    cannot end in I/O costs little."""

    def __init__(self, max_s: float) -> None:
        super().__init__()
        self.max_s = max(0.0, max_s)
        self.window = self.max_s

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if not self.max_s or (timeout is not None and timeout <= 0):
            return super().select(timeout)
        started = time.perf_counter()
        window = self.window if timeout is None else min(self.window, timeout)
        if window > 0:
            end = started + window
            poll = super().select
            while True:
                ready = poll(0)
                if ready:
                    self._grow()
                    return ready
                if time.perf_counter() >= end:
                    break
            if timeout is not None:
                timeout = max(0.0, timeout - window)
        ready = super().select(timeout)
        if ready and time.perf_counter() - started <= self.max_s:
            self._grow()
        else:
            self.window = 0.0
        return ready

    def _grow(self) -> None:
        self.window = min(self.max_s, max(MIN_WINDOW_S, 2 * self.window))


def new_loop(spin_us: float) -> asyncio.AbstractEventLoop:
    """An event loop that polls up to ``spin_us`` µs before sleeping (asyncio's default loop for 0)."""
    if spin_us <= 0:
        return asyncio.new_event_loop()
    return asyncio.SelectorEventLoop(SpinningSelector(spin_us / 1e6))


def run(main: Coroutine[Any, Any, T], spin_us: float) -> T:
    """``asyncio.run(main)`` on :func:`new_loop`."""
    with asyncio.Runner(loop_factory=lambda: new_loop(spin_us)) as runner:
        return runner.run(main)
