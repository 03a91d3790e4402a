"""Run a compiled DAG for one request: each node an asyncio task awaiting its prerequisites."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ..components.base import Component, RunContext, Stopwatch
from ..errors import ComponentError

if TYPE_CHECKING:
    from ..observability.metrics import Metrics
    from .compile import CompiledModel

log = logging.getLogger("inferflow.engine")


async def run_dag(model: CompiledModel, ctx: RunContext, metrics: Metrics | None = None) -> None:
    """Run every node of ``model``'s DAG once, in dependency order, concurrently where possible.

    A node that raises or exceeds its own timeout is recorded in ``ctx.failures``; its dependants
    still run. The whole run ends by ``ctx.deadline``: nodes still running then are cancelled and
    recorded as ``deadline`` failures. Cancelling the caller cancels every node.
    """
    loop = asyncio.get_running_loop()
    tasks: dict[str, asyncio.Task[None]] = {}
    for name in model.graph.order:
        prereqs = [tasks[p] for p in model.graph.prerequisites[name]]
        tasks[name] = loop.create_task(_run_node(model.nodes[name], prereqs, ctx, metrics))
    try:
        if ctx.deadline is None:
            await asyncio.gather(*tasks.values())
        else:
            async with asyncio.timeout_at(ctx.deadline):
                await asyncio.gather(*tasks.values())
    except TimeoutError:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        for name, task in tasks.items():
            if task.cancelled():
                ctx.fail(name, "deadline", "request deadline exceeded before the component finished")
    except asyncio.CancelledError:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        raise


async def _run_node(
    component: Component, prereqs: list[asyncio.Task[None]], ctx: RunContext, metrics: Metrics | None
) -> None:
    for task in prereqs:
        await task
    watch = Stopwatch()
    kind = None
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
    if metrics is not None:
        metrics.component_run(ctx.model_id, component.name, watch.elapsed(), kind)
