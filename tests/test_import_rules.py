"""Import rules that lint-imports cannot check: benchmarks and test directories are not packages.

Benchmarks stand where a plugin author or a client of the service stands: from the core they import
``inferflow_core.api``, ``inferflow_core.testing`` (the example, the wire stubs, in-process servers) and
the public client package ``inferflow_core.client``, and no private module (a name starting with ``_``)
under any of them. Costs inside the core are measured through those surfaces (``core_overhead.py`` times
the engine and the feature initializer through ``Runtime.execute``). Plugins' and examples' tests follow
the same rule. The core's layers and the plugin
packages' imports are import-linter contracts in pyproject.toml (``lint-imports``).

Test modules import no other test module (``tests.test_*``, a plugin's ``test_*``) and no conftest.py:
shared code lives in support modules (``tests/*_support.py``, ``tests/helpers.py``, a plugin's uniquely
named ``<plugin>_support.py``), shared fixtures in conftest.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = ("inferflow_core.api", "inferflow_core.testing", "inferflow_core.client")


def _core_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module == "inferflow_core" and not node.level:
            names = [f"inferflow_core.{alias.name}" for alias in node.names]  # from inferflow_core import x
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        else:
            continue
        found |= {n for n in names if n == "inferflow_core" or n.startswith("inferflow_core.")}
    return found


def _allowed(module: str) -> bool:
    public = not any(part.startswith("_") for part in module.split("."))
    return public and any(module == a or module.startswith(a + ".") for a in ALLOWED)


def _outside_api(path: Path) -> set[str]:
    return {m for m in _core_imports(path) if not _allowed(m)}


def test_benchmarks_import_only_the_api_the_testing_kit_and_the_client() -> None:
    files = sorted([*ROOT.glob("benchmarks/**/*.py"), *ROOT.glob("plugins/*/benchmarks/**/*.py")])
    assert len(files) >= 10, f"only {len(files)} benchmark scripts found: the glob is wrong"
    reaches = {str(p.relative_to(ROOT)): sorted(got) for p in files if (got := _outside_api(p))}
    assert reaches == {}, f"benchmarks importing core modules outside {', '.join(ALLOWED)}: {reaches}"


def test_plugin_and_example_tests_import_only_the_public_surfaces() -> None:
    """A plugin's tests stand where its code stands: the core's api, its testing kit (and the client)."""
    files = sorted([*ROOT.glob("plugins/*/tests/**/*.py"), *ROOT.glob("examples/*/tests/**/*.py")])
    assert len(files) >= 20, f"only {len(files)} plugin test files found: the glob is wrong"
    reaches = {str(p.relative_to(ROOT)): sorted(got) for p in files if (got := _outside_api(p))}
    assert reaches == {}, f"plugin tests importing core modules outside {', '.join(ALLOWED)}: {reaches}"


def test_the_rule_sees_every_import_form(tmp_path: Path) -> None:
    script = tmp_path / "bench.py"
    script.write_text(
        "import inferflow_core.runtime\n"
        "import inferflow_core\n"
        "from inferflow_core.api import DataType\n"
        "from inferflow_core import testing, matrix\n"
        "from inferflow_core.testing.protos import predict_pb2\n"
        "from inferflow_core.client import Table\n"
        "from inferflow_core.client._result import PointwiseResult\n"
        "from .local import helper\n"
        "def f():\n    from inferflow_core._proto import predict_pb2\n"
    )
    assert _outside_api(script) == {
        "inferflow_core",
        "inferflow_core.runtime",
        "inferflow_core.matrix",
        "inferflow_core.client._result",
        "inferflow_core._proto",
    }


def _test_imports(path: Path) -> set[str]:
    """Modules ``path`` imports that are test modules or conftest.py (any dotted part ``test_*``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = [module, *(f"{module}.{alias.name}".lstrip(".") for alias in node.names)]
        else:
            continue
        found |= {n for n in names if any(p.startswith("test_") or p == "conftest" for p in n.split("."))}
    return found


def test_test_modules_import_no_other_test_module() -> None:
    dirs = [ROOT / "tests", *ROOT.glob("plugins/*/tests"), *ROOT.glob("examples/*/tests")]
    files = sorted(p for d in dirs for p in d.rglob("*.py"))
    assert len(dirs) >= 5, f"only {len(dirs)} test dirs found: the glob is wrong"
    assert len(files) >= 100, f"only {len(files)} test files found: the glob is wrong"
    reaches = {str(p.relative_to(ROOT)): sorted(got) for p in files if (got := _test_imports(p))}
    assert reaches == {}, f"test code importing test modules (share through a support module): {reaches}"


def test_the_test_module_rule_sees_every_import_form(tmp_path: Path) -> None:
    module = tmp_path / "test_x.py"
    module.write_text(
        "import tests.test_serving\n"
        "from tests.test_metrics import MODEL\n"
        "from tests import test_client\n"
        "from test_cache import _build\n"
        "from tests.conftest import spans\n"
        "from tests.serving_support import TREE\n"
        "from onfs_support import model_json\n"
        "from inferflow_core.testing import make_runtime\n"
        "def f():\n    from tests.test_shadow import request\n"
    )
    assert _test_imports(module) == {
        "tests.test_serving",
        "tests.test_metrics",
        "tests.test_metrics.MODEL",
        "tests.test_client",
        "test_cache",
        "test_cache._build",
        "tests.conftest",
        "tests.conftest.spans",
        "tests.test_shadow",
        "tests.test_shadow.request",
    }
