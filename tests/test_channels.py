"""``api.net.gather_calls``: the fan-out of a backend client's batches."""

from __future__ import annotations

import asyncio

import pytest

from inferflow_core.api import net


async def _answer(value: int, fail: bool = False) -> int:
    await asyncio.sleep(0)
    if fail:
        raise ValueError(f"batch {value} failed")
    return value


async def test_results_and_errors_come_back_in_call_order() -> None:
    got = await net.gather_calls([_answer(1), _answer(2, fail=True), _answer(3)])
    assert got[0] == 1
    assert got[2] == 3
    assert isinstance(got[1], ValueError)
    assert "batch 2" in str(got[1])
    single = await net.gather_calls([_answer(7, fail=True)])
    assert len(single) == 1
    assert isinstance(single[0], ValueError)
    assert await net.gather_calls([]) == []


async def test_one_call_runs_in_the_callers_task() -> None:
    async def where() -> asyncio.Task | None:
        return asyncio.current_task()

    me = asyncio.current_task()
    assert await net.gather_calls([where()]) == [me]
    assert (await net.gather_calls([where(), where()]))[0] is not me  # several: a task each


async def test_the_callers_cancellation_is_raised_not_returned() -> None:
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.sleep(60)

    task = asyncio.ensure_future(net.gather_calls([hang()]))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
