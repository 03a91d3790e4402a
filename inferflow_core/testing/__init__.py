"""Test helpers for plugin authors: conformance bases and helpers to register a plugin temporarily.

Usage in a component plugin's tests::

    from inferflow_core.testing import ComponentConformance

    class TestMyComponent(ComponentConformance):
        def make_component(self):
            ...                              # a built component
        def make_context(self, mode):        # mode: "ok" | "broken" | "slow"
            ...                              # a RunContext whose backend works / fails / hangs
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping

import numpy as np

from ..components.base import ColumnSpec, Component, RequestInfo, RunContext
from ..components.feature_init import InitialData, declare_all, write_initial
from ..config.sources import write_config_dir
from ..dtypes import DataType
from ..matrix import ComponentMatrix, SlateMatrix
from ..plugins import PluginHost

__all__ = ["ComponentConformance", "make_context", "registered_plugin", "write_config_dir"]


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
    """Contract every component type must meet. Subclass and implement the two factories."""

    cancel_after_s: float = 0.02
    finish_within_s: float = 2.0

    def make_component(self) -> Component:
        raise NotImplementedError

    def make_context(self, mode: str) -> RunContext:
        """A context for ``make_component()``: ``ok`` works, ``broken`` makes its backend fail,
        ``slow`` makes its backend hang (or be slow)."""
        raise NotImplementedError

    def test_declares_typed_outputs(self) -> None:
        outs = list(self.make_component().outputs())
        assert outs, "a component must declare the columns it writes"
        for spec in outs:
            assert isinstance(spec, ColumnSpec) and isinstance(spec.dtype, DataType) and spec.name

    async def test_ok_fills_outputs(self) -> None:
        comp = self.make_component()
        ctx = self.make_context("ok")
        await comp.run(ctx)
        assert not ctx.failures, ctx.failures
        filled = [
            s.name
            for s in comp.outputs()
            if not s.slate and s.constant is None and ctx.matrix.column(s.name).valid.any()
        ]
        assert filled or ctx.slate_matrix is not None, "a working backend must fill at least one output cell"

    async def test_failure_leaves_cells_missing(self) -> None:
        comp = self.make_component()
        ctx = self.make_context("broken")
        try:
            await comp.run(ctx)
        except Exception:
            pass
        else:
            assert ctx.failures, "a broken backend must raise or record a failure"
        for spec in comp.outputs():
            if spec.slate or spec.constant is not None:
                continue
            assert not ctx.matrix.column(spec.name).valid.any(), f"{spec.name}: cells filled despite failure"

    async def test_honours_cancellation(self) -> None:
        comp = self.make_component()
        ctx = self.make_context("slow")
        task = asyncio.ensure_future(comp.run(ctx))
        await asyncio.sleep(self.cancel_after_s)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=self.finish_within_s)
        assert done, "component did not stop within the grace period after cancellation"
