"""The Feast side: one ``FeatureStore`` per repository, ``get_online_features`` in batches on worker threads,
answers turned into a :class:`FeatureFrame` (one row per entity, missing entity = missing row).

The SDK is synchronous and cannot be interrupted: a batch that outlives its timeout is abandoned (its thread
finishes in the background, bounded by the pool size) and its entities stay missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from inferflow_core.api import DataType, features

from .config import FeatureSpec

_INT_TYPES = ("Int32", "Int64", "UnixTimestamp")


@dataclass(frozen=True)
class FetchRequest:
    """What one component asks for: join keys (in ``fs_keys`` order) and features (fixed at build time)."""

    join_keys: tuple[str, ...]
    specs: tuple[FeatureSpec, ...]

    @property
    def refs(self) -> list[str]:
        return [s.ref for s in self.specs]

    @property
    def dtypes(self) -> tuple[DataType, ...]:
        return tuple(s.dtype for s in self.specs)


@dataclass
class FetchOutcome:
    frame: features.FeatureFrame  # one row per requested key
    failures: list[tuple[str, str]] = field(default_factory=list)  # (kind, message)
    failed_all: bool = False
    calls: int = 0


class FeastBackend:
    name = "feast"

    def __init__(self, repo: str, batch_size: int, deadline_ms: int, workers: int) -> None:
        from feast import FeatureStore  # heavy: imported when a model config first uses it

        self.repo = repo
        self.store = FeatureStore(repo_path=repo)
        self.batch_size = batch_size
        self.deadline = deadline_ms / 1000.0
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="feast")
        self._key_types: dict[tuple[str, ...], tuple[bool, ...]] = {}

    def check(self, request: FetchRequest) -> None:
        """Every view exists, serves the features and is keyed by exactly the join keys; remembers which
        join keys are integers (the matrix holds them as text)."""
        ints: dict[str, bool] = {}
        for view in dict.fromkeys(s.view for s in request.specs):
            try:
                fv = self.store.get_feature_view(view)
            except Exception as exc:  # the SDK raises its own FeatureViewNotFoundException
                raise LookupError(f"feature view {view!r} not found in the Feast repo {self.repo}") from exc
            names = {f.name for f in fv.features}
            missing = [s.name for s in request.specs if s.view == view and s.name not in names]
            if missing:
                raise LookupError(f"feature view {view!r} has no feature(s) {missing}")
            keys = {c.name: str(c.dtype) for c in fv.entity_columns}
            if set(keys) != set(request.join_keys):
                raise ValueError(
                    f"fs_keys {list(request.join_keys)} do not match the join keys {sorted(keys)} of {view!r}"
                )
            for key, dtype in keys.items():
                ints[key] = any(t in dtype for t in _INT_TYPES)
        self._key_types[request.join_keys] = tuple(ints[k] for k in request.join_keys)

    async def fetch(
        self, request: FetchRequest, keys: list[tuple[str, ...]], timeout: float | None
    ) -> FetchOutcome:
        """Features of ``keys`` (unique, non-empty), batches in parallel, each bounded by
        ``min(deadline, timeout)``. A failed batch leaves its rows missing and is reported by kind."""
        ints = self._key_types.get(request.join_keys)
        if ints is None:
            self.check(request)
            ints = self._key_types[request.join_keys]
        columns, bad = _typed_keys(keys, ints)
        bound = self.deadline if timeout is None else min(self.deadline, timeout)
        loop = asyncio.get_running_loop()
        starts = list(range(0, len(keys), self.batch_size))
        calls = []
        for start in starts:
            stop = start + self.batch_size
            rows = {k: col[start:stop] for k, col in zip(request.join_keys, columns, strict=True)}
            calls.append(loop.run_in_executor(self._pool, self._call, request, rows))
        results = await asyncio.gather(*(_bounded(c, bound) for c in calls), return_exceptions=True)
        parts, failures = [], []
        for start, result in zip(starts, results, strict=True):
            if isinstance(result, BaseException):
                failures.append(_failure(result, bound))
                continue
            pos = np.arange(start, min(start + self.batch_size, len(keys)))
            parts.append((pos, result))
        if bad.any():
            failures.append(("bad-key", f"{int(bad.sum())} entity key(s) are not integers"))
        frame = features.assemble(request.dtypes, len(keys), parts)
        if bad.any():
            frame = _blank(frame, bad)
        failed_all = bool(starts) and not parts
        return FetchOutcome(frame, failures, failed_all, len(starts))

    def _call(self, request: FetchRequest, rows: dict[str, list[Any]]) -> features.FeatureFrame:
        response = self.store.get_online_features(request.refs, rows, full_feature_names=True)
        answer = response.to_dict()
        n = len(next(iter(rows.values())))
        columns = [_column(answer.get(f"{s.view}__{s.name}"), s.dtype, n) for s in request.specs]
        return features.FeatureFrame.from_columns(request.dtypes, columns)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


async def _bounded(call: asyncio.Future[features.FeatureFrame], seconds: float) -> features.FeatureFrame:
    return await asyncio.wait_for(call, max(seconds, 0.0))


def _failure(exc: BaseException, bound: float) -> tuple[str, str]:
    if isinstance(exc, TimeoutError):
        return "timeout", f"get_online_features exceeded {bound * 1000:.0f} ms"
    return "error", f"get_online_features failed: {type(exc).__name__}: {exc}"


def _typed_keys(keys: list[tuple[str, ...]], ints: tuple[bool, ...]) -> tuple[list[list[Any]], np.ndarray]:
    """Per join key, its values for the SDK (ints parsed from the matrix's text); rows that do not parse."""
    bad = np.zeros(len(keys), dtype=bool)
    columns: list[list[Any]] = []
    for i, is_int in enumerate(ints):
        texts = [k[i] for k in keys]
        if not is_int:
            columns.append(texts)
            continue
        try:
            columns.append(np.array(texts).astype(np.int64).tolist())
        except (ValueError, OverflowError):
            parsed = []
            for j, text in enumerate(texts):
                try:
                    parsed.append(int(text))
                except ValueError:
                    parsed.append(0)
                    bad[j] = True
            columns.append(parsed)
    return columns, bad


def _blank(frame: features.FeatureFrame, rows: np.ndarray) -> features.FeatureFrame:
    for block in frame.blocks:
        block.valid[rows] = False
    return frame


def _column(values: Sequence[Any] | None, dtype: DataType, n: int) -> tuple[np.ndarray, np.ndarray]:
    """One feature's answer (Python values, None = missing) as ``(values, valid)`` of ``dtype``: scalars 1-D,
    fixed-width vectors 2-D (the length of the first present row; rows of another length are missing),
    strings and string vectors as object arrays. Converted by Arrow, not cell by cell."""
    arr = pa.array([None] * n if values is None else values, from_pandas=True)
    valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_null(arr.type):  # no entity of the batch has it
        return _missing(dtype, n)
    if not dtype.is_fixed_width:
        if dtype.is_vector:  # one list per row (np.asarray would make a 2-D array of equal-length lists)
            out = np.fromiter(arr.to_pylist(), dtype=object, count=n)
        else:
            out = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)
        if not valid.all():
            out = out.copy()
            out[~valid] = features.empty_objects(int((~valid).sum()), dtype.is_vector)
        return out, valid
    if not dtype.is_vector:
        filled = arr.fill_null(pa.scalar(0, pa.int8()).cast(arr.type)) if arr.null_count else arr
        return _as(filled.to_numpy(zero_copy_only=False), dtype), valid
    if not isinstance(arr, pa.ListArray | pa.LargeListArray | pa.FixedSizeListArray):
        return _missing(dtype, n)
    lengths = np.asarray(arr.value_lengths().fill_null(-1).to_numpy(zero_copy_only=False))
    dim = int(lengths[np.flatnonzero(valid)[0]])
    valid &= lengths == dim
    out = np.zeros((n, dim), dtype=dtype.scalar.numpy_dtype)
    if valid.any():
        flat = arr.filter(pa.array(valid)).flatten().to_numpy(zero_copy_only=False)
        out[valid] = _as(flat, dtype.scalar).reshape(-1, dim)
    return out, valid


def _missing(dtype: DataType, n: int) -> tuple[np.ndarray, np.ndarray]:
    if not dtype.is_fixed_width:
        return features.empty_objects(n, dtype.is_vector), np.zeros(n, dtype=bool)
    shape = (n, 0) if dtype.is_vector else (n,)
    return np.zeros(shape, dtype=dtype.scalar.numpy_dtype), np.zeros(n, dtype=bool)


def _as(values: np.ndarray, dtype: DataType) -> np.ndarray:
    return np.asarray(values).astype(dtype.numpy_dtype, copy=False)
