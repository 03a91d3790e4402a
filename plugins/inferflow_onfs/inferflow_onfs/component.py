"""The FeatureComponent (reference 5.2), with the anchor's defects fixed.

Per request: read the key columns as text, build one key per row (parts joined with ``|``), dedupe (a user key
shared by 200 targets is looked up once), never send an empty key (a row with any empty key part stays
missing), serve what the cache holds, fetch the rest through the backend, then scatter the unique rows back to
the matrix rows with the inverse index — one numpy operation per block, one ``set_column`` per feature.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np

from inferflow_core.api import (
    ColumnSpec,
    Component,
    ComponentConfig,
    ComponentError,
    DataType,
    Metrics,
    RunContext,
)

from .backends import Backend, FetchRequest
from .cache import CacheValue, FeatureCache
from .codec import pack_rows, unpack_rows
from .config import FeatureComponentConfig, feature_specs
from .frame import FeatureFrame, assemble


class FeatureComponent(Component):
    kind = "feature"

    def __init__(
        self,
        cfg: FeatureComponentConfig,
        model_id: str,
        settings: ComponentConfig,
        backend: Backend | None,
        cache: FeatureCache | None,
        metrics: Metrics | None,
    ) -> None:
        super().__init__(cfg.component, model_id)
        self.cfg = cfg
        self.specs = feature_specs(cfg)
        self.key_cols = [k.col for k in cfg.fs_keys]
        self.request = FetchRequest(cfg.fs_request.label, tuple(k.schema_ for k in cfg.fs_keys), self.specs)
        self.backend = backend
        self.cache = cache if settings.cache_enabled and cfg.comp_cache_enabled else None
        self.ttl = float(cfg.comp_cache_ttl or settings.cache_ttl or 100)
        self.cache_prefix = f"{model_id}|{settings.effective_cache_version}|{cfg.component}|"
        layout = "\n".join(f"{s.group}\t{s.wire_label}\t{s.dtype.name}" for s in self.specs)
        self.layout = hashlib.blake2b(layout.encode(), digest_size=12).hexdigest()
        self.metrics = metrics
        self._labels = {"model_id": model_id, "component": cfg.component}

    def outputs(self) -> list[ColumnSpec]:
        out = [ColumnSpec(s.column, s.dtype) for s in self.specs]
        if self.cfg.composite_id:
            out.append(ColumnSpec(self.cfg.component_id, DataType.STRING))
        return out

    def required_columns(self) -> list[ColumnSpec]:
        return [ColumnSpec(col, DataType.STRING) for col in dict.fromkeys(self.key_cols)]

    # ------------------------------------------------------------------------------------------ run
    async def run(self, ctx: RunContext) -> None:
        matrix = ctx.matrix
        texts = []
        for col in self.key_cols:
            values, valid = matrix.read(col, DataType.STRING)
            texts.append([v if ok else "" for v, ok in zip(values.tolist(), valid.tolist(), strict=True)])
        row_keys = list(zip(*texts, strict=True))
        if self.specs:
            await self._features(ctx, row_keys)
        if self.cfg.composite_id:  # last: a failed component leaves all its outputs missing
            joined = np.array(["|".join(k) for k in row_keys] + [None], dtype=object)[:-1]
            matrix.set_column(self.cfg.component_id, joined, joined != "")

    async def _features(self, ctx: RunContext, row_keys: list[tuple[str, ...]]) -> None:
        index: dict[tuple[str, ...], int] = {}
        inverse = np.fromiter((index.setdefault(k, len(index)) for k in row_keys), np.intp, len(row_keys))
        unique = [k for k in index if all(k)]  # a key with an empty part is never sent
        positions = np.fromiter((index[k] for k in unique), np.intp, len(unique))
        parts, misses = await self._from_cache(unique, positions)
        if misses:
            parts.append((positions[misses], await self._fetch(ctx, unique, misses)))
        frame = assemble(self.request.dtypes, len(index), parts).take(inverse)
        for j, spec in enumerate(self.specs):
            values, valid = frame.column(j)
            if valid.any():
                ctx.matrix.set_column(spec.column, values, valid)

    async def _from_cache(
        self, unique: list[tuple[str, ...]], positions: np.ndarray
    ) -> tuple[list[tuple[np.ndarray, FeatureFrame]], list[int]]:
        """Frames of the cached entities and the indices (into ``unique``) still to fetch."""
        if self.cache is None:
            return [], list(range(len(unique)))
        keys = [self.cache_prefix + "|".join(k) for k in unique]
        got = self.cache.get_many(keys)
        missing = [i for i, v in enumerate(got) if v is None or v[0] != self.layout]
        if missing and self.cache._l2 is not None:
            more = await self.cache.get_many_l2([keys[i] for i in missing], self.ttl)
            for i, value in zip(missing, more, strict=True):
                got[i] = value
            missing = [i for i in missing if got[i] is None or got[i][0] != self.layout]  # type: ignore[index]
        hits = len(unique) - len(missing)
        self._count("onfs_cache_requests", hits, result="hit")
        self._count("onfs_cache_requests", len(missing), result="miss")
        groups: dict[tuple, list[int]] = defaultdict(list)
        skip = set(missing)
        for i, value in enumerate(got):
            if i not in skip:
                groups[value[1]].append(i)  # type: ignore[index]
        parts = []
        for signature, idx in groups.items():
            frame = unpack_rows(signature, [got[i][2] for i in idx], [got[i][3] for i in idx])  # type: ignore[index]
            parts.append((positions[idx], frame))
        return parts, missing

    async def _fetch(self, ctx: RunContext, unique: list[tuple[str, ...]], misses: list[int]) -> FeatureFrame:
        if self.backend is None:
            raise ComponentError(
                f"model {self.model_id!r} component {self.name!r}: no feature store configured: "
                "set EXTERNAL_SERVICE_ONFS_FS_HOST (remote OnFS) "
                "or INFERFLOW_ONFS_LOCAL_DIR (embedded Parquet store)",
                "featurestore-not-configured",
            )
        keys = [unique[i] for i in misses]
        outcome = await self.backend.fetch(self.request, keys, ctx.bound(None))
        self._count("onfs_batches", outcome.calls)
        self._count("onfs_fetched_entities", len(keys))
        for kind, _message in outcome.failures:
            self._count("onfs_errors", 1, kind=kind)
        if outcome.failures:
            kind, message = outcome.failures[0]
            text = f"model {self.model_id!r} component {self.name!r} ({self.backend.name}): {message}"
            if outcome.failed_all and len(keys) == len(unique):
                raise ComponentError(text, kind)
            ctx.fail(self.name, kind, text)
        if self.cache is not None:
            self._store(keys, outcome.frame)
        return outcome.frame

    def _store(self, keys: list[tuple[str, ...]], frame: FeatureFrame) -> None:
        """Cache the entities that came back with at least one value (missing ones are asked again)."""
        has = np.zeros(frame.n, dtype=bool)
        for block in frame.blocks:
            has |= block.valid.any(axis=1)
        if not has.any():
            return
        signature, blobs, objs = pack_rows(frame)
        items: list[tuple[str, CacheValue]] = [
            (self.cache_prefix + "|".join(keys[i]), (self.layout, signature, blobs[i], objs[i]))
            for i in np.flatnonzero(has).tolist()
        ]
        self.cache.put_many(items, self.ttl)  # type: ignore[union-attr]

    def _count(self, name: str, amount: float, **labels: str) -> None:
        if self.metrics is not None and amount:
            self.metrics.count(name, amount, **self._labels, **labels)
