"""The feature cache (reference 5.2 steps 6 and 8): L1 in-process, optional L2 shared through ``diskcache``.

Keys are ``model_config_id|cache_version|component|entity key``. A value is ``(layout, signature, blob,
objects)``: ``layout`` names the component's feature list (wire labels and types), so an entry written for
another feature list is a miss, never a wrong column layout. L1 is an LRU bounded in bytes with a TTL per
entry; L2 (``INFERFLOW_ONFS_CACHE_L2_PATH``, a tmpfs path is best) is shared by the worker processes of one
host and is read on an L1 miss, written off the request path (in a thread).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

_OVERHEAD = 120  # rough bytes of bookkeeping per entry (tuple, key object, OrderedDict node)

CacheValue = tuple[str, tuple, bytes, Any]


def entry_size(key: str, value: CacheValue) -> int:
    size = _OVERHEAD + len(key) + len(value[2])
    objs = value[3]
    if objs:
        for item, _ in objs:
            size += 50 + (sum(len(s) for s in item) if isinstance(item, list) else len(item))
    return size


class FeatureCache:
    """Byte-bounded LRU with per-entry TTL, plus an optional diskcache L2."""

    def __init__(
        self, max_bytes: int, l2_path: str = "", clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_bytes = max_bytes
        self.clock = clock
        self.bytes = 0
        self.hits = self.misses = self.l2_hits = self.evictions = 0
        self._l1: OrderedDict[str, tuple[float, int, CacheValue]] = OrderedDict()
        self._l2: Any = None
        self._pending: set[asyncio.Future[None]] = set()
        if l2_path:
            import diskcache

            self._l2 = diskcache.Cache(l2_path)

    def __len__(self) -> int:
        return len(self._l1)

    def get_many(self, keys: Sequence[str]) -> list[CacheValue | None]:
        """L1 lookups (expired entries are dropped)."""
        now, l1 = self.clock(), self._l1
        out: list[CacheValue | None] = []
        for key in keys:
            got = l1.get(key)
            if got is None:
                out.append(None)
            elif got[0] <= now:
                self._drop(key)
                out.append(None)
            else:
                l1.move_to_end(key)
                out.append(got[2])
        found = sum(v is not None for v in out)
        self.hits += found
        self.misses += len(out) - found
        return out

    async def get_many_l2(self, keys: Sequence[str], ttl: float) -> list[CacheValue | None]:
        """L2 lookups for L1 misses (in a thread); hits are promoted to L1 with ``ttl``."""
        if self._l2 is None or not keys:
            return [None] * len(keys)
        got: list[CacheValue | None] = await asyncio.to_thread(lambda: [self._l2.get(k) for k in keys])
        found = [(k, v) for k, v in zip(keys, got, strict=True) if v is not None]
        self.l2_hits += len(found)
        self._put_l1(found, ttl)
        return got

    def put_many(self, items: Sequence[tuple[str, CacheValue]], ttl: float) -> None:
        """Store in L1 now and in L2 off the request path."""
        self._put_l1(items, ttl)
        if self._l2 is not None and items:
            batch = list(items)

            def write() -> None:
                for key, value in batch:
                    self._l2.set(key, value, expire=ttl)

            fut = asyncio.ensure_future(asyncio.to_thread(write))
            self._pending.add(fut)
            fut.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """Wait for pending L2 writes (tests, shutdown)."""
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def _put_l1(self, items: Sequence[tuple[str, CacheValue]], ttl: float) -> None:
        expires = self.clock() + ttl
        for key, value in items:
            size = entry_size(key, value)
            if size > self.max_bytes:
                continue
            if key in self._l1:
                self._drop(key)
            self._l1[key] = (expires, size, value)
            self.bytes += size
        while self.bytes > self.max_bytes and self._l1:
            _key, (_e, size, _v) = self._l1.popitem(last=False)
            self.bytes -= size
            self.evictions += 1

    def _drop(self, key: str) -> None:
        _e, size, _v = self._l1.pop(key)
        self.bytes -= size

    def close(self) -> None:
        if self._l2 is not None:
            self._l2.close()
