"""The docs stand on their own: citations point into docs/go-compatibility.md, links resolve in the repo.

Checked over every tracked ``.py`` and ``.md`` file:

* no bare "reference N.N" citation (cite "go-compatibility §N.N" instead), and every go-compatibility
  section cited exists as a heading of docs/go-compatibility.md;
* the Go implementation is called "Go Inferflow", never by its old nickname;
* every relative ``.md`` path (a Markdown link, or a path such as ``docs/configuration.md`` in a
  comment) exists.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMPAT = ROOT / "docs" / "go-compatibility.md"

_BARE_CITATION = re.compile(r"\breference \d")
_NICKNAME = re.compile(r"\bthe " + "anc" + r"hor\b", re.IGNORECASE)  # split so this file passes itself
_COMPAT_CITATION = re.compile(r"go-compatibility(?:\.md)? §(\d+)(?:\.(\d+))?")
_MD_LINK = re.compile(r"\]\(([^)\s#]+\.md)(?:#[^)]*)?\)")
_MD_PATH = re.compile(r"(?<![\w/.:-])((?:\.\./|[\w-]+/)*[\w.-]+\.md)\b")


def _tracked() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "*.py", "*.md"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / line for line in out.splitlines() if line and (ROOT / line).is_file()]


def _sections() -> set[str]:
    found: set[str] = set()
    for line in COMPAT.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            for major, minor in re.findall(r"\b(\d+)\.(\d+)?", line):
                found.add(major)
                if minor:
                    found.add(f"{major}.{minor}")
    return found


def _link_exists(path: Path, target: str) -> bool:
    """Relative to the citing file, one of its parent directories or docs/."""
    bases = [*path.parents[: len(path.relative_to(ROOT).parts)], ROOT / "docs"]
    return any((base / target).exists() for base in bases)


def test_no_bare_reference_citation_and_no_nickname() -> None:
    problems = []
    for path in _tracked():
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if _BARE_CITATION.search(line):
                problems.append(f"{path.relative_to(ROOT)}:{n}: cite go-compatibility §N.N: {line.strip()}")
            if _NICKNAME.search(line):
                problems.append(f"{path.relative_to(ROOT)}:{n}: say 'Go Inferflow': {line.strip()}")
    assert not problems, "\n".join(problems)


def test_go_compatibility_citations_name_existing_sections() -> None:
    sections = _sections()
    assert {"1.2", "4.4", "7.3", "10"} <= sections
    problems = []
    for path in _tracked():
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for major, minor in _COMPAT_CITATION.findall(line):
                cited = f"{major}.{minor}" if minor else major
                if cited not in sections:
                    problems.append(
                        f"{path.relative_to(ROOT)}:{n}: no section {cited} in go-compatibility.md"
                    )
    assert not problems, "\n".join(problems)


def test_relative_md_paths_exist() -> None:
    problems = []
    for path in _tracked():
        text = path.read_text(encoding="utf-8", errors="replace")
        targets = set(_MD_LINK.findall(text)) | set(_MD_PATH.findall(text))
        for target in sorted(targets):
            if "://" in target or target.startswith("/"):
                continue
            if not _link_exists(path, target):
                problems.append(f"{path.relative_to(ROOT)}: {target} is not in the repo")
    assert not problems, "\n".join(problems)
