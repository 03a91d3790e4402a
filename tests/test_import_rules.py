"""Import rules that lint-imports cannot check: the benchmarks are scripts, not packages.

Benchmarks stand where a plugin author or a client of the service stands: from the core they import
``inferflow_core.api``, ``inferflow_core.testing`` (the example, the wire stubs, in-process servers) and
the public client package ``inferflow_core.client``, and no private module (a name starting with ``_``)
under any of them. Costs inside the core are measured through those surfaces (``core_overhead.py`` times
the engine and the feature initializer through ``Runtime.execute``). The core's layers and the plugin
packages' imports are import-linter contracts in pyproject.toml (``lint-imports``).
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
