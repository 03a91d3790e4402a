"""Print the digest of what requirements/lock.txt is resolved from.

The inputs are requirements/lock.in and, for every first-party pyproject.toml it names, the build
requirements, the dependencies and the optional dependencies (not the version, description or tool
settings: those do not change the resolution). `make lock` writes the digest into the lock's header;
tests/test_lock.py fails when a pyproject's dependencies changed without `make lock`.
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


def first_party_projects(lock_in: str, root: Path = ROOT) -> list[Path]:
    """The directories of the ``-e <dir>[extras]`` lines of lock.in."""
    dirs = re.findall(r"^-e\s+(\S+?)(?:\[[^\]]*\])?\s*$", lock_in, flags=re.M)
    return [(root / d).resolve() for d in dirs]


def digest(root: Path = ROOT) -> str:
    root = root.resolve()
    text = (root / LOCK_IN.relative_to(ROOT)).read_text()
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


def recorded() -> str | None:
    """The digest written in the lock's header, if any."""
    if not LOCK.exists():
        return None
    for line in LOCK.read_text().splitlines():
        if line.startswith(HEADER):
            return line[len(HEADER) :].strip()
    return None


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        ok = recorded() == digest()
        print("requirements/lock.txt " + ("is up to date" if ok else "is stale: run `make lock`"))
        raise SystemExit(0 if ok else 1)
    print(digest())
