"""Test helpers for plugin authors: conformance bases and helpers to register a plugin temporarily.

Usage in a component plugin's tests::

    from inferflow_core.testing import ComponentConformance

    class TestMyComponent(ComponentConformance):
        def make_component(self):
            ...                              # a built component
        def make_context(self, mode):        # mode: one of ``modes``: "ok" | "broken" | "slow"
            ...                              # a RunContext whose backend works / fails / hangs

A component without a backend (pure compute) sets ``modes = ("ok",)`` (or ``("ok", "broken")`` when a
context can make it fail); the tests of the other modes are then skipped, saying why.

The tests are plain functions that run their own event loop: they need no pytest settings
(``asyncio_mode``) and no pytest-asyncio. ``make_component`` and ``make_context`` are called inside that
loop, so they may create loop-bound objects (gRPC channels).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping
from typing import ClassVar

import numpy as np

from ..components.base import ColumnSpec, Component, RequestInfo, RunContext
from ..components.feature_init import InitialData, declare_all, write_initial
from ..config.sources import write_config_dir
from ..dtypes import DataType
from ..matrix import ComponentMatrix, SlateMatrix
from ..plugins import PluginHost
from .ports import pick_free_port, silent_port
from .runtime import make_host, make_runtime

__all__ = [
    "ComponentConformance",
    "make_context",
    "make_host",
    "make_runtime",
    "pick_free_port",
    "registered_plugin",
    "silent_port",
    "write_config_dir",
]


def make_context(
    component: Component | None = None,
    rows: int = 1,
    texts: Mapping[str, object] | None = None,
    config: Mapping[str, str] | None = None,
    model_id: str = "test_model",
    deadline: float | None = None,
    slates: list[np.ndarray] | None = None,
    extra_columns: tuple[ColumnSpec, ...] = (),
) -> RunContext:
    """A RunContext whose matrix holds ``texts`` and declares ``component``'s outputs and inputs."""
    matrix = ComponentMatrix(rows)
    write_initial(matrix, dict(texts or {}), {})
    slate_matrix = SlateMatrix(slates) if slates is not None else None
    specs = tuple(component.outputs()) + tuple(component.required_columns()) if component else ()
    declare_all(matrix, [s for s in specs + extra_columns if not s.slate])
    if slate_matrix is not None:
        declare_all(slate_matrix, [s for s in specs + extra_columns if s.slate])
    return RunContext(
        model_id=model_id,
        matrix=matrix,
        request=RequestInfo(api="pointwise"),
        config=dict(config or {}),
        slate_matrix=slate_matrix,
        deadline=deadline,
        initial=InitialData(rows=rows),
    )


@contextlib.contextmanager
def registered_plugin(host: PluginHost, plugin: object, name: str | None = None) -> Iterator[str]:
    """Register ``plugin`` on ``host`` for the duration of the block."""
    got = host.register(plugin, name=name)
    try:
        yield got
    finally:
        host.unregister(got)


class ComponentConformance:
    """Contract every component type must meet. Subclass and implement the two factories.

    * ``test_declares_typed_outputs``: every output is a named ``ColumnSpec`` with a ``DataType``;
    * ``test_ok_fills_outputs``: a working backend records no failure and fills at least one cell of
      its target outputs and, when it writes slate columns, at least one cell of those (in the slate
      matrix ``make_context`` must then give);
    * ``test_failure_leaves_cells_missing`` (mode ``broken``): the run raises or records a failure, and
      no output cell is filled;
    * ``test_honours_cancellation`` (mode ``slow``): a run still waiting on its backend after
      ``cancel_after_s`` is cancelled and must end with ``CancelledError`` within ``finish_within_s``
      (returning normally, i.e. swallowing the cancellation, or raising anything else fails).
    """

    modes: ClassVar[tuple[str, ...]] = ("ok", "broken", "slow")
    cancel_after_s: float = 0.05
    finish_within_s: float = 2.0

    def make_component(self) -> Component:
        raise NotImplementedError

    def make_context(self, mode: str) -> RunContext:
        """A context for ``make_component()``: ``ok`` works, ``broken`` makes its backend fail,
        ``slow`` makes its backend hang (or be slow). Only the ``modes`` the class declares are asked."""
        raise NotImplementedError

    def _needs(self, mode: str) -> None:
        if mode not in self.modes:
            import pytest

            pytest.skip(f"{type(self).__name__}.modes has no {mode!r} (a component without such a backend)")

    def test_declares_typed_outputs(self) -> None:
        outs = list(self.make_component().outputs())
        assert outs, "a component must declare the columns it writes"
        for spec in outs:
            assert isinstance(spec, ColumnSpec), spec
            assert isinstance(spec.dtype, DataType), spec
            assert spec.name, spec

    def test_ok_fills_outputs(self) -> None:
        asyncio.run(self._ok_fills_outputs())

    def test_failure_leaves_cells_missing(self) -> None:
        self._needs("broken")
        asyncio.run(self._failure_leaves_cells_missing())

    def test_honours_cancellation(self) -> None:
        self._needs("slow")
        asyncio.run(self._honours_cancellation())

    async def _ok_fills_outputs(self) -> None:
        comp = self.make_component()
        ctx = self.make_context("ok")
        await comp.run(ctx)
        assert not ctx.failures, ctx.failures
        target, slate = _written(comp)
        if target:
            filled = [s.name for s in target if ctx.matrix.column(s.name).valid.any()]
            assert filled, f"a working backend must fill at least one cell of {[s.name for s in target]}"
        slates = ctx.slate_matrix
        if slate:
            assert slates is not None, (
                "the component writes slate columns: make_context('ok') must give a slate matrix "
                "(make_context(component, slates=[...]))"
            )
            filled = [s.name for s in slate if slates.column(s.name).valid.any()]
            assert filled, f"a working backend must fill at least one slate cell of {[s.name for s in slate]}"

    async def _failure_leaves_cells_missing(self) -> None:
        comp = self.make_component()
        ctx = self.make_context("broken")
        try:
            await comp.run(ctx)
        except Exception:
            pass
        else:
            assert ctx.failures, "a broken backend must raise or record a failure"
        target, slate = _written(comp)
        for spec in target:
            assert not ctx.matrix.column(spec.name).valid.any(), f"{spec.name}: cells filled despite failure"
        slates = ctx.slate_matrix
        if slates is not None:
            for spec in slate:
                assert not slates.column(spec.name).valid.any(), f"slate {spec.name}: filled despite failure"

    async def _honours_cancellation(self) -> None:
        comp = self.make_component()
        ctx = self.make_context("slow")
        task = asyncio.ensure_future(comp.run(ctx))
        await asyncio.sleep(self.cancel_after_s)
        assert not task.done(), (
            f"run() ended within cancel_after_s={self.cancel_after_s}s in mode 'slow' "
            f"({_outcome(task)}): the slow backend must hang so that cancellation can be tested"
        )
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=self.finish_within_s)
        if not done:
            task.cancel()
        assert done, f"run() did not stop within finish_within_s={self.finish_within_s}s after cancellation"
        assert task.cancelled(), (
            f"run() must end with CancelledError when cancelled; it {_outcome(task)} "
            "(do not swallow asyncio.CancelledError: the engine cancels on deadlines and client aborts)"
        )


def _written(comp: Component) -> tuple[list[ColumnSpec], list[ColumnSpec]]:
    """The target and slate columns ``comp`` computes (constant columns are the initializer's)."""
    outs = [s for s in comp.outputs() if s.constant is None]
    return [s for s in outs if not s.slate], [s for s in outs if s.slate]


def _outcome(task: asyncio.Future[None]) -> str:
    if task.cancelled():
        return "was cancelled"
    exc = task.exception()
    return "returned normally (swallowed the cancellation)" if exc is None else f"raised {exc!r}"
