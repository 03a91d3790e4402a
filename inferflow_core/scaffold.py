"""``inferflow plugin new NAME``: write a pip-installable plugin package with one component type.

The package (``inferflow-NAME``, import package ``inferflow_NAME``) has a pyproject with the ``inferflow``
entry point and a compatible ``inferflow-core`` range, a component type consuming ``NAME_components``,
a README, an example model config, and tests (the core's ``ComponentConformance`` base and a DAG run
through the installed entry point) with the pytest settings they need. Right after
``pip install -e 'inferflow-NAME[test]'`` its tests pass and ``inferflow validate`` accepts its example.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import re
from pathlib import Path

from .errors import UsageError

_NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")

PYPROJECT = """\
[build-system]
requires = ["hatchling>=1.27"]
build-backend = "hatchling.build"

[project]
name = "inferflow-{dist}"
version = "0.1.0"
description = "Inferflow plugin: the {key} component type."
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["inferflow-core{core_range}", "numpy>=1.26", "pydantic>=2.6,<3"]

[project.optional-dependencies]
test = ["pytest>=8", "pytest-asyncio>=0.23"]

[project.entry-points.inferflow]
{module} = "{package}.plugin"

[tool.hatch.build.targets.wheel]
packages = ["{package}"]

[tool.pytest.ini_options]
addopts = "--import-mode=importlib -p no:cacheprovider"
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"
testpaths = ["tests"]
"""

INIT = '''\
"""inferflow-{dist}: the ``{key}`` component type (see README.md)."""

from .component import {cls}Component, {cls}Config, {cls}Type, LocalBackend

__all__ = ["LocalBackend", "{cls}Component", "{cls}Config", "{cls}Type"]
'''

COMPONENT = '''\
"""``{key}``: ``output = weight * input`` for every target, computed by a backend.

Config entry (one per component)::

    {{"component": "{module}", "input": "pctr", "output": "{module}_score", "weight": 2.0}}

``LocalBackend`` computes in process; replace it with a client of your service (an async call per
request, never per target). Import only ``inferflow_core.api``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from inferflow_core.api import BuildContext, ColumnSpec, Component, ConfigError, DataType, RunContext


class {cls}Config(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown keys are config errors, with their JSON path
    component: str = Field(min_length=1)
    input: str = Field(min_length=1)
    output: str = Field(min_length=1)
    weight: float = 1.0


class Backend(Protocol):
    async def score(self, values: np.ndarray, weight: float) -> np.ndarray: ...


class LocalBackend:
    """The embedded backend: numpy over the whole column."""

    async def score(self, values: np.ndarray, weight: float) -> np.ndarray:
        return (values * np.float32(weight)).astype(np.float32)


class {cls}Component(Component):
    kind = "{module}"

    def __init__(self, cfg: {cls}Config, model_id: str, backend: Backend | None = None) -> None:
        super().__init__(cfg.component, model_id)
        self.cfg = cfg
        self.backend: Backend = backend or LocalBackend()

    def outputs(self) -> Sequence[ColumnSpec]:
        return [ColumnSpec(self.cfg.output, DataType.FP32)]

    def required_columns(self) -> Sequence[ColumnSpec]:
        return [ColumnSpec(self.cfg.input, DataType.FP32)]

    async def run(self, ctx: RunContext) -> None:
        values, valid = ctx.matrix.read(self.cfg.input, DataType.FP32)
        scores = await self.backend.score(values, self.cfg.weight)  # raises -> the engine contains it
        ctx.matrix.set_column(self.cfg.output, scores, valid)


class {cls}Type:
    """The component type: builds one component per config entry, once per model-config version."""

    config_key = "{key}"
    config_model = {cls}Config

    def build(self, cfg: {cls}Config, ctx: BuildContext) -> Component:
        if cfg.output == cfg.input:
            problem = f"component {{cfg.component}}: must differ from input"
            raise ConfigError(ctx.model_id, [("output", problem)])
        return {cls}Component(cfg, ctx.model_id)
'''

PLUGIN = '''\
"""Entry point ``{module}`` (group ``inferflow``): registers the ``{key}`` section."""

from __future__ import annotations

from inferflow_core.api import RegisterComponent, hookimpl

from .component import {cls}Type


@hookimpl
def register_components(register: RegisterComponent) -> None:
    register({cls}Type())
'''

TEST = '''\
"""The component against the core's conformance base, and in a DAG through the installed entry point."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
from {package} import {cls}Component, {cls}Config

from inferflow_core.api import DataType, InitialData, RequestInfo, RunContext
from inferflow_core.runtime import Runtime
from inferflow_core.testing import ComponentConformance, make_context

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "model.json"


class SwitchBackend:
    """Works, fails or hangs, as the conformance test asks."""

    mode = "ok"

    async def score(self, values: np.ndarray, weight: float) -> np.ndarray:
        if self.mode == "broken":
            raise ConnectionError("backend down")
        if self.mode == "slow":
            await asyncio.sleep(3600)
        return (values * np.float32(weight)).astype(np.float32)


class Test{cls}Conformance(ComponentConformance):
    def make_component(self) -> {cls}Component:
        self.backend = SwitchBackend()
        cfg = {cls}Config(component="{module}", input="pctr", output="{module}_score", weight=2.0)
        self.component = {cls}Component(cfg, "test_model", backend=self.backend)
        return self.component

    def make_context(self, mode: str) -> RunContext:
        self.backend.mode = mode
        return make_context(self.component, rows=3, texts={{"pctr": ["0.1", "0.2", ""]}})


async def test_runs_in_a_dag_from_the_installed_entry_point() -> None:
    rt = Runtime()  # loads entry points: the package must be installed (pip install -e .)
    assert "{key}" in rt.registry.components, "entry point {module} not loaded"
    rt.apply_tree({{rt.settings.config_map_prefix + "m": EXAMPLE.read_text()}})
    assert not rt.store.current.errors, rt.store.current.errors
    initial = InitialData(rows=3, texts={{"catalog_id": ["a", "b", "c"], "pctr": ["0.25", "0.5", ""]}})
    ctx = await rt.execute("m", initial, RequestInfo(api="pointwise"))
    assert not ctx.failures, ctx.failures
    scores, valid = ctx.matrix.read("{module}_score", DataType.FP32)
    assert valid.tolist() == [True, True, False]
    assert scores[:2].tolist() == [0.5, 1.0]


def test_example_config_names_the_section() -> None:
    assert "{key}" in json.loads(EXAMPLE.read_text())["component_config"]
'''

EXAMPLE = """\
{{
  "dag_execution_config": {{"component_dependency": {{"{module}": ["feature_initializer"]}}}},
  "component_config": {{
    "{key}": [{{"component": "{module}", "input": "pctr", "output": "{module}_score", "weight": 2.0}}]
  }},
  "response_config": {{"features": ["catalog_id", "{module}_score"]}}
}}
"""

README = """\
# inferflow-{dist}

An Inferflow plugin: the `{key}` component type (`output = weight * input`, computed by a backend;
`LocalBackend` runs in process, replace it with a client of your service).

```bash
pip install -e '.[test]'                    # registers the entry point `{module}` (group `inferflow`)
pytest                                      # conformance tests + a DAG run through the entry point
inferflow validate examples/model.json      # the example model config that uses `{key}`
inferflow plugins                           # lists `{module}` and the `{key}` section
```

A model config uses it like a built-in section:

```json
"component_config": {{"{key}": [
  {{"component": "{module}", "input": "pctr", "output": "{module}_score", "weight": 2.0}}
]}}
```

See the core's docs/writing-a-plugin.md. Import only `inferflow_core.api` (tests may also use
`inferflow_core.testing` and `inferflow_core.runtime`).
"""


def core_range() -> str:
    """``>=X.Y,<X.(Y+1)`` around the installed core (0.x minors may break), ``>=X,<X+1`` from 1.0."""
    major, minor = (int(p) for p in md.version("inferflow-core").split(".")[:2])
    return f">={major}.{minor},<{major}.{minor + 1}" if major == 0 else f">={major}.{minor},<{major + 1}"


def files(name: str) -> dict[str, str]:
    """Relative path -> content of the package for plugin ``name``."""
    if not _NAME.fullmatch(name):
        raise UsageError(f"plugin name {name!r}: use lowercase letters, digits, '-' or '_' (e.g. 'rerank')")
    module = name.replace("-", "_")
    ctx = {
        "dist": name.replace("_", "-"),
        "module": module,
        "package": f"inferflow_{module}",
        "key": f"{module}_components",
        "cls": "".join(part.capitalize() for part in module.split("_")),
        "core_range": core_range(),
    }
    pkg = ctx["package"]
    return {
        "pyproject.toml": PYPROJECT.format(**ctx),
        "README.md": README.format(**ctx),
        f"{pkg}/__init__.py": INIT.format(**ctx),
        f"{pkg}/component.py": COMPONENT.format(**ctx),
        f"{pkg}/plugin.py": PLUGIN.format(**ctx),
        f"{pkg}/py.typed": "",
        f"tests/test_{module}.py": TEST.format(**ctx),
        "examples/model.json": EXAMPLE.format(**ctx),
    }


def write(name: str, parent: Path, force: bool = False) -> Path:
    content = files(name)
    dest = parent / f"inferflow-{name.replace('_', '-')}"
    if dest.exists() and any(dest.iterdir()) and not force:
        raise UsageError(f"{dest} exists and is not empty (--force writes into it)")
    for rel, text in content.items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return dest


def main(args: argparse.Namespace) -> int:
    dest = write(args.name, Path(args.dir), args.force)
    print(f"wrote {dest}/")
    for rel in sorted(files(args.name)):
        print(f"  {rel}")
    print(
        f"next:\n  pip install -e '{dest}[test]'\n  (cd {dest} && pytest)\n"
        f"  inferflow validate {dest}/examples/model.json"
    )
    return 0
