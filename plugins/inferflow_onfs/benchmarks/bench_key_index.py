"""The embedded store's key lookup on the S1 data: the hash directory (``KeyIndex``) against a sorted
array + ``searchsorted`` and a plain dict, 200 catalog keys (of 100,000) and 1 user key (of 10,000).

    python plugins/inferflow_onfs/benchmarks/bench_key_index.py [--requests 1000]

Each lookup gets fresh key strings (hashes cached, as after the feature component's dedupe), drawn as the
S1 load generator draws them. Three cache states: ``L3`` (nothing evicted between lookups), ``L2-evicted``
(4 MB written between lookups) and ``DRAM`` (64 MB written: every index line comes from memory). Reports
the median µs per lookup and the index's memory (tracemalloc; the dict's includes its key strings).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from itertools import repeat
from operator import itemgetter

import numpy as np
import pyarrow.parquet as pq
from inferflow_onfs.store import KeyIndex

from inferflow_core.testing import example

Keys = Sequence[tuple[str, ...]]


class SortedIndex:
    """The sorted-array index the hash directory replaced: one ``searchsorted`` plus a verification."""

    def __init__(self, keys: list[str]) -> None:
        arr = np.array(keys)
        order = np.argsort(arr, kind="stable")
        self.sorted, self.order = arr[order], order.astype(np.int32)
        self.lens = np.fromiter(map(len, keys), dtype=np.int32, count=len(keys))
        self.n = len(keys)

    def rows(self, keys: Keys) -> np.ndarray:
        texts = [k[0] for k in keys]
        query = np.array(texts)
        at = np.maximum(np.searchsorted(self.sorted, query, side="right") - 1, 0)
        rows = self.order[at].astype(np.intp)
        lens = np.fromiter(map(len, texts), dtype=np.int32, count=len(texts))
        return np.where((self.sorted[at] == query) & (self.lens[rows] == lens), rows, self.n)


def _timed(
    lookup: Callable[[Keys], np.ndarray], requests: Sequence[Keys], junk: np.ndarray, evict_mb: int
) -> float:
    times = []
    for request in requests:
        fresh = [(k[0].encode().decode(),) for k in request]
        for k in fresh:
            hash(k)
        if evict_mb:
            junk[: evict_mb << 20 : 64] += 1
        started = time.perf_counter_ns()
        lookup(fresh)
        times.append(time.perf_counter_ns() - started)
    return float(np.median(times)) / 1000


def _memory(build: Callable[[], object]) -> tuple[object, float]:
    gc.collect()
    tracemalloc.start()
    obj = build()
    used = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return obj, used / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    root = example.ensure_data(demo=False, progress=None) / "features"
    junk = np.zeros(64 << 20, dtype=np.uint8)
    for label, per_request in (("catalog", 200), ("user", 1)):
        table = pq.read_table(root / f"{label}.parquet", columns=[f"{label}_id"])
        keys = [str(v) for v in table.column(0).to_pylist()]
        n = len(keys)
        rng = np.random.default_rng(11)
        requests: list[Keys] = [
            [(str(int(i)),) for i in rng.choice(n, per_request, replace=False)] for _ in range(args.requests)
        ]

        directory, directory_mb = _memory(lambda: KeyIndex([keys], n))  # noqa: B023
        ordered, ordered_mb = _memory(lambda: SortedIndex(keys))  # noqa: B023
        table_, dict_mb = _memory(lambda: dict(zip(keys, range(n), strict=True)))  # noqa: B023
        dict_mb += sum(map(sys.getsizeof, keys)) / 1e6
        get = table_.get  # type: ignore[attr-defined]

        def by_dict(request: Keys, get: Callable = get, miss: int = n) -> np.ndarray:
            return np.fromiter(map(get, map(itemgetter(0), request), repeat(miss)), np.intp, len(request))

        candidates = (
            ("hash directory", directory.rows, directory_mb),  # type: ignore[attr-defined]
            ("sorted+searchsorted", ordered.rows, ordered_mb),  # type: ignore[attr-defined]
            ("dict", by_dict, dict_mb),
        )
        probe = [*requests[0], ("nobody",)]
        want = by_dict(probe)
        for name, lookup, _ in candidates:
            assert (lookup(probe) == want).all(), name
        for name, lookup, mb in candidates:
            l3, l2, dram = (_timed(lookup, requests, junk, mb_) for mb_ in (0, 4, 64))
            print(
                f"{label:8s} {per_request:3d} keys  {name:20s} {mb:5.1f} MB   L3 {l3:6.1f} us"
                f"   L2-evicted {l2:6.1f} us   DRAM {dram:6.1f} us",
                flush=True,
            )


if __name__ == "__main__":
    main()
