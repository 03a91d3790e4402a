"""Admission control (issue 19): a bounded number of requests execute per worker, a bounded number wait
(FIFO, bounded in time), the rest are refused at once. Work whose deadline has passed, or cannot be met,
is dropped before it starts. Every refusal is counted in ``requests_shed{reason}``.

Without it, a worker at 1.5x its capacity executes every request late and most of them past their
deadline (goodput collapses); with it the excess is refused in microseconds and the admitted requests
finish in time.
"""

from __future__ import annotations

import asyncio
from collections import deque

from ..errors import ExpiredError, OverloadedError, ShedError
from ..observability.metrics import Metrics


class Admission:
    """Slots for executing requests; ``async with admission.slot(time_remaining):`` around the work."""

    def __init__(self, settings: object, metrics: Metrics) -> None:
        self.max_in_flight = int(getattr(settings, "max_in_flight", 256))
        self.max_queued = int(getattr(settings, "max_queued", 512))
        self.max_queue_s = int(getattr(settings, "max_queue_ms", 500)) / 1000.0
        self.min_work_s = int(getattr(settings, "min_work_ms", 10)) / 1000.0
        self.metrics = metrics
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    def _shed(self, reason: str, exc: Exception) -> Exception:
        self.metrics.count("requests_shed", reason=reason)
        return exc

    def enter(self, time_remaining: float | None) -> bool:
        """Take a free slot at once when nobody waits and the deadline leaves time for the work (the usual
        case, no coroutine); False otherwise: then :meth:`acquire` waits or refuses."""
        if time_remaining is not None and time_remaining < self.min_work_s:
            return False
        if self.in_flight < self.max_in_flight and not self._waiters:
            self.in_flight += 1
            return True
        return False

    async def acquire(self, time_remaining: float | None) -> None:
        """Take a slot or raise (DEADLINE_EXCEEDED / RESOURCE_EXHAUSTED / UNAVAILABLE)."""
        if time_remaining is not None and time_remaining < self.min_work_s:
            raise self._shed("expired", ExpiredError("request deadline passed before it was started"))
        if self.in_flight < self.max_in_flight and not self._waiters:
            self.in_flight += 1
            return
        if len(self._waiters) >= self.max_queued:
            raise self._shed(
                "overloaded",
                OverloadedError(
                    f"server overloaded: {self.in_flight} requests in flight and {len(self._waiters)} "
                    "queued (INFERFLOW_MAX_IN_FLIGHT, INFERFLOW_MAX_QUEUED)"
                ),
            )
        wait = self.max_queue_s
        if time_remaining is not None:
            wait = min(wait, time_remaining - self.min_work_s)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await asyncio.wait((fut,), timeout=max(0.0, wait))
        finally:
            if not fut.done():
                fut.cancel()
                self._waiters.remove(fut)
            elif not fut.cancelled() and asyncio.current_task().cancelling():  # type: ignore[union-attr]
                self.release()  # handed a slot while being cancelled: pass it on
        if fut.cancelled():
            if time_remaining is not None and wait < self.max_queue_s:
                raise self._shed("deadline", ExpiredError("request deadline would pass while it waits"))
            raise self._shed("queue_timeout", ShedError(f"server busy: no slot within {wait * 1000:.0f} ms"))

    def release(self) -> None:
        """Hand the slot to the oldest waiter, or free it."""
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        self.in_flight -= 1
