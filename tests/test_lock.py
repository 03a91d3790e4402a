"""requirements/lock.txt is the one resolution every install uses: it must match the pyprojects."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_lock_matches_the_pyprojects() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "lock_inputs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_changed_dependency_makes_the_lock_stale(tmp_path: Path) -> None:
    """The digest covers the dependencies of every first-party pyproject, not only lock.in."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import lock_inputs
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    (tmp_path / "requirements").mkdir()
    lock_in = (ROOT / "requirements" / "lock.in").read_text()
    (tmp_path / "requirements" / "lock.in").write_text(lock_in)
    for project in lock_inputs.first_party_projects(lock_in):
        copy = tmp_path / project.relative_to(ROOT) / "pyproject.toml"
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text((project / "pyproject.toml").read_text())
    assert lock_inputs.digest(tmp_path) == lock_inputs.digest()
    numerix = tmp_path / "plugins" / "inferflow_numerix" / "pyproject.toml"
    text = numerix.read_text()
    numerix.write_text(text.replace("[project]", "[project]\n# a comment changes nothing\n", 1))
    assert lock_inputs.digest(tmp_path) == lock_inputs.digest()
    numerix.write_text(text.replace('"numpy>=1.26"', '"numpy>=1.27"', 1))
    assert lock_inputs.digest(tmp_path) != lock_inputs.digest()


def test_every_install_uses_the_lock() -> None:
    venv = (ROOT / "scripts" / "venv.sh").read_text()
    assert 'PIP_CONSTRAINT="$LOCK"' in venv
    assert '-c "$LOCK"' in venv
    assert "requirements/lock.txt" in (ROOT / "Dockerfile").read_text()
