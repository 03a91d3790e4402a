"""DAG engine: concurrency, contained failures and timeouts, deadlines and cancellation."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from inferflow_core.api import InitialData, RequestInfo
from tests.helpers import CONCURRENT, TRACE, model_json, probe_runtime

DIAMOND = {
    "a": ["feature_initializer"],
    "b": ["a"],
    "c": ["a"],
    "d": ["b", "c"],
    "e": ["d"],
}


def _probes(**overrides: dict) -> list[dict]:
    out = []
    for name in "abcde":
        spec = {"component": name, "outputs": [{"name": f"out_{name}"}]}
        spec.update(overrides.get(name, {}))
        out.append(spec)
    return out


def _serve(dag: dict, probes: list[dict]):
    rt = probe_runtime()
    rt.apply_tree({rt.settings.config_map_prefix + "m": model_json(dag, probes)})
    assert not rt.store.current.errors, rt.store.current.errors
    return rt


async def _run(rt, rows: int = 3, deadline: float | None = None):
    initial = InitialData(rows=rows, texts={"id": [str(i) for i in range(rows)]})
    return await rt.execute("m", initial, RequestInfo(api="pointwise"), deadline=deadline)


async def test_diamond_runs_middle_branches_concurrently() -> None:
    rt = _serve(DIAMOND, _probes(b={"sleep_ms": 100}, c={"sleep_ms": 100}))
    TRACE.clear()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    ctx = await _run(rt)
    elapsed = loop.time() - t0
    assert not ctx.failures
    events = {(n, k): t for n, k, t in TRACE}
    # b and c overlap: each starts before the other ends
    assert events[("b", "start")] < events[("c", "end")]
    assert events[("c", "start")] < events[("b", "end")]
    # d starts only after both finished; e after d
    assert events[("d", "start")] >= max(events[("b", "end")], events[("c", "end")])
    assert events[("e", "start")] >= events[("d", "end")]
    assert elapsed < 0.19, f"branches ran sequentially ({elapsed:.3f}s)"
    for name in "abcde":
        values, valid = ctx.matrix.read(f"out_{name}")
        assert valid.all()
        assert np.allclose(values, 1.0)


async def test_failing_node_is_contained() -> None:
    rt = _serve(DIAMOND, _probes(b={"fail": True}))
    ctx = await _run(rt)
    assert [(f.component, f.kind) for f in ctx.failures] == [("b", "error")]
    assert "told to fail" in ctx.failures[0].message
    assert ctx.failures[0].model_id == "m"
    assert not ctx.matrix.read("out_b")[1].any()
    # dependants still ran
    assert ctx.matrix.read("out_d")[1].all()
    assert ctx.matrix.read("out_e")[1].all()
    assert rt.metrics.value("component_errors", model_id="m", component="b", kind="error") == 1


async def test_timed_out_node_is_contained() -> None:
    rt = _serve(DIAMOND, _probes(c={"sleep_ms": 5000, "timeout_ms": 50}))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    ctx = await _run(rt)
    assert loop.time() - t0 < 1.0
    assert [(f.component, f.kind) for f in ctx.failures] == [("c", "timeout")]
    assert not ctx.matrix.read("out_c")[1].any()
    assert ctx.matrix.read("out_e")[1].all()


async def test_request_deadline_bounds_the_whole_dag() -> None:
    rt = _serve(DIAMOND, _probes(d={"sleep_ms": 5000}))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    ctx = await _run(rt, deadline=t0 + 0.1)
    assert loop.time() - t0 < 0.5
    kinds = {f.component: f.kind for f in ctx.failures}
    assert kinds == {"d": "deadline", "e": "deadline"}
    assert ctx.matrix.read("out_b")[1].all()  # finished work is kept


async def test_cancellation_propagates_to_running_nodes() -> None:
    rt = _serve(DIAMOND, _probes(b={"sleep_ms": 5000}, c={"sleep_ms": 5000}))
    TRACE.clear()
    task = asyncio.ensure_future(_run(rt))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 1.0)
    ended = {n for n, k, _ in TRACE if k == "end"}
    assert {"b", "c"} <= ended  # both running nodes were cancelled (their finally ran)
    assert not any(n in {"d", "e"} for n, _, _ in TRACE)  # dependants never started


async def test_many_roots_and_any_shape() -> None:
    dag = {
        "a": ["feature_initializer"],
        "b": ["feature_initializer"],
        "c": ["feature_initializer"],
        "d": ["a"],
    }
    rt = _serve(dag, [{"component": n, "outputs": [{"name": f"o{n}"}]} for n in "abcd"])
    ctx = await _run(rt)
    assert not ctx.failures
    assert all(ctx.matrix.read(f"o{n}")[1].all() for n in "abcd")


async def test_deadline_cuts_every_node_of_a_concurrent_stage() -> None:
    # b runs in the request's task, c in a task of its own: the deadline cuts both, d and e never start
    rt = _serve(DIAMOND, _probes(b={"sleep_ms": 5000}, c={"sleep_ms": 5000}))
    TRACE.clear()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    ctx = await _run(rt, deadline=t0 + 0.1)
    assert loop.time() - t0 < 0.5
    assert {f.component: f.kind for f in ctx.failures} == {n: "deadline" for n in "bcde"}
    assert {n for n, k, _ in TRACE if k == "start"} == {"a", "b", "c"}


@pytest.mark.parametrize("first", ["a", "b"])
async def test_a_stage_member_waits_for_the_member_it_depends_on(first: str) -> None:
    # stage {a, b, c}: c depends on a; whichever of a and b comes first in the order
    other = "b" if first == "a" else "a"
    dag = {first: ["feature_initializer"], other: ["feature_initializer"], "c": ["a"], "d": ["b", "c"]}
    probes = [p for p in _probes(a={"sleep_ms": 60}, b={"sleep_ms": 30}) if p["component"] in "abcd"]
    rt = _serve(dag, probes)
    TRACE.clear()
    ctx = await _run(rt)
    assert not ctx.failures
    events = {(n, k): t for n, k, t in TRACE}
    assert events[("c", "start")] >= events[("a", "end")]
    assert events[("a", "start")] < events[("b", "end")]
    assert events[("b", "start")] < events[("a", "end")]
    assert events[("d", "start")] >= max(events[("b", "end")], events[("c", "end")])


async def test_nodes_that_never_wait_run_in_order_in_the_request_task_with_no_timer() -> None:
    # no node waits: every node runs in the request's task, in the order, and no deadline timer is armed
    loop = asyncio.get_running_loop()
    armed: list[float] = []
    call_at = loop.call_at

    def counting_call_at(when: float, *args, **kwargs):  # type: ignore[no-untyped-def]
        armed.append(when)
        return call_at(when, *args, **kwargs)

    async def run_counting_timers(probes: list[dict]):  # type: ignore[no-untyped-def]
        rt = _serve(DIAMOND, probes)
        TRACE.clear()
        loop.call_at = counting_call_at  # type: ignore[method-assign]
        try:
            return await _run(rt, deadline=loop.time() + 5)
        finally:
            del loop.call_at

    ctx = await run_counting_timers(_probes())
    assert not ctx.failures
    assert [(n, k) for n, k, _ in TRACE] == [(n, k) for n in "abcde" for k in ("start", "end")]
    assert armed == []
    # a node that waits arms the deadline, and the stage's next node starts while it waits
    ctx = await run_counting_timers(_probes(b={"sleep_ms": 30}))
    assert not ctx.failures
    order = [(n, k) for n, k, _ in TRACE]
    assert order.index(("c", "start")) < order.index(("b", "end"))
    assert any(abs(when - (loop.time() + 5)) < 1 for when in armed)


async def test_a_stepped_coroutine_resumed_in_a_task_stays_in_that_task() -> None:
    """``_Resume``: a coroutine stepped once by hand, then awaited through it, sees one current task,
    gets the task's cancellation, and returns when it ends."""
    from inferflow_core.engine.executor import _Resume

    seen: list[object] = []

    async def node(wait: float) -> None:
        seen.append(asyncio.current_task())
        try:
            async with asyncio.timeout(0.02):  # a timeout set before the wait cancels the right task
                await asyncio.sleep(wait)
        except TimeoutError:
            seen.append("timed out")
        seen.append(asyncio.current_task())
        await asyncio.sleep(0)
        seen.append("end")

    async def request(wait: float) -> None:
        coro = node(wait)
        step = coro.send(None)
        await _Resume(coro, step)

    task = asyncio.ensure_future(request(1.0))
    await task
    assert seen == [task, "timed out", task, "end"]
    seen.clear()
    cancelled = asyncio.ensure_future(request(0.0))
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert seen[0] is cancelled
    assert "end" not in seen


async def test_components_see_how_many_requests_the_process_executes() -> None:
    rt = _serve({"a": ["feature_initializer"]}, [{"component": "a", "sleep_ms": 50}])
    CONCURRENT.clear()
    await _run(rt)
    assert CONCURRENT == [1]  # alone
    CONCURRENT.clear()
    await asyncio.gather(*(_run(rt) for _ in range(3)))
    assert CONCURRENT == [1, 2, 3]  # each started while the earlier ones still ran
    assert rt.executing.count == 0
    task = asyncio.ensure_future(_run(rt))
    await asyncio.sleep(0.01)
    assert rt.executing.count == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rt.executing.count == 0  # a cancelled request is not counted any more
    CONCURRENT.clear()
    await _run(rt)
    assert CONCURRENT == [1]
