"""The component conformance base fails the components it must fail, and the plugin guide's example
passes it in a project with no pytest settings of its own."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inferflow_core.api import ColumnSpec, Component, ComponentError, DataType, RunContext
from inferflow_core.testing import ComponentConformance, make_context

ROOT = Path(__file__).resolve().parents[1]


class _Backend(Component):
    """Writes ``score`` (and, with ``slate``, ``slate_score``); its mode picks what the backend does."""

    def __init__(self, behaviour: str, slate: bool = False, fill_slate: bool = True) -> None:
        super().__init__("c", "m")
        self.behaviour, self.slate, self.fill_slate = behaviour, slate, fill_slate
        self.mode = "ok"

    def outputs(self) -> list[ColumnSpec]:
        specs = [ColumnSpec("score", DataType.FP32)]
        return specs + ([ColumnSpec("slate_score", DataType.FP32, slate=True)] if self.slate else [])

    async def run(self, ctx: RunContext) -> None:
        if self.mode == "broken":
            raise ComponentError("backend down")
        if self.mode == "slow":
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if self.behaviour == "swallows":
                    return
                if self.behaviour == "converts":
                    raise ComponentError("cancelled") from None
                raise
        ctx.matrix.set_column("score", np.ones(ctx.matrix.rows, np.float32))
        if self.slate and self.fill_slate and ctx.slate_matrix is not None:
            ctx.slate_matrix.set_column("slate_score", np.ones(ctx.slate_matrix.rows, np.float32))


class _Base(ComponentConformance):
    behaviour = "honest"
    slate = False
    fill_slate = True
    give_slates = True

    def make_component(self) -> _Backend:
        self.component = _Backend(self.behaviour, self.slate, self.fill_slate)
        return self.component

    def make_context(self, mode: str) -> RunContext:
        self.component.mode = mode
        slates = [np.array([0, 1]), np.array([1])] if self.slate and self.give_slates else None
        return make_context(self.component, rows=2, slates=slates)


class _Honest(_Base):
    pass


class _Swallows(_Base):
    behaviour = "swallows"


class _Converts(_Base):
    behaviour = "converts"


class _NeverHangs(_Base):
    def make_context(self, mode: str) -> RunContext:
        return super().make_context("ok" if mode == "slow" else mode)


class _SlateHonest(_Base):
    slate = True


class _SlateUnfilled(_Base):
    slate = True
    fill_slate = False


class _SlateWithoutMatrix(_Base):
    slate = True
    give_slates = False


class _PureCompute(_Base):
    modes = ("ok",)


@pytest.mark.parametrize("base", [_Honest, _SlateHonest])
def test_an_honest_component_passes_every_test(base: type[_Base]) -> None:
    suite = base()
    suite.test_declares_typed_outputs()
    suite.test_ok_fills_outputs()
    suite.test_failure_leaves_cells_missing()
    suite.test_honours_cancellation()


@pytest.mark.parametrize(
    ("base", "needle"),
    [
        (_Swallows, "returned normally (swallowed the cancellation)"),
        (_Converts, "raised ComponentError('cancelled')"),
        (_NeverHangs, "the slow backend must hang"),
    ],
)
def test_cancellation_is_really_asserted(base: type[_Base], needle: str) -> None:
    with pytest.raises(AssertionError, match=re.escape(needle)):
        base().test_honours_cancellation()


@pytest.mark.parametrize(
    ("base", "needle"),
    [
        (_SlateUnfilled, "at least one slate cell of ['slate_score']"),
        (_SlateWithoutMatrix, "must give a slate matrix"),
    ],
)
def test_the_slate_case_is_checked(base: type[_Base], needle: str) -> None:
    with pytest.raises(AssertionError, match=re.escape(needle)):
        base().test_ok_fills_outputs()


def test_a_component_without_a_backend_skips_the_modes_it_lacks_saying_why() -> None:
    suite = _PureCompute()
    suite.test_ok_fills_outputs()
    for test in (suite.test_failure_leaves_cells_missing, suite.test_honours_cancellation):
        with pytest.raises(pytest.skip.Exception, match="modes has no"):
            test()


def _python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, re.S)


@pytest.mark.integration
def test_the_guides_example_passes_in_a_project_without_pytest_settings(tmp_path: Path) -> None:
    blocks = _python_blocks((ROOT / "docs/writing-a-plugin.md").read_text())
    plugin = next(b for b in blocks if "class ThresholdType" in b)
    tests = next(b for b in blocks if "ComponentConformance)" in b)
    (tmp_path / "inferflow_threshold").mkdir()
    (tmp_path / "inferflow_threshold/__init__.py").write_text("")
    (tmp_path / "inferflow_threshold/plugin.py").write_text(plugin)
    (tmp_path / "test_threshold.py").write_text(tests)
    run = subprocess.run(
        # no ini file in tmp_path, and pytest-asyncio disabled: the base needs neither
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "-p",
            "no:asyncio",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "2 passed, 2 skipped" in run.stdout, run.stdout
    assert "modes has no 'broken'" in run.stdout
    assert "modes has no 'slow'" in run.stdout
