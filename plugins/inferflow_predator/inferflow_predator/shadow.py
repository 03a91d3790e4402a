"""Shadow models: the same input tensors sent to a candidate endpoint after the response was sent.

For each configured shadow, a request is chosen with probability ``percentage`` / 100 (its own random
stream, so the primary's endpoint choice is unchanged). The call of a chosen request is registered
with ``RunContext.after_response``, so the core starts it when the RPC is done; it then takes a slot of
the process-wide :class:`ShadowGate` (``INFERFLOW_PREDATOR_SHADOW_MAX_INFLIGHT``) or is dropped and
counted (never queued), and is bounded by the shadow's ``timeout_ms``. Its scores are written to the
shadow columns (``<shadow_column_prefix><label>:<column>``), which the inference logger logs with the
request (the core observes a request after its deferred jobs ended). Divergence from the primary's first
output column is recorded per request: mean absolute difference and Spearman's rho.

Metrics (labels ``model_id, component, shadow`` = the label, ``endpoint``):
``predator.shadow.calls{outcome=ok|error|timeout}``, ``predator.shadow.dropped``,
``predator.shadow.abs_diff_mean`` (histogram of the per-request mean absolute difference),
``predator.shadow.rank_gap`` (histogram of 1 - Spearman's rho per request: 0 same order, 1 unrelated,
2 reversed) and ``predator.shadow.latency`` (seconds).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from inferflow_core.api import ColumnSpec, Metrics, RunContext, stats

from .embedded import OnnxBackend
from .pool import BackendPool, normalise_endpoint
from .tensors import Tensor, split_output

if TYPE_CHECKING:
    from .component import PredatorComponent
    from .config import PredatorConfig

log = logging.getLogger("inferflow.predator.shadow")


class ShadowGate:
    """Bounded concurrency of shadow calls in one process: take a slot now or drop (never queue)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.inflight = 0

    def try_acquire(self) -> bool:
        if self.inflight >= self.limit:
            return False
        self.inflight += 1
        return True

    def release(self) -> None:
        self.inflight -= 1


@dataclass(frozen=True)
class Shadow:
    label: str
    endpoint: str
    percentage: float
    model_name: str
    model_version: str
    timeout_s: float
    columns: tuple[tuple[str, ...], ...]  # per output, per slice: the shadow column name

    def labels(self, component: PredatorComponent) -> dict[str, str]:
        return {
            "model_id": component.model_id,
            "component": component.name,
            "shadow": self.label,
            "endpoint": self.endpoint,
        }


def build_shadows(cfg: PredatorConfig, component: PredatorComponent, port: int) -> list[Shadow]:
    out = []
    for s in cfg.shadow_end_points:
        label = s.label or s.model_name or cfg.model_name
        columns = tuple(
            tuple(f"{cfg.shadow_column_prefix}{label}:{sl.column}" for sl in spec.slices)
            for spec in component.output_specs
        )
        out.append(
            Shadow(
                label=label,
                endpoint=normalise_endpoint(s.endpoint, port),
                percentage=s.percentage,
                model_name=s.model_name or cfg.model_name,
                model_version=s.model_version or cfg.model_version,
                timeout_s=s.timeout_ms / 1000.0,
                columns=columns,
            )
        )
    return out


def shadow_specs(component: PredatorComponent) -> list[ColumnSpec]:
    return [
        ColumnSpec(name, sl.dtype)
        for shadow in component.shadows
        for spec, names in zip(component.output_specs, shadow.columns, strict=True)
        for sl, name in zip(spec.slices, names, strict=True)
    ]


class ShadowRunner:
    """Schedules and runs one component's shadow calls."""

    def __init__(
        self, component: PredatorComponent, pool: BackendPool, gate: ShadowGate, metrics: Metrics
    ) -> None:
        self.component = component
        self.pool = pool
        self.gate = gate
        self.metrics = metrics
        self.rng = random.Random()

    def schedule(self, ctx: RunContext, tensors: list[Tensor]) -> None:
        """Pick the shadows for this request and defer their calls (called after the primary wrote)."""
        rows = ctx.matrix.rows
        for shadow in self.component.shadows:
            if self.rng.random() * 100.0 < shadow.percentage:
                ctx.after_response(_Job(self, ctx, shadow, tensors, rows))

    async def call(self, ctx: RunContext, shadow: Shadow, tensors: list[Tensor], rows: int) -> None:
        """The deferred call: takes a gate slot when it starts (a request whose RPC never finished never
        holds one) or is dropped and counted."""
        comp = self.component
        labels = shadow.labels(comp)
        if not self.gate.try_acquire():
            self.metrics.count("predator.shadow.dropped", 1.0, **labels)
            return
        started = time.perf_counter()
        outcome = "ok"
        write = partial(self._write, ctx, shadow, rows=rows)
        try:
            backend = self.pool.get(shadow.endpoint, shadow=True)
            name, version, timeout = shadow.model_name, shadow.model_version, shadow.timeout_s
            if isinstance(backend, OnnxBackend):
                # inference on the low-priority thread; the Python post-processing stays on the loop: a
                # nice-19 thread holding the GIL while descheduled would stall the primary (inversion)
                write(await backend.infer(name, version, tensors, comp.output_names, timeout))
            else:
                async with asyncio.timeout(timeout):
                    await backend.check_ready(name, version, timeout)
                    write(await backend.infer(name, version, tensors, comp.output_names, timeout))
        except TimeoutError:
            outcome = "timeout"
        except Exception as exc:  # a shadow never affects anything but its own metrics
            outcome = "error"
            log.debug("shadow %s of %s/%s failed: %r", shadow.label, comp.model_id, comp.name, exc)
        finally:
            self.gate.release()
            self.metrics.count("predator.shadow.calls", 1.0, outcome=outcome, **labels)
            self.metrics.observe("predator.shadow.latency", time.perf_counter() - started, **labels)

    def _write(self, ctx: RunContext, shadow: Shadow, got: dict[str, Tensor], *, rows: int) -> None:
        comp = self.component
        every = np.arange(rows)
        for spec, names in zip(comp.output_specs, shadow.columns, strict=True):
            if spec.name not in got:
                raise ValueError(f"shadow model {shadow.model_name!r} returned no output {spec.name!r}")
            for sl, values, name in zip(
                spec.slices, split_output(spec, got[spec.name], rows), names, strict=True
            ):
                ctx.matrix.declare(name, sl.dtype)
                ctx.matrix.set_rows(name, every, values)
        self._divergence(ctx, shadow)

    def _divergence(self, ctx: RunContext, shadow: Shadow) -> None:
        comp = self.component
        primary_name = comp.output_specs[0].slices[0].column
        if not ctx.matrix.has(primary_name):
            return
        primary, ok_p = ctx.matrix.read(primary_name)
        other, ok_s = ctx.matrix.read(shadow.columns[0][0])
        both = ok_p & ok_s
        if primary.ndim != 1 or not both.any():
            return
        a = primary[both].astype(np.float64)
        b = other[both].astype(np.float64)
        labels = shadow.labels(comp)
        self.metrics.observe("predator.shadow.abs_diff_mean", float(np.abs(a - b).mean()), **labels)
        rho = stats.spearman(a, b)
        if rho == rho:  # not nan
            self.metrics.observe("predator.shadow.rank_gap", 1.0 - rho, **labels)


class _Job:
    """One deferred shadow call (a callable the core awaits after the response was sent)."""

    __slots__ = ("ctx", "rows", "runner", "shadow", "tensors")

    def __init__(
        self, runner: ShadowRunner, ctx: RunContext, shadow: Shadow, tensors: list[Tensor], rows: int
    ) -> None:
        self.runner, self.ctx, self.shadow, self.tensors, self.rows = runner, ctx, shadow, tensors, rows

    async def __call__(self) -> None:
        await self.runner.call(self.ctx, self.shadow, self.tensors, self.rows)
