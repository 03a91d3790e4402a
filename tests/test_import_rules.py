"""Import rules that lint-imports cannot check: the benchmarks are scripts, not packages.

Benchmarks stand where a plugin author stands: from the core they import ``inferflow_core.api`` and
``inferflow_core.testing`` only. The core's layers and the plugin packages' imports are import-linter
contracts in pyproject.toml (``lint-imports``).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = ("inferflow_core.api", "inferflow_core.testing")

# Benchmarks written before the rule, and the core modules (below inferflow_core.) they still reach past
# the API for: the example harness, generated protos, config sources, the runtime. The list may only
# shrink: a new reach fails, and so does an entry that is no longer needed.
KNOWN: dict[str, set[str]] = {
    "benchmarks/core_overhead.py": {"components", "components.feature_init", "matrix", "plugins", "runtime"},
    "benchmarks/feast_triton/run.py": {"example", "runtime"},
    "benchmarks/http_vs_grpc.py": {"_proto", "client._result", "example"},
    "benchmarks/reliability_load.py": {"_proto", "config.sources"},
    "benchmarks/s1/direct_server.py": {"_proto", "wireformat"},
    "benchmarks/s1/loadgen.py": {"_proto"},
    "benchmarks/s1/remote_direct.py": {"example"},
    "benchmarks/s1/run.py": {"example"},
    "benchmarks/serving_overhead.py": {"_proto", "config.sources"},
    "benchmarks/tracing_cost.py": {"_proto", "config.sources", "example", "observability", "runtime"},
    "plugins/inferflow_logging/benchmarks/bench_served_logging.py": {"_proto", "example"},
    "plugins/inferflow_onfs/benchmarks/bench_key_index.py": {"example"},
    "plugins/inferflow_onfs/benchmarks/bench_s1_inprocess.py": {
        "_proto",
        "config.sources",
        "example",
        "runtime",
        "serving",
        "serving.service",
    },
}


def _core_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        else:
            continue
        found |= {n for n in names if n == "inferflow_core" or n.startswith("inferflow_core.")}
    return found


def _outside_api(path: Path) -> set[str]:
    return {m for m in _core_imports(path) if not any(m == a or m.startswith(a + ".") for a in ALLOWED)}


def test_benchmarks_import_only_the_api_and_the_testing_kit() -> None:
    files = sorted([*ROOT.glob("benchmarks/**/*.py"), *ROOT.glob("plugins/*/benchmarks/**/*.py")])
    assert files, "no benchmark found: the glob is wrong"
    reaches = {str(p.relative_to(ROOT)): got for p in files if (got := _outside_api(p))}
    assert reaches == {f: {f"inferflow_core.{m}" for m in mods} for f, mods in KNOWN.items()}


def test_the_rule_sees_every_import_form(tmp_path: Path) -> None:
    script = tmp_path / "bench.py"
    script.write_text(
        "import inferflow_core.runtime\n"
        "from inferflow_core.api import DataType\n"
        "from inferflow_core.testing.ports import pick_free_port\n"
        "def f():\n    from inferflow_core._proto import predict_pb2\n"
    )
    assert _outside_api(script) == {"inferflow_core.runtime", "inferflow_core._proto"}
