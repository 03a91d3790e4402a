"""`inferflow demo` end to end: a real server subprocess with every backend embedded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.integration
def test_demo_runs_and_prints_results() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "inferflow_core.cli", "demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 0, f"demo failed ({proc.returncode}):\n{out[-4000:]}\n{proc.stderr[-4000:]}"
    for marker in ("PointWise", "PairWise", "SlateWise", "RetrieveModelScore", "p50 ms", "inference logs"):
        assert marker in out, f"{marker!r} missing from the demo output:\n{out[-4000:]}"
    # the PointWise table has 10 ranked rows with numeric scores
    table_rows = [line for line in out.splitlines() if line.strip().startswith("|") and "rank" not in line]
    assert len(table_rows) >= 10, out[-4000:]
    assert "no demo yet" not in out
    assert "stopped (exit code 0)" in out, out[-2000:]
