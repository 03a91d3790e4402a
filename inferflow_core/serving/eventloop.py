"""The worker's event loop: asyncio's selector loop that polls for a short while before it sleeps.

While requests are coming in, a loop that has nothing to do keeps polling its sockets for up to
``INFERFLOW_IDLE_SPIN_US`` microseconds instead of blocking at once (what Go's scheduler does with
its spinning threads before it parks them). Blocking hands the CPU back to the kernel, and on a
virtual machine the vCPU halts: the next request then pays the wake-up and runs on cold caches,
measured here as everything on the request path (ONNX Runtime included) taking 1.3-2.5x its hot-loop
time at low load. Polling costs CPU only while the loop is idle and I/O arrived within the last
:data:`ACTIVE_WINDOW_S`, so an idle server still sleeps; ``0`` turns it off.

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
ACTIVE_WINDOW_S = 0.1  # poll before sleeping only when I/O arrived this recently


class SpinningSelector(selectors.DefaultSelector):
    """The platform's default selector, polling up to ``spin_s`` before a blocking wait (see the module)."""

    def __init__(self, spin_s: float) -> None:
        super().__init__()
        self.spin_s = max(0.0, spin_s)
        self._last_io = -1e9

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        spin = self.spin_s
        if spin and (timeout is None or timeout > 0):
            now = time.perf_counter()
            if now - self._last_io < ACTIVE_WINDOW_S:
                if timeout is not None:
                    spin = min(spin, timeout)
                end = now + spin
                poll = super().select
                while True:
                    ready = poll(0)
                    if ready:
                        self._last_io = time.perf_counter()
                        return ready
                    now = time.perf_counter()
                    if now >= end:
                        break
                if timeout is not None:
                    timeout = max(0.0, timeout - spin)
        ready = super().select(timeout)
        if ready:
            self._last_io = time.perf_counter()
        return ready


def new_loop(spin_us: float) -> asyncio.AbstractEventLoop:
    """An event loop that polls up to ``spin_us`` µs before sleeping (asyncio's default loop for 0)."""
    if spin_us <= 0:
        return asyncio.new_event_loop()
    return asyncio.SelectorEventLoop(SpinningSelector(spin_us / 1e6))


def run(main: Coroutine[Any, Any, T], spin_us: float) -> T:
    """``asyncio.run(main)`` on :func:`new_loop`."""
    with asyncio.Runner(loop_factory=lambda: new_loop(spin_us)) as runner:
        return runner.run(main)
