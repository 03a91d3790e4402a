"""The feature cache (go-compatibility §5.2, steps 6, 8): L1 local, optional L2 shared through ``diskcache``.

Keys are ``model_config_id|cache_version|component|entity key``. L1 keeps the entities of one *format* — a
component's feature list (wire labels and types) plus block layout (vector lengths) — in a :class:`Slab`
laid out like the embedded store: one growable numpy array per block of values and of validity, with expiry,
last use and size per row. The index is two-level, ``prefix -> entity -> slab << 32 | row``, so the entity
strings of a request are looked up as they are (hashes already cached, no key strings built). A hit path is
one dict pass over the keys and one ``take`` per block, and a warm cache of 100k entities is a few arrays
rather than ~300k small objects for the garbage collector to walk (per-entry tuples would make GC
pauses of tens of ms). An entry of another feature list is a miss, never a wrong layout.

Bounded in bytes (``IN_MEMORY_CACHE_SIZE_IN_BYTES``; an entry counts its row, key and string cells plus a
fixed overhead). LRU is approximated: each hit stamps a use counter; when over the bound the least recently
used entries are evicted (at least 1/16 of the bound at a time, so eviction is amortised). TTL is per entry.

L2 (a plugin setting such as ``INFERFLOW_ONFS_CACHE_L2_PATH``; a tmpfs path is best) is shared by the worker
processes of one host: read on an L1 miss (hits are promoted to L1), written off the request path in a thread.
An L2 value carries its format's description, so a process that never wrote that format can read it. L2 holds
bytes only and never unpickles what it finds in its directory (see ``l2.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..dtypes import DataType
from .frame import Block, FeatureFrame
from .l2 import decode_entry, encode_desc, encode_entry
from .rows import pack_rows, row_dtype, unpack_rows

_OVERHEAD = 120  # rough bytes of bookkeeping per entry (key object, index entry, arrays)
_SHIFT = 32
_MASK = (1 << _SHIFT) - 1


def _cells_size(values: np.ndarray, vector: bool) -> np.ndarray:
    """Bytes of the string cells of one variable-width block, per row."""
    if vector:
        return np.fromiter((50 + sum(map(len, v)) for v in values), dtype=np.int64, count=len(values))
    return np.fromiter((50 + len(v) for v in values), dtype=np.int64, count=len(values))


class Slab:
    """The cached entities of one format, stored like the embedded store: one growable array per block
    (values and validity), so a hit is a ``take`` per block. ``full`` marks rows whose cells are all
    present (then validity need not be gathered); expiry, last use and size are per-row arrays."""

    def __init__(self, sid: int, fmt: int, layout: str, signature: tuple) -> None:
        self.sid, self.fmt, self.layout, self.signature = sid, fmt, layout, signature
        self.specs: list[tuple[DataType, tuple, int]] = list(signature[0])
        self.values: list[np.ndarray] = []
        self.valid: list[np.ndarray] = []
        self.row_bytes = 0
        for dt, shape, k in self.specs:
            if dt.is_fixed_width:
                self.values.append(np.zeros((0, *shape), dtype=dt.numpy_dtype))
                self.row_bytes += int(np.prod(shape, dtype=np.int64)) * dt.itemsize + k
            else:
                self.values.append(np.empty(0, dtype=object))
                self.row_bytes += 8 + k
            self.valid.append(np.zeros((0, k), dtype=bool))
        self.row_bytes += 1 + 8 + 8 + 8 + 4  # full, expires, used, sizes, prefixes
        self.full = np.zeros(0, dtype=bool)
        self.expires = np.zeros(0)
        self.used = np.zeros(0, dtype=np.int64)
        self.sizes = np.zeros(0, dtype=np.int64)  # 0 = free row
        self.keys: list[str | None] = []  # entity of each row (None = free)
        self.prefixes = np.zeros(0, dtype=np.int32)  # and its key prefix, as an id
        self.free: list[int] = []

    def allocate(self, count: int) -> np.ndarray:
        """``count`` free rows (growing the arrays by doubling when needed)."""
        take = min(count, len(self.free))
        got = [self.free.pop() for _ in range(take)]
        if take < count:
            start = len(self.keys)
            need = start + count - take
            if need > len(self.full):
                cap = max(need, len(self.full) * 3 // 2, 64)
                self.values = [_grow(v, cap) for v in self.values]
                self.valid = [_grow(v, cap) for v in self.valid]
                self.full, self.expires = _grow(self.full, cap), _grow(self.expires, cap)
                self.used, self.sizes = _grow(self.used, cap), _grow(self.sizes, cap)
                self.prefixes = _grow(self.prefixes, cap)
            self.keys.extend([None] * (need - start))
            got.extend(range(start, need))
        return np.asarray(got, dtype=np.intp)

    def write(self, rows: np.ndarray, frame: FeatureFrame) -> None:
        full = np.ones(len(rows), dtype=bool)
        for b, block in enumerate(frame.blocks):
            self.values[b][rows] = block.values
            self.valid[b][rows] = block.valid
            full &= block.valid.all(axis=1)
        self.full[rows] = full

    def clear(self, row: int) -> None:
        for b, (dt, _shape, _k) in enumerate(self.specs):
            if not dt.is_fixed_width:
                self.values[b][row] = None  # let the strings go

    def frame(self, rows: np.ndarray) -> FeatureFrame:
        n = len(rows)
        dense = bool(self.full[rows].all())
        blocks = []
        for b, (dt, _shape, k) in enumerate(self.specs):
            valid = np.ones((n, k), dtype=bool) if dense else self.valid[b][rows]
            blocks.append(Block(dt, self.values[b][rows], valid))
        return FeatureFrame(n, blocks, self.signature[1])


def _grow(arr: np.ndarray, cap: int) -> np.ndarray:
    out = np.zeros((cap, *arr.shape[1:]), dtype=arr.dtype) if arr.dtype != object else np.empty(cap, object)
    out[: len(arr)] = arr
    return out


class FeatureCache:
    """Byte-bounded, approximately-LRU entity cache with per-entry TTL, plus an optional diskcache L2."""

    def __init__(
        self, max_bytes: int, l2_path: str = "", clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_bytes = max_bytes
        self.clock = clock
        self.bytes = 0
        self.hits = self.misses = self.l2_hits = self.evictions = 0
        self._index: dict[str, dict[str, int]] = {}  # key prefix (model|version|component|) -> entity -> code
        self._prefixes: list[str] = []
        self._prefix_ids: dict[str, int] = {}
        self._slabs: list[Slab] = []
        self._by_format: dict[int, Slab] = {}
        self._memo: dict[tuple[str, int], tuple[tuple, Slab]] = {}
        self._tick = 0
        self._l2: Any = None
        self._pending: set[asyncio.Future[None]] = set()
        if l2_path:
            from .l2 import open_l2

            self._l2 = open_l2(l2_path)

    def __len__(self) -> int:
        return sum(map(len, self._index.values()))

    # ------------------------------------------------------------------------------------ formats
    def slab(self, layout: str, signature: tuple) -> Slab:
        """The slab of (feature list, block layout); its format id is the same in every process.
        Memoised by the identity of the signature's slots tuple (frames taken from one source share it),
        since hashing the repr of ~66 slots costs ~100 us per call."""
        memo = self._memo.get((layout, id(signature[1])))
        if memo is not None and memo[0] is signature[1] and memo[1].signature[0] == signature[0]:
            return memo[1]
        got = self._slab(layout, signature)
        self._memo[(layout, id(signature[1]))] = (signature[1], got)  # keeps the slots tuple alive
        return got

    def _slab(self, layout: str, signature: tuple) -> Slab:
        digest = hashlib.blake2b(f"{layout}\n{signature!r}".encode(), digest_size=8).digest()
        fmt = int.from_bytes(digest, "little")
        got = self._by_format.get(fmt)
        if got is None:
            got = self._by_format[fmt] = Slab(len(self._slabs), fmt, layout, signature)
            self._slabs.append(got)
        return got

    # ------------------------------------------------------------------------------------ reads
    def lookup(
        self, prefix: str, keys: Sequence[str], count: bool = True
    ) -> list[tuple[np.ndarray, Slab, np.ndarray]]:
        """Live L1 entries of ``prefix + key`` for ``keys`` as ``(positions in keys, slab, rows)`` per slab.
        Expired entries are dropped; hits are stamped as recently used. (Two-level index: the entity strings
        of a request are looked up as they are, their hashes already computed, no key strings built.)"""
        index = self._index.get(prefix)
        if index is None:
            if count:
                self.misses += len(keys)
            return []
        codes = np.fromiter(map(index.get, keys, itertools.repeat(-1)), dtype=np.int64, count=len(keys))
        hit = codes >= 0
        out = []
        found = 0
        if hit.any():
            if hit.all():
                packed, where = codes, np.arange(len(codes), dtype=np.intp)
            else:
                where = np.flatnonzero(hit)
                packed = codes[where]
            sids = packed >> _SHIFT
            rows_all = (packed & _MASK).astype(np.intp)
            first = int(sids[0])
            groups = [first] if (sids == first).all() else np.unique(sids).tolist()
            now = self.clock()
            self._tick += 1
            for sid in groups:
                sel = None if len(groups) == 1 else np.flatnonzero(sids == sid)
                pos = where if sel is None else where[sel]
                rows = rows_all if sel is None else rows_all[sel]
                slab = self._slabs[sid]
                live = slab.expires[rows] > now
                if not live.all():
                    self._remove(slab, rows[~live])
                    pos, rows = pos[live], rows[live]
                slab.used[rows] = self._tick
                found += len(rows)
                if len(rows):
                    out.append((pos, slab, rows))
        if count:
            self.hits += found
            self.misses += len(keys) - found
        return out

    async def fill_from_l2(self, prefix: str, keys: Sequence[str], ttl: float) -> int:
        """Read L1 misses from L2 (in a thread) and promote the hits to L1 with ``ttl``; how many."""
        if self._l2 is None or not keys:
            return 0
        raw: list[Any] = await asyncio.to_thread(lambda: [self._l2.get(prefix + k) for k in keys])
        groups: dict[int, tuple[Slab, list[str], list[bytes], list[Any]]] = {}
        for key, got in zip(keys, raw, strict=True):
            entry = decode_entry(got)  # bytes we wrote, never a pickle; anything else is a miss
            if entry is None:
                continue
            layout, signature, row, cells = entry
            try:
                slab = self.slab(layout, signature)
            except (TypeError, ValueError):  # written by another version of this plugin: a miss
                continue
            if len(row) != row_dtype(signature).itemsize:
                continue
            group = groups.setdefault(slab.fmt, (slab, [], [], []))
            group[1].append(key)
            group[2].append(row)
            group[3].append(cells)
        promoted = 0
        for slab, gkeys, rows, objs in groups.values():
            arr = np.frombuffer(b"".join(rows), dtype=row_dtype(slab.signature))
            frame = unpack_rows(slab.signature, arr, None if objs[0] is None else objs)
            self._insert(prefix, slab, gkeys, frame, ttl)
            promoted += len(gkeys)
        self.l2_hits += promoted
        return promoted

    async def cached(
        self, prefix: str, keys: Sequence[str], layout: str, ttl: float
    ) -> tuple[list[tuple[np.ndarray, Slab, np.ndarray]], list[int]]:
        """What a feature component asks first: the live entries of ``keys`` written with ``layout`` (L1, then
        L2 for the L1 misses, promoted with ``ttl``) as ``(positions in keys, slab, rows)``, and the
        positions still to fetch. An entry of another layout is a miss."""
        found = self.lookup(prefix, keys)
        if self._l2 is not None and sum(len(pos) for pos, _, _ in found) < len(keys):
            have = np.zeros(len(keys), dtype=bool)
            for pos, _, _ in found:
                have[pos] = True
            missing = np.flatnonzero(~have)
            if await self.fill_from_l2(prefix, [keys[i] for i in missing.tolist()], ttl):
                more = self.lookup(prefix, [keys[i] for i in missing.tolist()], count=False)
                found += [(missing[pos], slab, rows) for pos, slab, rows in more]
        parts = []
        usable = np.zeros(len(keys), dtype=bool)
        for pos, slab, rows in found:
            if slab.layout != layout:
                continue
            usable[pos] = True
            parts.append((pos, slab, rows))
        return parts, np.flatnonzero(~usable).tolist()

    # ------------------------------------------------------------------------------------ writes
    def put_frame(
        self, prefix: str, keys: Sequence[str], layout: str, frame: FeatureFrame, ttl: float
    ) -> None:
        """Cache row ``i`` of ``frame`` under ``prefix + keys[i]`` (L1 now, L2 off the request path)."""
        if not keys:
            return
        slab = self.slab(layout, frame.signature)
        self._insert(prefix, slab, keys, frame, ttl)
        if self._l2 is not None:
            arr, objs = pack_rows(frame)
            desc = encode_desc(slab.layout, slab.signature)
            values = [
                encode_entry(desc, arr[i].tobytes(), None if objs is None else objs[i])
                for i in range(len(keys))
            ]
            batch = [
                (prefix + key, value) for key, value in zip(keys, values, strict=True) if value is not None
            ]

            def write() -> None:
                for key, value in batch:
                    self._l2.set(key, value, expire=ttl)

            fut = asyncio.ensure_future(asyncio.to_thread(write))
            self._pending.add(fut)
            fut.add_done_callback(self._pending.discard)

    def put_present(
        self, prefix: str, keys: Sequence[str], layout: str, frame: FeatureFrame, ttl: float
    ) -> None:
        """Cache the rows of ``frame`` that hold at least one value (missing entities are asked again)."""
        has = np.zeros(frame.n, dtype=bool)
        for block in frame.blocks:
            has |= block.valid.any(axis=1)
        if not has.any():
            return
        rows = np.flatnonzero(has)
        sub = frame if len(rows) == frame.n else frame.take(rows)
        self.put_frame(prefix, [keys[i] for i in rows.tolist()], layout, sub, ttl)

    async def drain(self) -> None:
        """Wait for pending L2 writes (tests, shutdown)."""
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def _insert(self, prefix: str, slab: Slab, keys: Sequence[str], frame: FeatureFrame, ttl: float) -> None:
        index = self._index.get(prefix)
        if index is None:
            index = self._index[prefix] = {}
            self._prefix_ids[prefix] = len(self._prefixes)
            self._prefixes.append(prefix)
        prefix_id = self._prefix_ids[prefix]
        for code in [c for c in map(index.get, keys) if c is not None]:  # replace: drop the old entry
            self._remove(self._slabs[code >> _SHIFT], np.array([code & _MASK]))
        base_size = _OVERHEAD + slab.row_bytes + len(prefix)
        sizes = np.fromiter(map(len, keys), dtype=np.int64, count=len(keys)) + base_size
        for block in frame.blocks:
            if not block.fixed:
                sizes += _cells_size(block.values, block.dtype.is_vector)
        fits = sizes <= self.max_bytes
        if not fits.all():
            keep = np.flatnonzero(fits)
            keys, frame, sizes = [keys[i] for i in keep.tolist()], frame.take(keep), sizes[keep]
        if not len(keys):
            return
        rows = slab.allocate(len(keys))
        slab.write(rows, frame)
        slab.expires[rows] = self.clock() + ttl
        self._tick += 1
        slab.used[rows] = self._tick
        slab.sizes[rows] = sizes
        code = slab.sid << _SHIFT
        slab.prefixes[rows] = prefix_id
        row_list = rows.tolist()
        if row_list == list(range(row_list[0], row_list[0] + len(row_list))):  # fresh rows: one slice
            slab.keys[row_list[0] : row_list[0] + len(row_list)] = keys
        else:
            for key, row in zip(keys, row_list, strict=True):
                slab.keys[row] = key
        index.update(zip(keys, (rows | code).tolist(), strict=True))
        self.bytes += int(sizes.sum())
        if self.bytes > self.max_bytes:
            self._evict()

    def _remove(self, slab: Slab, rows: np.ndarray) -> None:
        for row in rows.tolist():
            key = slab.keys[row]
            if key is None:
                continue
            del self._index[self._prefixes[slab.prefixes[row]]][key]
            slab.keys[row] = None
            slab.clear(row)
            self.bytes -= int(slab.sizes[row])
            slab.sizes[row] = 0
            slab.free.append(row)

    def _evict(self) -> None:
        """Drop the least recently used entries until at least 1/16 of the bound is free."""
        target = self.bytes - self.max_bytes + self.max_bytes // 16
        used = np.concatenate([s.used[: len(s.keys)] for s in self._slabs])
        sizes = np.concatenate([s.sizes[: len(s.keys)] for s in self._slabs])
        owner = np.concatenate([np.full(len(s.keys), s.sid) for s in self._slabs])
        rows = np.concatenate([np.arange(len(s.keys)) for s in self._slabs])
        occupied = np.flatnonzero(sizes > 0)
        order = occupied[np.argsort(used[occupied], kind="stable")]
        upto = int(np.searchsorted(np.cumsum(sizes[order]), target)) + 1
        victims = order[:upto]
        for sid in np.unique(owner[victims]).tolist():
            mine = victims[owner[victims] == sid]
            self._remove(self._slabs[sid], rows[mine])
        self.evictions += len(victims)

    def close(self) -> None:
        if self._l2 is not None:
            self._l2.close()
