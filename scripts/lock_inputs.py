"""Print the digest of what requirements/lock.txt (or another lock) is resolved from.

The inputs are requirements/lock.in and, for every first-party pyproject.toml it names, the build
requirements, the dependencies and the optional dependencies (not the version, description or tool
settings: those do not change the resolution). `make lock` writes the digest into the lock's header;
tests/test_lock.py fails when a pyproject's dependencies changed without `make lock`.

The separate venvs have their own locks, checked the same way: requirements/feast-lock.in -> feast-lock.txt
(.venv-feast) and requirements/triton-lock.in -> triton-lock.txt (.venv-triton).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK_IN = ROOT / "requirements" / "lock.in"
LOCK = ROOT / "requirements" / "lock.txt"
HEADER = "# inputs-sha256: "
LOCKS = ("lock", "feast-lock", "triton-lock")  # requirements/<name>.in -> requirements/<name>.txt


def first_party_projects(lock_in: str, root: Path = ROOT) -> list[Path]:
    """The directories of the ``-e <dir>[extras]`` lines of lock.in."""
    dirs = re.findall(r"^-e\s+(\S+?)(?:\[[^\]]*\])?\s*$", lock_in, flags=re.M)
    return [(root / d).resolve() for d in dirs]


def digest(root: Path = ROOT, name: str = "lock") -> str:
    root = root.resolve()
    text = (root / "requirements" / f"{name}.in").read_text()
    parts: list[object] = [text]
    for project in first_party_projects(text, root):
        data = tomllib.loads((project / "pyproject.toml").read_text())
        parts.append(
            {
                "path": project.relative_to(root).as_posix(),
                "build": data.get("build-system", {}).get("requires", []),
                "dependencies": data["project"].get("dependencies", []),
                "extras": data["project"].get("optional-dependencies", {}),
            }
        )
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def recorded(name: str = "lock") -> str | None:
    """The digest written in the lock's header, if any."""
    lock = ROOT / "requirements" / f"{name}.txt"
    if not lock.exists():
        return None
    for line in lock.read_text().splitlines():
        if line.startswith(HEADER):
            return line[len(HEADER) :].strip()
    return None


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        stale = [name for name in LOCKS if recorded(name) != digest(name=name)]
        for name in LOCKS:
            state = "is stale: run `make lock`" if name in stale else "is up to date"
            print(f"requirements/{name}.txt {state}")
        raise SystemExit(1 if stale else 0)
    print(digest(name=sys.argv[1] if sys.argv[1:] else "lock"))
