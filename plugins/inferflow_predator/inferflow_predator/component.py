"""PredatorComponent (go-compatibility §5.3) with Go Inferflow's defects fixed.

Per request: pick an endpoint by percentage, assemble every input tensor once for all rows, split the rows
into ``batch_size`` batches (sent in parallel to a remote endpoint, as one call to an embedded model), and
write each batch's scores back at its own row offsets — a failed batch leaves exactly its rows missing. In
slate mode each slate is one batch over its target rows (in parallel, or one call to an embedded model), and
the first row's scores go to the slate matrix row.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from inferflow_core.api import (
    BuildContext,
    ColumnRead,
    ColumnSpec,
    Component,
    ComponentError,
    ComponentMatrix,
    ConfigError,
    DataType,
    Metrics,
    RunContext,
)

from .config import InputSpec, OutputSpec, PredatorConfig, resolve, routes
from .embedded import OnnxBackend
from .onnx_check import check_onnx, check_signature, remote_signature
from .pool import ONNX_SCHEME, Backend, BackendPool, normalise_endpoint
from .settings import PredatorSettings
from .shadow import ShadowGate, ShadowRunner, build_shadows, shadow_specs
from .tensors import Tensor, assemble_input, split_output

Scores = list[list[np.ndarray]]  # per output, per slice: values of the batch's rows


class PredatorComponent(Component):
    kind = "predator"

    def __init__(
        self,
        cfg: PredatorConfig,
        model_id: str,
        pool: BackendPool,
        metrics: Metrics,
        model_route_config: Any = None,
        rng: random.Random | None = None,
        gate: ShadowGate | None = None,
    ) -> None:
        super().__init__(cfg.component, model_id)
        self.cfg = cfg
        inputs, outputs, problems = resolve(cfg)
        if problems:
            raise ConfigError(model_id, problems)
        self.inputs: list[InputSpec] = inputs
        self.output_specs: list[OutputSpec] = outputs
        self.output_names = [o.name for o in outputs]
        self.features = list(dict.fromkeys(f for spec in inputs for f in spec.features))
        port = pool.settings.port
        weighted = routes(cfg, model_route_config)
        self.endpoints = [normalise_endpoint(e, port) for e, _ in weighted]
        self.cumulative = np.cumsum([w for _, w in weighted]).tolist()
        self.fallback = normalise_endpoint(cfg.model_end_point, port) if cfg.model_end_point else ""
        self.shadows = build_shadows(cfg, self, port)
        every = (*self.endpoints, self.fallback, *(s.endpoint for s in self.shadows))
        remote = [e for e in every if e and not e.startswith(ONNX_SCHEME)]
        if remote and pool.tls_problem:
            raise ConfigError(model_id, [("", f"component {cfg.component!r}: {pool.tls_problem}")])
        self.pool = pool
        self.metrics = metrics
        self.rng = rng or random.Random()
        self.deadline_s = cfg.deadline / 1000 if cfg.deadline else None
        self.shadow_runner = (
            ShadowRunner(self, pool, gate or ShadowGate(pool.settings.shadow_max_inflight), metrics)
            if self.shadows
            else None
        )
        embedded = self._embedded_problems(weighted)
        if embedded:
            raise ConfigError(model_id, embedded)

    def _endpoint_paths(self, weighted: list[tuple[str, float]]) -> dict[str, str]:
        """Every endpoint this component may call (as configured) -> the JSON path naming it."""
        cfg = self.cfg
        where: dict[str, str] = {}
        for i, e in enumerate(cfg.model_end_points):
            where.setdefault(e.endpoint.strip(), f"model_end_points[{i}].endpoint")
        for i, r in enumerate(cfg.route_config):
            where.setdefault(r.model_endpoint.strip(), f"route_config[{i}].model_endpoint")
        candidates = [e for e, _ in weighted] + ([cfg.model_end_point.strip()] if cfg.model_end_point else [])
        return {e: where.get(e, "model_end_point") for e in dict.fromkeys(candidates)}

    def _embedded_problems(self, weighted: list[tuple[str, float]]) -> list[tuple[str, str]]:
        """Every ``onnx://`` endpoint this component may use: file present, signature matches the config."""
        cfg = self.cfg
        self.endpoint_paths = self._endpoint_paths(weighted)
        problems: list[tuple[str, str]] = []
        for endpoint, path in self.endpoint_paths.items():
            if not endpoint.startswith(ONNX_SCHEME):
                continue
            problems += check_onnx(
                endpoint[len(ONNX_SCHEME) :],
                cfg.model_name,
                cfg.model_version,
                self.inputs,
                self.output_specs,
                path,
            )
        for i, shadow in enumerate(self.shadows):  # a shadow takes the same inputs, gives the same outputs
            if shadow.endpoint.startswith(ONNX_SCHEME):
                problems += check_onnx(
                    shadow.endpoint[len(ONNX_SCHEME) :],
                    shadow.model_name,
                    shadow.model_version,
                    self.inputs,
                    self.output_specs,
                    f"shadow_end_points[{i}].endpoint",
                )
        return problems

    # -- declaration ------------------------------------------------------------------------------
    def outputs(self) -> Sequence[ColumnSpec]:
        slate = self.cfg.slate_component
        specs = [ColumnSpec(s.column, s.dtype, slate=slate) for o in self.output_specs for s in o.slices]
        if self.cfg.calibration:
            specs.append(
                ColumnSpec(f"{self.cfg.calibration}_model", DataType.STRING, constant=self.cfg.model_name)
            )
            specs.append(ColumnSpec("inferflow_config_id", DataType.STRING, constant=self.model_id))
        return specs + shadow_specs(self)

    def log_columns(self) -> Sequence[ColumnSpec]:
        """Shadow scores are logged whatever ``log_features`` selects (they are never in a response)."""
        return shadow_specs(self)

    def reads(self) -> Sequence[ColumnRead]:
        # a slate component reads its slates' target rows: target-matrix columns, like a pointwise one
        slate = self.cfg.slate_component  # a slate component also takes pair/slate features (broadcast)
        return [
            ColumnRead(feature, f"inputs[{i}].features[{j}]", slate_ok=slate, model_input=True)
            for i, inp in enumerate(self.cfg.inputs)
            for j, feature in enumerate(inp.features)
        ]

    async def check_backend(self, timeout: float = 5.0) -> list[tuple[str, str]]:
        """``inferflow validate --check-backends``: each remote endpoint has the model ready and its
        ``ModelMetadata`` matches the config (embedded endpoints are checked at every load)."""
        port = self.pool.settings.port
        problems: list[tuple[str, str]] = []
        for endpoint, path in self.endpoint_paths.items():
            if endpoint.startswith(ONNX_SCHEME):
                continue
            target = normalise_endpoint(endpoint, port)
            backend = self.pool.get(target)
            try:
                await backend.check_ready(self.cfg.model_name, self.cfg.model_version, timeout)
                sig = await remote_signature(backend, self.cfg.model_name, self.cfg.model_version, timeout)
            except ComponentError as exc:
                problems.append((path, f"model {self.cfg.model_name!r}: {exc.message}"))
                continue
            except Exception as exc:
                problems.append(
                    (path, f"model {self.cfg.model_name!r}: {target}: {type(exc).__name__}: {exc}")
                )
                continue
            if sig is not None:
                for where, message in check_signature(
                    sig, self.cfg.model_name, self.inputs, self.output_specs
                ):
                    problems.append((where, f"predator {target}: {message}"))
        return problems

    # -- routing ----------------------------------------------------------------------------------
    def pick_endpoint(self) -> str:
        """First endpoint whose cumulative percentage exceeds a uniform draw in [0, 100)."""
        if self.endpoints:
            draw = self.rng.random() * 100.0
            for endpoint, upto in zip(self.endpoints, self.cumulative, strict=True):
                if draw < upto:
                    return endpoint
        if not self.fallback:
            raise ComponentError(
                f"predator {self.name!r}: no endpoint configured", "predator-client-not-found"
            )
        return self.fallback

    # -- run --------------------------------------------------------------------------------------
    async def run(self, ctx: RunContext) -> None:
        if self.cfg.slate_component:
            if ctx.slate_matrix is not None:
                await self._run_slates(ctx)
            return  # a slate component in PointWise has nowhere to write: do not call the model
        matrix = ctx.matrix
        if matrix.rows == 0:
            return
        endpoint = self.pick_endpoint()
        backend = self.pool.get(endpoint)
        tensors = [assemble_input(matrix, spec) for spec in self.inputs]
        size = self.cfg.batch_size or matrix.rows
        bounds = [(s, min(s + size, matrix.rows)) for s in range(0, matrix.rows, size)]
        started = time.perf_counter()
        merged: Scores | None
        if isinstance(backend, OnnxBackend):  # row ranges of the whole inputs, no tensor per batch
            merged, results = await self._embedded_rows(ctx, backend, endpoint, tensors, bounds)
        else:
            batches = (
                [tensors]
                if len(bounds) == 1
                else [[Tensor(t.name, t.datatype, t.array[a:b]) for t in tensors] for a, b in bounds]
            )
            results = await self._calls(ctx, backend, endpoint, batches, [b - a for a, b in bounds])
            first = results[0] if len(results) == 1 else _concatenated(results)
            merged = first if isinstance(first, list) else None
        ctx.external_call(self.name, endpoint, len(bounds), matrix.rows, time.perf_counter() - started)
        if isinstance(merged, list):  # every row scored: one write per column, no row scatter
            self._write(matrix, None, merged)
        else:
            for (start, stop), scores in zip(bounds, results, strict=True):
                if isinstance(scores, list):
                    self._write(matrix, np.arange(start, stop), scores)
        if self.shadow_runner is not None:
            self.shadow_runner.schedule(ctx, tensors)
        self._report(ctx, [r for r in results if isinstance(r, ComponentError)], len(bounds), "batches")

    async def _calls(
        self, ctx: RunContext, backend: Backend, endpoint: str, batches: list[list[Tensor]], rows: list[int]
    ) -> list[Scores | ComponentError]:
        """Every batch's scores (or error): an embedded model gets all of them in one call (one hand-off to
        its thread, or inline); a remote one gets one RPC per batch, in parallel."""
        if isinstance(backend, OnnxBackend):
            return await self._embedded_calls(ctx, backend, endpoint, batches, rows)
        if len(batches) == 1:
            return [await self._call(ctx, backend, endpoint, batches[0], rows[0])]
        return list(
            await asyncio.gather(
                *(self._call(ctx, backend, endpoint, t, n) for t, n in zip(batches, rows, strict=True))
            )
        )

    async def _embedded_calls(
        self,
        ctx: RunContext,
        backend: OnnxBackend,
        endpoint: str,
        batches: list[list[Tensor]],
        rows: list[int],
    ) -> list[Scores | ComponentError]:
        """``_call`` for all batches of an embedded model at once (a slate each): their inputs joined and
        run as row ranges (:meth:`_embedded_rows`); each batch's scores are views of all rows' scores."""
        joined = [
            Tensor(t.name, t.datatype, np.concatenate([batch[i].array for batch in batches]))
            for i, t in enumerate(batches[0])
        ]
        ends = np.cumsum(rows).tolist()
        bounds = [(end - n, end) for end, n in zip(ends, rows, strict=True)]
        merged, results = await self._embedded_rows(ctx, backend, endpoint, joined, bounds)
        if merged is None:
            return results
        return [[[values[a:b] for values in per_slice] for per_slice in merged] for a, b in bounds]

    async def _embedded_rows(
        self,
        ctx: RunContext,
        backend: OnnxBackend,
        endpoint: str,
        tensors: list[Tensor],
        bounds: list[tuple[int, int]],
    ) -> tuple[Scores | None, list[Scores | ComponentError]]:
        """The embedded model over ``tensors`` cut into the row ranges ``bounds``, in one call: the scores of
        all rows when every batch answered alike (then no per-batch list), else per batch its scores or its
        error. Metrics per batch, as ``_call`` records them."""
        rows = [b - a for a, b in bounds]
        started = time.perf_counter()
        got: dict[str, Tensor] | list[Any]
        try:
            got = await backend.infer_rows(
                self.cfg.model_name,
                self.cfg.model_version,
                tensors,
                bounds,
                self.output_names,
                ctx.bound(self.deadline_s),
                alone=ctx.concurrent_requests() == 1,
            )
        except ComponentError as exc:
            got = [exc] * len(bounds)
        except Exception as exc:
            error = ComponentError(f"{endpoint}: {type(exc).__name__}: {exc}", "predator-api-error")
            got = [error] * len(bounds)
        seconds = time.perf_counter() - started
        merged: Scores | None = None
        results: list[Scores | ComponentError] = []
        if isinstance(got, dict):
            whole = self._scores(got, bounds[-1][1])
            if isinstance(whole, ComponentError):  # split batch by batch: each error names its batch
                got = [{k: Tensor(k, t.datatype, t.array[a:b]) for k, t in got.items()} for a, b in bounds]
            else:
                merged = whole
        if merged is None:
            results = [
                outputs if isinstance(outputs, ComponentError) else self._scores(outputs, n)
                for outputs, n in zip(got, rows, strict=True)
            ]
        bound = self.metrics.component_metrics(self.model_id, self.name)
        for i, n in enumerate(rows):
            result = results[i] if results else None
            kind = result.kind if isinstance(result, ComponentError) else None
            bound.external_call("predator", endpoint, seconds, n, kind)
        return merged, results

    def _scores(self, got: dict[str, Tensor], rows: int) -> Scores | ComponentError:
        """Per output spec, its slices' values; a missing or misshapen output is the batch's error."""
        scores = []
        try:
            for spec in self.output_specs:
                if spec.name not in got:
                    raise ComponentError(f"model {self.cfg.model_name!r} returned no output {spec.name!r}")
                scores.append(split_output(spec, got[spec.name], rows))
        except ComponentError as exc:
            return exc
        return scores

    async def _call(
        self, ctx: RunContext, backend: Backend, endpoint: str, tensors: list[Tensor], rows: int
    ) -> Scores | ComponentError:
        """One model call; a failure is returned (and counted per endpoint), never raised.

        Recorded with ``Metrics.external_call`` (service ``predator``): ``inferflow_external_*`` in
        Prometheus, ``inferflow.external.api.request.*`` in StatsD, labelled with the endpoint.
        """
        started = time.perf_counter()
        kind: str | None = None
        try:
            timeout = ctx.bound(self.deadline_s)
            await backend.check_ready(self.cfg.model_name, self.cfg.model_version, timeout)
            timeout = ctx.bound(self.deadline_s)
            got = await backend.infer(
                self.cfg.model_name, self.cfg.model_version, tensors, self.output_names, timeout
            )
            scores = self._scores(got, rows)
            if isinstance(scores, ComponentError):
                raise scores
        except ComponentError as exc:
            kind = exc.kind
            return exc
        except Exception as exc:
            kind = "predator-api-error"
            return ComponentError(f"{endpoint}: {type(exc).__name__}: {exc}", kind)
        finally:
            self.metrics.component_metrics(self.model_id, self.name).external_call(
                "predator", endpoint, time.perf_counter() - started, rows, kind
            )
        return scores

    def _write(self, matrix: ComponentMatrix, rows: np.ndarray | None, scores: Scores) -> None:
        """Scores into ``rows`` of their columns; ``None``: the batch is every row of the matrix, and a
        scalar column takes the values as its whole column (one ``set_column``, no row scatter)."""
        for spec, per_slice in zip(self.output_specs, scores, strict=True):
            for sl, values in zip(spec.slices, per_slice, strict=True):
                matrix.declare(sl.column, sl.dtype)
                if rows is None and not sl.dtype.is_vector:
                    matrix.set_column(sl.column, np.ascontiguousarray(values))
                else:
                    matrix.set_rows(sl.column, np.arange(matrix.rows) if rows is None else rows, values)

    def _report(self, ctx: RunContext, errors: list[ComponentError], total: int, what: str) -> None:
        if not errors:
            return
        message = (
            f"predator {self.name!r} model {self.cfg.model_name!r}: {len(errors)}/{total} {what} failed: "
        )
        message += errors[0].message
        if len(errors) == total:
            raise ComponentError(message, errors[0].kind)
        ctx.fail(self.name, errors[0].kind, message)

    # -- slate mode -------------------------------------------------------------------------------
    async def _run_slates(self, ctx: RunContext) -> None:
        slates = ctx.slate_matrix
        assert slates is not None
        endpoint = self.pick_endpoint()
        backend = self.pool.get(endpoint)
        jobs = []
        for i, targets in enumerate(slates.target_indices):
            rows = targets[(targets >= 0) & (targets < ctx.matrix.rows)]
            if rows.size:
                jobs.append((i, rows))
        started = time.perf_counter()
        results = await self._slates(ctx, backend, endpoint, jobs)
        rows_sent = sum(len(rows) for _, rows in jobs)
        ctx.external_call(self.name, endpoint, len(results), rows_sent, time.perf_counter() - started)
        for (i, _), scores in zip(jobs, results, strict=True):
            if isinstance(scores, list):
                first = [[v[:1] for v in per_slice] for per_slice in scores]
                self._write(slates, np.array([i]), first)
        self._report(ctx, [r for r in results if isinstance(r, ComponentError)], len(results), "slates")

    async def _slates(
        self, ctx: RunContext, backend: Backend, endpoint: str, jobs: list[tuple[int, np.ndarray]]
    ) -> list[Scores | ComponentError]:
        """Per slate: its target rows, with its pair/slate features repeated on each of them, as the model's
        input tensors (a slate whose inputs cannot be assembled fails alone), then the model calls."""
        assert ctx.slate_matrix is not None
        results: list[Scores | ComponentError | None] = []
        batches: list[list[Tensor]] = []
        for slate, rows in jobs:
            try:
                sub = ctx.slate_matrix.slate_rows(ctx.matrix, slate, rows, self.features)
                batches.append([assemble_input(sub, spec) for spec in self.inputs])
                results.append(None)
            except ComponentError as exc:
                results.append(exc)
        sizes = [len(rows) for (_, rows), r in zip(jobs, results, strict=True) if r is None]
        scores = iter(await self._calls(ctx, backend, endpoint, batches, sizes) if batches else [])
        return [next(scores) if r is None else r for r in results]


def _concatenated(results: list[Scores | ComponentError]) -> Scores | None:
    """The batches' scores as one set over all rows (batches are consecutive), or None when one failed."""
    if not all(isinstance(r, list) for r in results):
        return None
    batches: list[Scores] = results  # type: ignore[assignment]
    return [
        [np.concatenate([b[i][j] for b in batches]) for j in range(len(per_slice))]
        for i, per_slice in enumerate(batches[0])
    ]


class PredatorType:
    """The ``predator_components`` component type; owns the endpoint pool shared by all model versions."""

    config_key = "predator_components"
    config_model = PredatorConfig

    def __init__(self, settings: PredatorSettings | None = None) -> None:
        self.settings = settings or PredatorSettings()
        self.pool = BackendPool(self.settings)
        self.shadow_gate = ShadowGate(self.settings.shadow_max_inflight)  # one per process, all models

    def build(self, config: PredatorConfig, ctx: BuildContext) -> Component:
        return PredatorComponent(
            config, ctx.model_id, self.pool, ctx.metrics, ctx.model.route_config, gate=self.shadow_gate
        )

    async def aclose(self) -> None:
        """Server shutdown: close every endpoint's channel and the ONNX workers."""
        await self.pool.aclose()
