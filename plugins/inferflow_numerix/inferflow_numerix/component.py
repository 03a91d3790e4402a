"""NumerixComponent (go-compatibility §5.4, with Go Inferflow's defects fixed) and its component type.

* Schema order is the ``score_mapping`` config order (``[component_id] + variables``), stable per config.
* Inputs are read with ``matrix.read(column, fp32|fp64)`` from the column's real type (request text is
  parsed by the core converter); missing cells become 0 (go-compatibility §4.5; Go's ``0.0``
  text for string columns was then rejected by Numerix — here it is simply 0). A vector column
  contributes its first element. A column absent from the matrix counts as all missing.
* Evaluation precision is fp64 when ``data_type`` is FP64, else fp32 (Go Inferflow's wire type); results
  are cast to ``data_type`` before being written.
* Embedded mode (no ``NUMERIX_CLIENT_V1_HOST``): the expression is read per request from
  ``ctx.config`` and parsed once per version. Remote mode: rows are sent in parallel batches of
  ``NUMERIX_CLIENT_V1_BATCHSIZE``; a failed batch leaves only its own rows missing (never shifts rows).
* Slate mode evaluates every slate (its target rows, in slate order) as its own call — remote calls in
  parallel — and writes the first row's score into the slate matrix. Without a slate matrix (PointWise)
  a slate component does nothing. Any failure is raised as a ComponentError after the successful
  results were written, so the engine records it and the failed cells stay missing.
"""

from __future__ import annotations

import asyncio
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
    RunContext,
    codecs,
    net,
)

from .client import NumerixClient
from .config import CheckedConfig, NumerixConfig, check
from .language import ExpressionError, Program
from .programs import ProgramCache
from .settings import NumerixSettings, expression_prefix


class NumerixComponent(Component):
    kind = "numerix"

    def __init__(
        self,
        checked: CheckedConfig,
        model_id: str,
        settings: NumerixSettings,
        programs: ProgramCache,
        client: NumerixClient | None = None,
        metrics: Any = None,
    ) -> None:
        cfg = checked.raw
        self.metrics = metrics
        self.endpoint = "compute" if client is not None else "embedded"
        super().__init__(cfg.component, model_id)
        self.cfg = cfg
        self.compute_id = cfg.compute_id
        self.data_type = checked.data_type
        self.variables = checked.variables
        self.compute_dtype = DataType.FP64 if checked.data_type is DataType.FP64 else DataType.FP32
        self.expression_key = expression_prefix(settings.numerix_app_name) + cfg.compute_id
        self.settings = settings
        self.programs = programs
        self.client = client
        self._column_of = {v.name: v.column for v in checked.variables}
        self._planned: tuple[Program | None, tuple[str, ...]] = (None, ())  # last program, its mapped names

    def outputs(self) -> Sequence[ColumnSpec]:
        return (ColumnSpec(self.cfg.score_col, self.data_type, slate=self.cfg.slate_component),)

    def required_columns(self) -> Sequence[ColumnSpec]:
        seen: dict[str, ColumnSpec] = {}
        for v in self.variables:
            seen.setdefault(v.column, ColumnSpec(v.column, v.declared))
        return tuple(seen.values())

    def reads(self) -> Sequence[ColumnRead]:
        slate = self.cfg.slate_component  # a slate component also takes pair/slate features (broadcast)
        return tuple(
            ColumnRead(col, f"score_mapping.{key}", slate_ok=slate)
            for key, col in self.cfg.score_mapping.items()
        )

    async def check_backend(self, timeout: float = 5.0) -> list[tuple[str, str]]:
        """``inferflow validate --check-backends`` (remote mode): one call of one row (every variable 1)
        must succeed, i.e. the service is reachable and knows ``compute_id``."""
        if self.client is None:
            return []  # embedded: the expression was checked at load
        names = [v.name for v in self.variables]
        ones = [np.ones(1, dtype=self.compute_dtype.numpy_dtype) for _ in names]
        _, _, failures = await self.client.compute_batched(
            self.compute_id,
            [self.cfg.component_id, *names],
            ["inferflow-check"],
            ones,
            self.compute_dtype,
            timeout,
        )
        return [("compute_id", f"numerix {self.settings.target}: {failures[0].message}")] if failures else []

    # -- run --------------------------------------------------------------------------------------
    async def run(self, ctx: RunContext) -> None:
        """Evaluate, and record it under the core's external-call names (Prometheus
        ``inferflow_external_*{service="numerix"}``, StatsD ``inferflow.external.api.request.*`` with
        ``ext-service:numerix``); ``endpoint`` is ``compute`` (remote) or ``embedded``."""
        if self.metrics is None:
            await self._run(ctx)
            return
        started = time.perf_counter()
        kind = None
        try:
            await self._run(ctx)
        except ComponentError as exc:
            kind = exc.kind
            raise
        except asyncio.CancelledError:
            kind = "deadline"
            raise
        except Exception:
            kind = "error"
            raise
        finally:
            rows = ctx.matrix.rows
            self.metrics.component_metrics(self.model_id, self.name).external_call(
                "numerix", self.endpoint, time.perf_counter() - started, rows, kind
            )

    async def _run(self, ctx: RunContext) -> None:
        if self.cfg.slate_component:
            if ctx.slate_matrix is not None:
                await self._run_slates(ctx)
            return
        rows = ctx.matrix.rows
        if self.client is None:
            program = self._program(ctx)
            columns = self._read(ctx.matrix, self._mapped(program))
            scores = self._evaluate(program, columns, rows)
            self._write(ctx.matrix, scores, None)
            return
        names = [v.name for v in self.variables]
        columns = self._read(ctx.matrix, names)
        ids = self._ids(ctx.matrix)
        scores, valid, failures = await self.client.compute_batched(
            self.compute_id,
            [self.cfg.component_id, *names],
            ids,
            [columns[n] for n in names],
            self.compute_dtype,
            self._timeout(ctx),
        )
        self._write(ctx.matrix, scores, valid)
        if failures:
            first = failures[0]
            batches = -(-rows // self.settings.batch_size)
            raise ComponentError(
                f"numerix compute_id {self.compute_id!r}: {len(failures)} of {batches} "
                f"batch(es) failed, rows {first.start}-{first.stop - 1}: {first.message}",
                first.kind,
            )

    async def _run_slates(self, ctx: RunContext) -> None:
        slates = ctx.slate_matrix
        assert slates is not None
        rows = ctx.matrix.rows
        program = self._program(ctx) if self.client is None else None
        names = list(program.names if program else (v.name for v in self.variables))
        columns = self._read(ctx.matrix, [n for n in names if n in self._column_of])
        # pair/slate request features: each slate's own value, broadcast over its target rows
        per_slate = {
            n: self._read(slates, [n])[n]
            for n in columns
            if slates.slate_supplies(ctx.matrix, self._column_of[n])
        }

        def inputs(i: int) -> dict[str, np.ndarray]:
            size = subsets[i].size
            return {
                n: np.full(size, per_slate[n][i]) if n in per_slate else c[subsets[i]]
                for n, c in columns.items()
            }

        ids = self._ids(ctx.matrix) if self.client is not None else []
        scores = np.zeros(slates.rows, dtype=self.compute_dtype.numpy_dtype)
        valid = np.zeros(slates.rows, dtype=bool)
        errors: list[str] = []
        subsets = [idx[(idx >= 0) & (idx < rows)] for idx in slates.target_indices]
        todo = [i for i, idx in enumerate(subsets) if idx.size]
        if program is not None:
            for i in todo:
                sub = inputs(i)
                try:
                    scores[i] = program.evaluate(sub, subsets[i].size, self.compute_dtype.numpy_dtype)[0]
                    valid[i] = True
                except ExpressionError as exc:
                    errors.append(f"slate {i}: {exc}")
        else:
            assert self.client is not None
            timeout = self._timeout(ctx)
            schema = [self.cfg.component_id, *names]
            results = await asyncio.gather(
                *(
                    self.client.compute_batched(
                        self.compute_id,
                        schema,
                        [ids[j] for j in subsets[i].tolist()],
                        _ordered(inputs(i), names),
                        self.compute_dtype,
                        timeout,
                    )
                    for i in todo
                )
            )
            for i, (got, ok, failures) in zip(todo, results, strict=True):
                if ok[0]:
                    scores[i], valid[i] = got[0], True
                errors += [f"slate {i}: {f.message}" for f in failures]
        self._write(slates, scores, valid)
        if errors:
            raise ComponentError(
                f"numerix compute_id {self.compute_id!r}: {len(errors)} slate call(s) failed; {errors[0]}"
            )

    # -- helpers ----------------------------------------------------------------------------------
    def _program(self, ctx: RunContext) -> Program:
        try:
            return self.programs.get(self.compute_id, ctx.config.get(self.expression_key))
        except ExpressionError as exc:
            raise ComponentError(f"{exc} (config key {self.expression_key!r})", "expression-error") from None

    def _mapped(self, program: Program) -> tuple[str, ...]:
        """The program's variable names that ``score_mapping`` maps, planned once per program."""
        planned, names = self._planned
        if planned is not program:
            names = tuple(n for n in program.names if n in self._column_of)
            self._planned = (program, names)
        return names

    def _evaluate(self, program: Program, columns: dict[str, np.ndarray], rows: int) -> np.ndarray:
        try:
            return program.evaluate(columns, rows, self.compute_dtype.numpy_dtype)
        except ExpressionError as exc:
            raise ComponentError(
                f"numerix compute_id {self.compute_id!r}: {exc}", "expression-error"
            ) from None

    def _read(self, matrix: ComponentMatrix, names: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for name in names:
            column = self._column_of[name]
            if not matrix.has(column):
                out[name] = np.zeros(matrix.rows, dtype=self.compute_dtype.numpy_dtype)
                continue
            values, valid = matrix.read(column, self.compute_dtype)
            if values.ndim == 2:  # a vector column: its first element
                values = values[:, 0] if values.shape[1] else np.zeros(matrix.rows, values.dtype)
            if not valid.all():
                values = np.where(valid, values, 0).astype(values.dtype, copy=False)
            out[name] = values
        return out

    def _ids(self, matrix: ComponentMatrix) -> list[str]:
        if matrix.has(self.cfg.component_id):
            return matrix.texts(self.cfg.component_id)
        return [""] * matrix.rows

    def _timeout(self, ctx: RunContext) -> float | None:
        timeout = ctx.bound(self.settings.deadline_ms / 1000.0)
        if timeout is not None and timeout <= 0:
            raise ComponentError("no request budget left for the numerix call", "deadline")
        return timeout

    def _write(self, matrix: ComponentMatrix, scores: np.ndarray, valid: np.ndarray | None) -> None:
        values = codecs.cast_array(scores, self.compute_dtype, self.data_type)
        matrix.set_column(self.cfg.score_col, values, valid)


def _ordered(columns: dict[str, np.ndarray], names: Sequence[str]) -> list[np.ndarray]:
    return [columns[n] for n in names]


class NumerixType:
    """The ``numerix_components`` component type. Reads the env settings at each build (config version)."""

    config_key = "numerix_components"
    config_model = NumerixConfig

    def __init__(self, settings: NumerixSettings | None = None) -> None:
        self._settings = settings
        self.programs = ProgramCache()
        self._clients: dict[tuple[object, ...], NumerixClient] = {}

    def settings(self) -> NumerixSettings:
        return self._settings or NumerixSettings()

    def build(self, config: NumerixConfig, ctx: BuildContext) -> Component:
        checked = check(config, ctx.model_id)
        settings = self.settings()
        if not settings.remote:
            self._check_expression(checked, settings, ctx)
        client = None
        if settings.remote:
            try:
                settings.tls.check(settings.plaintext)
            except net.TlsConfigError as exc:
                raise ConfigError(
                    ctx.model_id, [("", f"component {config.component!r}: {exc.message}")]
                ) from None
            key = (
                settings.target,
                settings.plaintext,
                settings.auth_token,
                settings.caller_id,
                settings.batch_size,
                settings.tls,
            )
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = NumerixClient(settings)
        return NumerixComponent(
            checked, ctx.model_id, settings, self.programs, client, getattr(ctx, "metrics", None)
        )

    def _check_expression(self, checked: CheckedConfig, settings: NumerixSettings, ctx: BuildContext) -> None:
        """Embedded mode: the compute_id's expression must exist, parse, and use only mapped variables."""
        key = expression_prefix(settings.numerix_app_name) + checked.raw.compute_id
        try:
            program = self.programs.get(checked.raw.compute_id, ctx.config.get(key))
        except ExpressionError as exc:
            raise ConfigError(
                ctx.model_id, [("compute_id", f"{exc} (config key {key!r}; NUMERIX_CLIENT_V1_HOST is unset)")]
            ) from None
        mapped = {v.name for v in checked.variables}
        unmapped = [n for n in program.names if n not in mapped]
        if unmapped:
            raise ConfigError(
                ctx.model_id,
                [
                    (
                        "score_mapping",
                        f"expression of compute_id {checked.raw.compute_id!r} uses "
                        f"{', '.join(map(repr, unmapped))}, which score_mapping does not map "
                        f"(mapped: {', '.join(map(repr, sorted(mapped))) or 'none'})",
                    )
                ],
            )

    async def aclose(self) -> None:
        """Server shutdown: close the remote Numerix channels."""
        clients = list(self._clients.values())
        self._clients.clear()
        for client in clients:
            await client.close()
