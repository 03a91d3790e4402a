"""``inferflow plugin new``: the generated package installs (pip install -e), passes its own tests and
``inferflow validate`` accepts its example; then it is uninstalled again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from inferflow_core import cli

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIP_CONSTRAINT": str(ROOT / "requirements/lock.txt")}
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, check=False, env=env)


@pytest.mark.integration
def test_generated_plugin_installs_and_passes_its_tests(tmp_path: Path) -> None:
    assert cli.main(["plugin", "new", "scaffold-probe", "--dir", str(tmp_path)]) == 0
    pkg = tmp_path / "inferflow-scaffold-probe"
    assert (pkg / "pyproject.toml").is_file()
    assert (pkg / "inferflow_scaffold_probe/component.py").is_file()
    pip = [sys.executable, "-m", "pip"]
    installed = _run([*pip, "install", "-q", "--no-deps", "-e", str(pkg)])
    assert installed.returncode == 0, installed.stdout + installed.stderr
    try:
        tests = _run([sys.executable, "-m", "pytest", "-q"], cwd=pkg)
        assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
        assert "6 passed" in tests.stdout
        valid = _run([str(BIN / "inferflow"), "validate", str(pkg / "examples/model.json")])
        assert valid.returncode == 0, valid.stdout + valid.stderr
        assert "1 valid, 0 invalid" in valid.stdout, valid.stdout + valid.stderr
        plugins = _run([str(BIN / "inferflow"), "plugins"])
        assert "scaffold_probe_components" in plugins.stdout
    finally:
        _run([*pip, "uninstall", "-y", "-q", "inferflow-scaffold-probe"])


def test_bad_names_and_existing_dirs_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["plugin", "new", "Bad Name", "--dir", str(tmp_path)]) == 2
    assert "lowercase" in capsys.readouterr().err
    assert cli.main(["plugin", "new", "x", "--dir", str(tmp_path)]) == 0
    assert cli.main(["plugin", "new", "x", "--dir", str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err
