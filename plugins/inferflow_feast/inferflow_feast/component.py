"""The Feast feature component: the OnFS component's request path with Feast behind it.

Per request: read the key columns as text, one key per row, dedupe (a user key shared by 200 targets is
asked once), never ask for a key with an empty part (its rows stay missing), serve what the feature cache
holds (the core's ``FeatureCache``, shared with OnFS), fetch the rest with ``get_online_features``, scatter
the unique rows back with the inverse index and write one column per feature. Entities Feast does not know
come back missing and are counted (``feast_missing_entities``); failed or late batches are contained
failures (``feast_errors{kind}``), and a request whose every batch failed fails the component.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np

from inferflow_core.api import (
    ColumnSpec,
    Component,
    ComponentConfig,
    ComponentError,
    DataType,
    Metrics,
    RunContext,
    features,
)

from .backend import FeastBackend, FetchRequest
from .config import FeastComponentConfig, feature_specs


class FeastComponent(Component):
    kind = "feature"

    def __init__(
        self,
        cfg: FeastComponentConfig,
        model_id: str,
        settings: ComponentConfig,
        backend: FeastBackend | None,
        cache: features.FeatureCache | None,
        metrics: Metrics | None,
    ) -> None:
        super().__init__(cfg.component, model_id)
        self.cfg = cfg
        self.specs = feature_specs(cfg)
        self.key_cols = [k.col for k in cfg.fs_keys]
        self.request = FetchRequest(tuple(k.schema_ for k in cfg.fs_keys), self.specs)
        self.backend = backend
        self.cache = cache if settings.cache_enabled and cfg.comp_cache_enabled else None
        self.ttl = float(cfg.comp_cache_ttl or settings.cache_ttl or 100)
        self.cache_prefix = f"{model_id}|{settings.effective_cache_version}|{cfg.component}|"
        layout = "\n".join(f"feast\t{s.ref}\t{s.dtype.name}" for s in self.specs)
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

    async def run(self, ctx: RunContext) -> None:
        matrix = ctx.matrix
        keys = features.entity_keys(features.read_keys(matrix, self.key_cols))
        unique, positions = keys.unique, keys.positions
        parts: list[tuple[np.ndarray, features.FeatureFrame]] = []
        misses = list(range(len(unique)))
        if self.cache is not None and unique:
            names = ["|".join(k) for k in unique]
            cached, misses = await self.cache.cached(self.cache_prefix, names, self.layout, self.ttl)
            parts = [(positions[pos], slab.frame(rows)) for pos, slab, rows in cached]
            if self.metrics is not None:
                self.metrics.cache_lookup(
                    "feature", self.model_id, self.name, len(unique) - len(misses), len(misses)
                )
        if misses:
            fetched = await self._fetch(ctx, [unique[i] for i in misses], all_keys=len(misses) == len(unique))
            parts.append((positions[misses], fetched))
        frame = features.assemble(self.request.dtypes, keys.distinct, parts).take(keys.inverse)
        for j, spec in enumerate(self.specs):
            values, valid = frame.column(j)
            if valid.any():  # a feature with no value in any row is not written (a request value stays)
                matrix.set_column(spec.column, values, valid)
        if self.cfg.composite_id:
            matrix.set_column(self.cfg.component_id, *keys.composite_ids())

    async def _fetch(
        self, ctx: RunContext, keys: list[tuple[str, ...]], all_keys: bool
    ) -> features.FeatureFrame:
        if self.backend is None:
            raise ComponentError(
                f"model {self.model_id!r} component {self.name!r}: no Feast repository configured: "
                "set INFERFLOW_FEAST_REPO to the directory holding feature_store.yaml",
                "featurestore-not-configured",
            )
        started = time.perf_counter()
        outcome = await self.backend.fetch(self.request, keys, ctx.bound(None))
        if self.metrics is not None:  # the core's shared names: inferflow_external_* (service featurestore)
            self.metrics.external_call(
                "featurestore", "feast", self.model_id, self.name, time.perf_counter() - started,
                len(keys), outcome.failures[0][0] if outcome.failures else None,
            )  # fmt: skip
        present = np.zeros(outcome.frame.n, dtype=bool)
        for block in outcome.frame.blocks:
            present |= block.valid.any(axis=1)
        self._count("feast_batches", outcome.calls)
        self._count("feast_fetched_entities", len(keys))
        self._count("feast_missing_entities", int((~present).sum()))
        for kind, _message in outcome.failures:
            self._count("feast_errors", 1, kind=kind)
        if outcome.failures:
            kind, message = outcome.failures[0]
            text = f"model {self.model_id!r} component {self.name!r} (feast): {message}"
            if outcome.failed_all and all_keys:
                raise ComponentError(text, kind)
            ctx.fail(self.name, kind, text)
        if self.cache is not None:
            self.cache.put_present(
                self.cache_prefix, ["|".join(k) for k in keys], self.layout, outcome.frame, self.ttl
            )
        return outcome.frame

    def _count(self, name: str, amount: float, **labels: str) -> None:
        if self.metrics is not None and amount:
            self.metrics.count(name, amount, **self._labels, **labels)
