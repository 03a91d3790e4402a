"""``inferflow bench [--quick] [--json] [--no-check] [--modes M] [--ranker-batch N] [--paced RATE]``: the
standard benchmark, scenario S1 (the options are those of ``benchmarks/s1/run.py``).

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
    return int(module.main(runner_flags(args)))


def runner_flags(args: argparse.Namespace) -> list[str]:
    """The runner's command line for the options given to ``inferflow bench``."""
    flags = [
        f"--{name.replace('_', '-')}" for name in ("quick", "json", "no_check") if getattr(args, name, False)
    ]
    for name in ("modes", "ranker_batch", "paced"):
        value = getattr(args, name, None)
        if value is not None:
            flags += [f"--{name.replace('_', '-')}", str(value)]
    return flags
