"""The FeatureComponent (go-compatibility §5.2), with Go Inferflow's defects fixed.

Per request: read the key columns as text, build one key per row (parts joined with ``|``), dedupe (a user key
shared by 200 targets is looked up once), never send an empty key (a row with any empty key part stays
missing), serve what the cache holds, fetch the rest through the backend, then scatter the unique rows back to
the matrix rows with the inverse index — one numpy operation per block, one ``set_block`` per run of
same-type scalar features (views of the block), one ``set_column`` per other feature. The embedded store with
no cache takes a shorter road with the same effects (:meth:`FeatureComponent._run_local`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from inferflow_core.api import (
    ColumnRead,
    ColumnSpec,
    Component,
    ComponentConfig,
    ComponentError,
    ComponentMetrics,
    DataType,
    DataTypeError,
    Metrics,
    RunContext,
    features,
)

from .backends import Backend, FetchOutcome, FetchRequest, LocalBackend
from .config import FeatureComponentConfig, feature_specs


@dataclass(frozen=True)
class _Run:
    """Features written together: ``names`` (a set_block of ``block[:, start:...]``, validity columns from
    ``vcol``) when they are >= 2 consecutive scalars of one block, else None; ``columns`` per feature."""

    block: int
    start: int
    vcol: int
    names: tuple[str, ...] | None
    columns: tuple[tuple[str, features.Slot], ...]


def plan_runs(columns: list[str], slots: tuple[features.Slot, ...], fixed: list[bool]) -> list[_Run]:
    """Group features into :class:`_Run` s: consecutive scalar slots of one fixed-width block whose
    elements and validity columns are adjacent (the frame's layout for a run of same-type scalars)."""
    runs: list[list[tuple[str, features.Slot]]] = []
    for name, slot in zip(columns, slots, strict=True):
        last = runs[-1][-1][1] if runs else None
        if (
            last is not None
            and fixed[slot.block]
            and not slot.vector
            and not last.vector
            and last.block == slot.block
            and slot.start == last.start + 1
            and slot.vcol == last.vcol + 1
            and name not in {n for n, _ in runs[-1]}
        ):
            runs[-1].append((name, slot))
        else:
            runs.append([(name, slot)])
    out = []
    for run in runs:
        first = run[0][1]
        scalar_run = len(run) >= 2 and fixed[first.block] and not first.vector
        names = tuple(n for n, _ in run) if scalar_run else None
        out.append(_Run(first.block, first.start, first.vcol, names, tuple(run)))
    return out


class FeatureComponent(Component):
    kind = "feature"

    def __init__(
        self,
        cfg: FeatureComponentConfig,
        model_id: str,
        settings: ComponentConfig,
        backend: Backend | None,
        cache: features.FeatureCache | None,
        metrics: Metrics | None,
    ) -> None:
        super().__init__(cfg.component, model_id)
        self.cfg = cfg
        self.specs = feature_specs(cfg)
        self.columns = [s.column for s in self.specs]
        self.key_cols = [k.col for k in cfg.fs_keys]
        self.request = FetchRequest(cfg.fs_request.label, tuple(k.schema_ for k in cfg.fs_keys), self.specs)
        self.backend = backend
        self.cache = cache if settings.cache_enabled and cfg.comp_cache_enabled else None
        self.ttl = float(cfg.comp_cache_ttl or settings.cache_ttl or 100)
        self.cache_prefix = f"{model_id}|{settings.effective_cache_version}|{cfg.component}|"
        layout = "\n".join(f"{s.group}\t{s.wire_label}\t{s.dtype.name}" for s in self.specs)
        self.layout = hashlib.blake2b(layout.encode(), digest_size=12).hexdigest()
        self.metrics = metrics
        if metrics is not None and hasattr(metrics, "describe"):
            metrics.describe(
                "onfs_batches", "Calls (batches) sent to the feature store by a feature component"
            )
            metrics.describe(
                "onfs_fetched_entities", "Entities fetched from the feature store (cache misses)"
            )
            metrics.describe("onfs_errors", "Failed feature-store calls by a feature component, by kind")
        self._labels = {"model_id": model_id, "component": cfg.component}
        # the metric calls with their labelled children bound once
        self._m: ComponentMetrics | None = (
            metrics.component_metrics(model_id, cfg.component) if metrics is not None else None
        )
        self._plan_slots: tuple[features.Slot, ...] | None = None
        self._plan: list[_Run] = []
        # the embedded store with no cache: the keys are looked up as read (see _run_local); with several
        # key columns only when no composite id is asked for
        local = self.cache is None and bool(self.specs)
        local = local and (len(self.key_cols) == 1 or not self.cfg.composite_id)
        self._local = backend if local and isinstance(backend, LocalBackend) else None
        self._dense_frame: features.FeatureFrame | None = None
        self._dense = False

    def outputs(self) -> list[ColumnSpec]:
        out = [ColumnSpec(s.column, s.dtype) for s in self.specs]
        if self.cfg.composite_id:
            out.append(ColumnSpec(self.cfg.component_id, DataType.STRING))
        return out

    def required_columns(self) -> list[ColumnSpec]:
        return [ColumnSpec(col, DataType.STRING) for col in dict.fromkeys(self.key_cols)]

    def reads(self) -> list[ColumnRead]:
        return [ColumnRead(k.col, f"fs_keys[{i}].col") for i, k in enumerate(self.cfg.fs_keys)]

    async def check_backend(self, timeout: float = 5.0) -> list[tuple[str, str]]:
        """``inferflow validate --check-backends``: a lookup of one (absent) entity must succeed, i.e. the
        store is reachable and knows the label, keys and features."""
        if self.backend is None or not self.specs:
            return []
        probe = [tuple("inferflow-check" for _ in self.key_cols)]
        outcome = await self.backend.fetch(self.request, probe, timeout)
        if outcome.failures:
            return [("fs_request", f"{self.backend.name}: {outcome.failures[0][1]}")]
        return []

    # ------------------------------------------------------------------------------------------ run
    async def run(self, ctx: RunContext) -> None:
        if self._local is not None and self._run_local(ctx, self._local):
            return
        keys = features.entity_keys(features.read_keys(ctx.matrix, self.key_cols))
        if self.specs:
            await self._features(ctx, keys)
        if self.cfg.composite_id:  # last: a failed component leaves all its outputs missing
            ctx.matrix.set_column(self.cfg.component_id, *keys.composite_ids())

    async def _features(self, ctx: RunContext, keys: features.EntityKeys) -> None:
        row_keys, inverse, unique, positions = keys.rows, keys.inverse, keys.unique, keys.positions
        distinct = keys.distinct
        if self._m is not None:  # Go Inferflow's inferflow.component.feature.count
            self._m.features(len(unique) * len(self.specs))
        cached, misses = await self._from_cache(unique, positions)
        if self.cache is not None:  # EXPLAIN (no-op unless the request asked)
            ctx.note(self.name, "cache_hits", len(unique) - len(misses))
            ctx.note(self.name, "cache_misses", len(misses))
        if not misses and len(cached) == 1 and len(unique) == distinct:  # all hits: one gather
            pos, slab, rows = cached[0]
            order = np.empty(distinct, dtype=np.intp)
            order[positions[pos]] = rows
            self._write(ctx, slab.frame(order[inverse]), row_keys.__getitem__)
            return
        parts = [(positions[pos], slab.frame(rows)) for pos, slab, rows in cached]
        if misses:
            outcome = await self._fetch(ctx, unique, misses)
            if outcome.rows is not None and not parts:  # the embedded store: one gather, no merge
                rows = np.full(distinct, outcome.missing_row, dtype=np.intp)
                rows[positions[misses]] = outcome.rows
                self._write(ctx, outcome.frame.take(rows[inverse]), row_keys.__getitem__)
                return
            parts.append((positions[misses], outcome.per_key()))
        frame = features.assemble(self.request.dtypes, distinct, parts).take(inverse)
        self._write(ctx, frame, row_keys.__getitem__)

    def _run_local(self, ctx: RunContext, backend: LocalBackend) -> bool:
        """:meth:`run` on the embedded store with no cache, with the same effects (metrics, EXPLAIN,
        writes) as the general path and less work: the key texts are looked up as they are (one key
        column: no key tuples; several: one tuple a row, no composite id; no deduplication before the
        lookup: a repeated key is looked up again, which costs the lookup nothing); one key for every
        row (a context key) is looked up once;
        the distinct keys the metrics count are the distinct rows found when every key is stored, else a
        ``dict`` of the texts; when every key is stored the dense blocks' validity is not looked at.
        False (nothing done) when a row has no key or the store cannot answer: the general path handles
        (and counts, and raises) those."""
        matrix = ctx.matrix
        values, valid = matrix.read(self.key_cols[0], DataType.STRING)
        texts: list[str] = values.tolist()
        n = len(texts)
        if not n or np.count_nonzero(valid) != n:  # count_nonzero: a C call, ``all()`` is Python-level
            return False
        keys: list[tuple[str, ...]] | None = None  # several key columns: each row's key
        if len(self.key_cols) > 1:
            parts = [texts]
            for col in self.key_cols[1:]:
                more, ok = matrix.read(col, DataType.STRING)
                if np.count_nonzero(ok) != n:
                    return False
                parts.append(more.tolist())
            if any("" in part for part in parts):  # a key with an empty part is never looked up
                return False
            keys = list(zip(*parts, strict=True))
        try:
            frame, table = backend.resolve(self.request)
        except Exception:  # the general path raises it, after the same metrics
            return False
        index, missing = table.index, frame.n - 1
        if index.has_empty:  # a stored "" key must not answer the rows with no key
            return False
        started = time.perf_counter()
        one = texts[0]
        if keys is None and one == texts[-1] and texts.count(one) == n:  # one key for every row
            if not one:
                return False
            row = index.text_row(one)
            distinct, present, rows = 1, row < missing, None
        else:
            row, rows = -1, index.text_rows(texts, values) if keys is None else index.rows(keys)
            ordered = np.sort(rows)
            present = int(ordered[-1]) < missing
            if present:  # every key stored: one row per distinct key
                distinct = int(np.count_nonzero(ordered[1:] != ordered[:-1])) + 1
            else:
                first = dict.fromkeys(texts if keys is None else keys)
                if "" in first:
                    return False
                distinct = len(first)
        seconds = time.perf_counter() - started
        m = self._m
        if m is not None:  # the metrics of the general path (_features, _fetched) with one lookup call
            m.features(distinct * len(self.specs))  # Go Inferflow's inferflow.component.feature.count
            m.external_call("featurestore", backend.name, seconds, distinct)
            m.count("onfs_fetched_entities", distinct)
        ctx.external_call(self.name, backend.name, 1, distinct, seconds)
        if frame is not self._dense_frame:
            self._dense_frame, self._dense = frame, all(b.dense for b in frame.blocks)
        taken = frame.repeat(row, n) if rows is None else frame.take(rows, present)
        key_of = (lambda r: (texts[r],)) if keys is None else keys.__getitem__
        self._write(ctx, taken, key_of, present and self._dense)
        if self.cfg.composite_id:  # one key column (see __init__), every key present and not empty
            matrix.set_column(self.cfg.component_id, values.copy(), np.ones(n, dtype=bool))
        return True

    def _account_missing(
        self, ctx: RunContext, frame: features.FeatureFrame, key_of: Callable[[int], tuple[str, ...]]
    ) -> None:
        """Count missing entities (rows with no value at all) and missing cells per feature; with
        ``missing_features: "error"`` the affected targets get a per-target error naming them. Called
        when some cell of ``frame`` is missing."""
        present = np.zeros(frame.n, dtype=bool)
        missing_cells: dict[str, np.ndarray] = {}
        for name, slot in zip(self.columns, frame.slots, strict=True):
            valid = frame.blocks[slot.block].valid[:, slot.vcol]
            present |= valid
            if not valid.all():
                missing_cells[name] = ~valid
        if not missing_cells:
            return
        entity_missing = ~present
        lost = int(entity_missing.sum())
        self._count("feature_missing_entities", lost)
        for name, miss in missing_cells.items():
            self._count("feature_missing_cells", int((miss & present).sum()), feature=name)
        if self.cfg.missing_features != "error":
            return
        label = self.cfg.fs_request.label
        for row in np.flatnonzero(entity_missing).tolist():
            key = "|".join(key_of(row))
            what = f"no key (empty {'/'.join(self.key_cols)})" if not all(key_of(row)) else f"{key!r}"
            ctx.target_error(
                row, f"component {self.name!r}: entity {what} not found in feature store (label {label!r})"
            )
        partial = np.zeros(frame.n, dtype=bool)
        for miss in missing_cells.values():
            partial |= miss & present
        for row in np.flatnonzero(partial).tolist():
            names = [n for n, miss in missing_cells.items() if miss[row]]
            shown = ", ".join(map(repr, names[:5])) + (
                f" and {len(names) - 5} more" if len(names) > 5 else ""
            )
            ctx.target_error(
                row, f"component {self.name!r}: feature(s) {shown} missing for {'|'.join(key_of(row))!r}"
            )

    def _write(
        self,
        ctx: RunContext,
        frame: features.FeatureFrame,
        key_of: Callable[[int], tuple[str, ...]],
        complete: bool = False,
    ) -> None:
        """Runs of same-type scalar features: one ``set_block`` each (views of the frame's block); other
        features: one ``set_column`` each. A feature with no value in any row is not written (a typed
        request value of the same name stays). ``complete``: the caller knows every cell is valid (nothing
        missing to count, every feature written). ``key_of(row)``: the row's key, for error messages."""
        filled: list[np.ndarray] | None = None
        if not complete and frame.n:  # one check per block (count_nonzero: a C call)
            complete = all(np.count_nonzero(b.valid) == b.valid.size for b in frame.blocks)
        if not complete:
            self._account_missing(ctx, frame, key_of)
            filled = [np.asarray(b.valid.any(axis=0)) for b in frame.blocks]
        blocks, matrix = frame.blocks, ctx.matrix
        for run in self._write_plan(frame):
            block = blocks[run.block]
            if run.names is not None:
                stop = run.vcol + len(run.names)
                if filled is None or filled[run.block][run.vcol : stop].all():
                    try:
                        values = block.values[:, run.start : run.start + len(run.names)]
                        matrix.set_block(run.names, values, block.valid[:, run.vcol : stop])
                        continue
                    except DataTypeError:  # a column declared with another type: per column below
                        pass
            for name, slot in run.columns:
                if filled is not None and not filled[slot.block][slot.vcol]:
                    continue
                valid = block.valid[:, slot.vcol]
                if not block.fixed:
                    matrix.set_column(name, block.values, valid)
                elif slot.vector:
                    matrix.set_column(name, block.values[:, slot.start : slot.start + slot.dim], valid)
                else:
                    matrix.set_column(name, block.values[:, slot.start], valid)

    def _write_plan(self, frame: features.FeatureFrame) -> list[_Run]:
        """The write runs for a frame layout, computed once per distinct ``slots`` tuple (frames made by
        ``take`` share their source's tuple, so the identity check hits on the request path)."""
        slots = frame.slots
        if slots is self._plan_slots:
            return self._plan
        plan = plan_runs(self.columns, slots, [b.fixed for b in frame.blocks])
        self._plan_slots, self._plan = slots, plan
        return plan

    async def _from_cache(
        self, unique: list[tuple[str, ...]], positions: np.ndarray
    ) -> tuple[list[tuple[np.ndarray, features.Slab, np.ndarray]], list[int]]:
        """The cached entities as ``(indices into unique, slab, slab rows)``; the indices still to fetch."""
        cache = self.cache
        if cache is None or not unique:
            return [], list(range(len(unique)))
        keys = [k[0] for k in unique] if len(self.key_cols) == 1 else ["|".join(k) for k in unique]
        parts, misses = await cache.cached(self.cache_prefix, keys, self.layout, self.ttl)
        if self.metrics is not None:  # the core's shared names: inferflow_cache_hits/misses_total
            self.metrics.cache_lookup(
                "feature", self.model_id, self.name, len(unique) - len(misses), len(misses)
            )
        return parts, misses

    async def _fetch(self, ctx: RunContext, unique: list[tuple[str, ...]], misses: list[int]) -> FetchOutcome:
        if self.backend is None:
            raise ComponentError(
                f"model {self.model_id!r} component {self.name!r}: no feature store configured: "
                "set EXTERNAL_SERVICE_ONFS_FS_HOST (remote OnFS) "
                "or INFERFLOW_ONFS_LOCAL_DIR (embedded Parquet store)",
                "featurestore-not-configured",
            )
        keys = [unique[i] for i in misses]
        started = time.perf_counter()
        outcome = await self.backend.fetch(self.request, keys, ctx.bound(None))
        self._fetched(ctx, self.backend.name, len(keys), started, outcome.calls, outcome.failures)
        if outcome.failures:
            kind, message = outcome.failures[0]
            text = f"model {self.model_id!r} component {self.name!r} ({self.backend.name}): {message}"
            if outcome.failed_all and len(keys) == len(unique):
                raise ComponentError(text, kind)
            ctx.fail(self.name, kind, text)
        if self.cache is not None:
            self._store(keys, outcome.per_key())
        return outcome

    def _fetched(
        self,
        ctx: RunContext,
        endpoint: str,
        keys: int,
        started: float,
        calls: int,
        failures: list[tuple[str, str]] | None = None,
    ) -> None:
        """Metrics and EXPLAIN of one backend fetch of ``keys`` entities begun at ``started``."""
        seconds = time.perf_counter() - started
        if self._m is not None:  # the core's shared names: inferflow_external_* (service featurestore)
            self._m.external_call(
                "featurestore", endpoint, seconds, keys, failures[0][0] if failures else None
            )
        batches = calls or 1  # the embedded store answers in one lookup
        ctx.external_call(self.name, endpoint, batches, keys, seconds)
        self._count("onfs_batches", calls)
        self._count("onfs_fetched_entities", keys)
        for kind, _message in failures or ():
            self._count("onfs_errors", 1, kind=kind)

    def _store(self, keys: list[tuple[str, ...]], frame: features.FeatureFrame) -> None:
        """Cache the entities that came back with at least one value (missing ones are asked again)."""
        assert self.cache is not None
        self.cache.put_present(self.cache_prefix, ["|".join(k) for k in keys], self.layout, frame, self.ttl)

    def _count(self, name: str, amount: float, **labels: str) -> None:
        if self._m is None or not amount:
            return
        if labels:
            assert self.metrics is not None
            self.metrics.count(name, amount, **(self._labels | labels))
        else:
            self._m.count(name, amount)
