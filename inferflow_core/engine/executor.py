"""Run a compiled DAG for one request: each node an asyncio task awaiting its prerequisites."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import time
from collections.abc import Awaitable, Coroutine, Generator, Sequence
from typing import TYPE_CHECKING, Any

from ..components.base import Component, ComponentFailure, RunContext
from ..errors import ComponentError
from ..observability import tracing
from .columns import check_request_columns

if TYPE_CHECKING:
    from ..observability.metrics import Metrics
    from .compile import CompiledModel

log = logging.getLogger("inferflow.engine")


async def run_dag(model: CompiledModel, ctx: RunContext, metrics: Metrics | None = None) -> None:
    """Run every node of ``model``'s DAG once, in dependency order, concurrently where possible.

    A node that raises or exceeds its own timeout is recorded in ``ctx.failures``; its dependants
    still run. The whole run ends by ``ctx.deadline``: nodes still running or not yet started then
    are cancelled and recorded as ``deadline`` failures. Cancelling the caller cancels every node.

    Nodes run in the request's task, one after the other, for as long as each ends without waiting
    (an embedded store, an in-process model): no task, no event-loop round trip, no deadline timer.
    The first node of a stage (``Graph.stages``) that waits is finished in the request's task under
    the deadline while the stage's later nodes run beside it, a task each; see :func:`_run_stages`.
    """
    done: set[str] = set()
    if model.request_columns and ctx.initial is not None:
        check_request_columns(model, ctx, metrics)
    try:
        await _run_stages(model, ctx, metrics, done)
    except TimeoutError:
        for name in model.graph.order:
            if name not in done:
                ctx.fail(name, "deadline", "request deadline exceeded before the component finished")
                if metrics is not None:  # a cut component is a component error like any other
                    metrics.component_run(ctx.model_id, name, 0.0, "deadline")
    percent = model.config.component_config.error_logging_percent
    for failure in ctx.failures:
        log_failure(failure, percent)


def log_failure(failure: ComponentFailure, percent: int, draw: random.Random | None = None) -> bool:
    """Log one contained failure when the Go sampler lets it through: ``rand.Intn(100) < percent``.

    Go semantics: 0 logs nothing, 100 logs every failure. Failures are always counted (by the
    executor's metrics) whether or not they are logged. Returns whether a line was written.
    """
    if percent <= 0 or (draw or random).randrange(100) >= percent:
        return False
    log.warning(
        "component failed: model %s component %s (%s): %s",
        failure.model_id,
        failure.component,
        failure.kind,
        failure.message,
        extra={
            "model_id": failure.model_id,
            "component": failure.component,
            "kind": failure.kind,
            "error": failure.message,
        },
    )
    return True


async def _run_stages(model: CompiledModel, ctx: RunContext, metrics: Metrics | None, done: set[str]) -> None:
    """Each node is stepped in this task (``send(None)``: what ``await`` does first) until it ends or
    first waits. A node that ends at once is done; the next node of its stage starts right after it,
    where a task of its own would have started it (tasks start in order when the request's task first
    waits, and it has not waited). A node that waits: the stage's later nodes get a task each, created
    in order, then the node is finished in this task (:class:`_Resume`, so ``asyncio.current_task()``
    and a timeout it set stay the request's) and the tasks are awaited, both under the deadline, whose
    timer is armed only then: a run where no node waits never arms it (a node that never waits cannot
    be cut by it either). A stage whose nodes wait for one another runs a task each (:func:`_run_group`).
    """
    nodes = model.nodes
    graph = model.graph
    linked = graph.linked_stages
    traced = tracing.recording()  # the request's tracing scope: the same for every node of the run
    for stage in graph.stages:
        if stage in linked:
            await _bounded(_run_group(model, stage, ctx, metrics, done, traced), ctx.deadline)
            continue
        # the context the stage's tasks start from: the request's as it was before the stage (a node
        # stepped here may change this task's context, e.g. make its span current, until it ends)
        base = contextvars.copy_context() if len(stage) > 1 else None
        for i, name in enumerate(stage):
            coro = _run_node(nodes[name], (), ctx, metrics, traced)
            try:
                step = coro.send(None)
            except StopIteration:
                done.add(name)
                continue
            rest = _rest_of_stage(model, stage[i + 1 :], base, name, coro, step, ctx, metrics, done, traced)
            await _bounded(rest, ctx.deadline)
            break


async def _bounded(work: Coroutine[Any, Any, None], deadline: float | None) -> None:
    if deadline is None:
        await work
    else:
        async with asyncio.timeout_at(deadline):
            await work


async def _rest_of_stage(
    model: CompiledModel,
    rest: tuple[str, ...],
    base: contextvars.Context | None,
    name: str,
    coro: Coroutine[Any, Any, None],
    step: Any,
    ctx: RunContext,
    metrics: Metrics | None,
    done: set[str],
    traced: bool,
) -> None:
    """Node ``name`` waited (``coro`` yielded ``step``): the nodes ``rest`` of its stage start beside it,
    a task each (in a copy of ``base``, the context before the stage), and it is finished here."""
    if not rest:
        await _Resume(coro, step)
        done.add(name)
        return
    assert base is not None
    loop = asyncio.get_running_loop()
    tasks = {
        other: loop.create_task(_run_node(model.nodes[other], (), ctx, metrics, traced), context=base.copy())
        for other in rest
    }
    await _finish_stage(tasks, done, _Resume(coro, step), name)


async def _finish_stage(
    tasks: dict[str, asyncio.Task[None]], done: set[str], own: Awaitable[None] | None, own_name: str
) -> None:
    """Await ``own`` (the node this task runs, if any), then the stage's ``tasks``; on any exception (the
    deadline, as CancelledError turned into TimeoutError above, or the caller's cancel) cancel the tasks
    and wait for them. The nodes that finished are added to ``done``."""
    try:
        if own is not None:
            await own
            done.add(own_name)
        if len(tasks) == 1:
            for task in tasks.values():
                await task
        else:
            await asyncio.gather(*tasks.values())
    except BaseException:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        raise
    finally:
        done.update(name for name, task in tasks.items() if task.done() and not task.cancelled())


class _Resume:
    """``await``-able: the rest of coroutine ``coro``, which was stepped once by hand (``send(None)``)
    and yielded ``step`` (what a coroutine yields to its task: the future it waits for, or None to be
    stepped again soon). Awaiting it does what ``await coro`` would have done from there, in the awaiting
    task: each value ``coro`` yields goes to the task, what the task sends or throws (a cancellation)
    goes back."""

    __slots__ = ("coro", "step")

    def __init__(self, coro: Coroutine[Any, Any, None], step: Any) -> None:
        self.coro, self.step = coro, step

    def __await__(self) -> Generator[Any, Any, None]:
        coro, step = self.coro, self.step
        while True:
            try:
                sent = yield step
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:
                try:
                    step = coro.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    step = coro.send(sent)
                except StopIteration:
                    return


async def _run_group(
    model: CompiledModel,
    stage: tuple[str, ...],
    ctx: RunContext,
    metrics: Metrics | None,
    done: set[str],
    traced: bool,
) -> None:
    """The nodes of a stage concurrently, each in a task of its own; except the first (in topological
    order, so it waits for no other member) when no member waits for it: it runs in this task after
    the tasks are created. Tasks start in creation order when this task first waits, so the nodes
    start in the order a task each would give them. One task left is awaited as it is (no gather)."""
    loop = asyncio.get_running_loop()
    members = set(stage)
    prerequisites = model.graph.prerequisites
    first = stage[0]
    inline = not any(first in prerequisites[name] for name in stage[1:])
    tasks: dict[str, asyncio.Task[None]] = {}
    for name in stage[1:] if inline else stage:
        prereqs = [tasks[p] for p in prerequisites[name] if p in members]
        tasks[name] = loop.create_task(_run_node(model.nodes[name], prereqs, ctx, metrics, traced))
    own = _run_node(model.nodes[first], (), ctx, metrics, traced) if inline else None
    await _finish_stage(tasks, done, own, first)


async def _run_node(
    component: Component,
    prereqs: Sequence[asyncio.Task[None]],
    ctx: RunContext,
    metrics: Metrics | None,
    traced: bool | None = None,
) -> None:
    """One node: its run, contained failures, its span (``traced``: the request is traced; None: look
    it up), its metrics and EXPLAIN's lifecycle calls."""
    for task in prereqs:
        await task
    lifecycle = ctx.lifecycle  # EXPLAIN's adapter (engine/explain.py); None unless the request asked
    if lifecycle is not None:
        lifecycle.before_node(component, ctx)
    start = time.perf_counter()
    kind = None
    span = (
        tracing.start_component(component.name, component.kind, ctx.model_id, ctx.matrix.rows)
        if (tracing.recording() if traced is None else traced)
        else None
    )
    timeout = component.timeout
    try:
        if timeout is None:
            await component.run(ctx)
        else:
            async with asyncio.timeout(timeout):
                await component.run(ctx)
    except TimeoutError:
        kind = "timeout"
        if component.timeout is None:  # the component's own bounded call (e.g. ctx.bound(...)) timed out
            ctx.fail(component.name, kind, "a call of the component timed out")
        else:
            ctx.fail(component.name, kind, f"component exceeded its timeout of {component.timeout:g}s")
    except ComponentError as exc:
        kind = exc.kind
        ctx.fail(component.name, kind, exc.message)
    except Exception as exc:  # contained: a component never takes the request down
        kind = "error"
        ctx.fail(component.name, kind, f"{type(exc).__name__}: {exc}")
        if log.isEnabledFor(logging.DEBUG):  # logged (sampled by error_logging_percent) by the caller
            log.debug("component %s raised", component.name, exc_info=True)
    except BaseException:  # cancelled (deadline or caller): close the span, then let it propagate
        if span is not None:
            tracing.end_component(span, "cancelled")
        raise
    if kind is None and ctx.failures:  # a partial failure the component recorded itself (ctx.fail)
        kind = next((f.kind for f in ctx.failures if f.component == component.name), None)
    if span is not None:
        tracing.end_component(span, kind)
    if metrics is not None:
        metrics.component_run(ctx.model_id, component.name, time.perf_counter() - start, kind)
    if lifecycle is not None:
        lifecycle.after_node(component, ctx, kind)
