"""``inferflow logs read``: directories, sidecars skipped, JSON lines / CSV / Parquet output, exit codes."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
from iflog_support import Served, all_types_model
from inferflow_logging import InferenceLogger, LoggingSettings

from inferflow_core.api import Metrics

CLI = [str(Path(sys.executable).parent / "inferflow"), "logs", "read"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=60, check=False, env={**os.environ}
    )


async def _write_logs(log_dir: Path) -> Path:
    settings = LoggingSettings(sink="file", log_dir=str(log_dir))  # type: ignore[call-arg]
    logger = InferenceLogger(settings, metrics=Metrics())
    await logger.start()
    served = Served(all_types_model(batch=3))
    logger.observe(await served.request(3, fmt="proto", tracking_id="trk"))
    await logger.stop(10)
    return log_dir


async def test_read_directory_sidecars_and_formats(tmp_path: Path) -> None:
    logs = await _write_logs(tmp_path / "logs")
    files = sorted(logs.rglob("*.binpb"))
    sidecars = sorted(logs.rglob("*.schema.json"))
    assert files
    assert sidecars

    out = _run(str(logs), "--json")  # a directory: every .binpb under it
    assert out.returncode == 0, out.stderr
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert [x["entity"] for x in lines] == ["t0", "t1", "t2"]

    out = _run(str(files[0]), str(sidecars[0]))  # a sidecar named by a glob is skipped, not a traceback
    assert out.returncode == 0
    assert len(out.stdout.splitlines()) == 3
    assert "skipping" in out.stderr
    assert "Traceback" not in out.stderr

    out = _run(str(logs), "--format", "csv", "--output", str(tmp_path / "logs.csv"))
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO((tmp_path / "logs.csv").read_text(), newline="")))
    assert [r["entity"] for r in rows] == ["t0", "t1", "t2"]
    assert rows[0]["f_fp32"] == lines[0]["features"]["f_fp32"]

    out = _run(str(logs), "--format", "parquet", "-o", str(tmp_path / "logs.parquet"))
    assert out.returncode == 0, out.stderr
    table = pq.read_table(tmp_path / "logs.parquet")
    assert table.column("entity").to_pylist() == ["t0", "t1", "t2"]
    assert table.column("f_int64").to_pylist()[0] == lines[0]["features"]["f_int64"]


def test_read_errors_are_one_line(tmp_path: Path) -> None:
    out = _run(str(tmp_path / "missing.binpb"))
    assert out.returncode == 1
    assert out.stderr.startswith("error:")
    assert "Traceback" not in out.stderr
    out = _run(str(tmp_path), "--format", "csv")
    assert out.returncode == 1
    assert "--output" in out.stderr
