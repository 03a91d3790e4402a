"""``inferflow bench [--quick] [--json] [--no-check]``: the standard benchmark, scenario S1.

Exits 1 when a target the run reports is missed, unless ``--no-check``.

The scenario lives in ``benchmarks/s1/`` of the source tree (servers, load generator, direct baseline);
this module runs it.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

RUNNER = Path(__file__).resolve().parents[1] / "benchmarks" / "s1" / "run.py"


def main(args: argparse.Namespace) -> int:
    if not RUNNER.exists():
        print(f"{RUNNER} not found: `inferflow bench` runs from a source checkout")
        return 1
    spec = importlib.util.spec_from_file_location("inferflow_bench_s1", RUNNER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    flags = [
        f"--{name.replace('_', '-')}" for name in ("quick", "json", "no_check") if getattr(args, name, False)
    ]
    return int(module.main(flags))
