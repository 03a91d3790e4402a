"""Run a compiled DAG for one request: each node an asyncio task awaiting its prerequisites."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..components.base import Component, RunContext, Stopwatch
from ..errors import ComponentError
from ..observability import tracing

if TYPE_CHECKING:
    from ..observability.metrics import Metrics
    from .compile import CompiledModel

log = logging.getLogger("inferflow.engine")


async def run_dag(model: CompiledModel, ctx: RunContext, metrics: Metrics | None = None) -> None:
    """Run every node of ``model``'s DAG once, in dependency order, concurrently where possible.

    A node that raises or exceeds its own timeout is recorded in ``ctx.failures``; its dependants
    still run. The whole run ends by ``ctx.deadline``: nodes still running or not yet started then
    are cancelled and recorded as ``deadline`` failures. Cancelling the caller cancels every node.

    Nodes that nothing can run beside (``Graph.stages`` barriers: the feature initializer, a final
    scorer, every node of a chain) are awaited inline; only the nodes between two barriers get tasks.
    That keeps a chain DAG free of task creation and event-loop round trips.
    """
    done: set[str] = set()
    try:
        if ctx.deadline is None:
            await _run_stages(model, ctx, metrics, done)
        else:
            async with asyncio.timeout_at(ctx.deadline):
                await _run_stages(model, ctx, metrics, done)
    except TimeoutError:
        for name in model.graph.order:
            if name not in done:
                ctx.fail(name, "deadline", "request deadline exceeded before the component finished")


async def _run_stages(model: CompiledModel, ctx: RunContext, metrics: Metrics | None, done: set[str]) -> None:
    nodes = model.nodes
    for stage in model.graph.stages:
        if len(stage) == 1:
            await _run_node(nodes[stage[0]], (), ctx, metrics)
            done.add(stage[0])
            continue
        await _run_group(model, stage, ctx, metrics, done)


async def _run_group(
    model: CompiledModel, stage: tuple[str, ...], ctx: RunContext, metrics: Metrics | None, done: set[str]
) -> None:
    loop = asyncio.get_running_loop()
    members = set(stage)
    tasks: dict[str, asyncio.Task[None]] = {}
    for name in stage:
        prereqs = [tasks[p] for p in model.graph.prerequisites[name] if p in members]
        tasks[name] = loop.create_task(_run_node(model.nodes[name], prereqs, ctx, metrics))
    try:
        await asyncio.gather(*tasks.values())
    except BaseException:  # deadline (CancelledError turned into TimeoutError above) or caller cancel
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        raise
    finally:
        done.update(name for name, task in tasks.items() if task.done() and not task.cancelled())


async def _run_node(
    component: Component,
    prereqs: Sequence[asyncio.Task[None]],
    ctx: RunContext,
    metrics: Metrics | None,
) -> None:
    for task in prereqs:
        await task
    watch = Stopwatch()
    kind = None
    span = (
        tracing.start_component(component.name, component.kind, ctx.model_id, ctx.matrix.rows)
        if tracing.recording()
        else None
    )
    try:
        if component.timeout is None:
            await component.run(ctx)
        else:
            async with asyncio.timeout(component.timeout):
                await component.run(ctx)
    except TimeoutError:
        kind = "timeout"
        ctx.fail(component.name, kind, f"component exceeded its timeout of {component.timeout:g}s")
    except ComponentError as exc:
        kind = exc.kind
        ctx.fail(component.name, kind, exc.message)
    except Exception as exc:  # contained: a component never takes the request down
        kind = "error"
        ctx.fail(component.name, kind, f"{type(exc).__name__}: {exc}")
        log.warning(
            "component failed",
            extra={"model_id": ctx.model_id, "component": component.name, "error": repr(exc)},
            exc_info=log.isEnabledFor(logging.DEBUG),
        )
    except BaseException:  # cancelled (deadline or caller): close the span, then let it propagate
        if span is not None:
            tracing.end_component(span, "cancelled")
        raise
    if span is not None:
        tracing.end_component(span, kind)
    if metrics is not None:
        metrics.component_run(ctx.model_id, component.name, watch.elapsed(), kind)
