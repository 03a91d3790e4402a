"""Config sources: where the config tree (keys relative to ``/config/``) comes from.

The default is a directory that mirrors the etcd tree: file ``<dir>/<key>.json`` holds the value of
etcd key ``/config/<key>``. The etcd source lives in :mod:`inferflow_core.config.etcd_source`.

Kubernetes ConfigMap volumes are read as the kubelet writes them: the real files live in a timestamped
directory (``..2026_12_01_15_00_00.123``), ``..data`` is a symlink to it, and every top-level entry is a
symlink through ``..data``. An update writes a new timestamped directory and renames a new ``..data``
symlink over the old one (atomic), so a reader must follow symlinks and must skip the ``..*`` entries
(otherwise every file shows up twice). The change stamp includes each file's resolved path, so the
swap is seen even when sizes and mtimes happen to match.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger("inferflow.config")

# The value of a key whose file exists but cannot be read: the store rejects that model (keeping its last
# good version), where dropping the key would delete it.
UNREADABLE = "\x00unreadable: "


class ConfigSource(abc.ABC):
    """Loads the config tree restricted to some key prefixes, and reports changes."""

    @abc.abstractmethod
    async def load(self) -> dict[str, str]:
        """The current tree: key (relative to ``/config/``) -> value text."""

    @abc.abstractmethod
    def watch(self) -> AsyncIterator[dict[str, str]]:
        """Yield the whole new tree after each change (never ends on its own; cancel it)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


@runtime_checkable
class ConfigSourceFactory(Protocol):
    """Registered through ``register_config_sources``; selected by ``name`` (``INFERFLOW_CONFIG_SOURCE``).
    ``create`` gets the service settings and the key prefixes to load and watch."""

    name: str

    def create(self, settings: Any, prefixes: Sequence[str]) -> ConfigSource: ...


def read_config_dir(root: str | os.PathLike[str], prefixes: Sequence[str] = ("",)) -> dict[str, str]:
    """Read every ``*.json`` file under ``root`` whose key starts with one of ``prefixes``."""
    base = Path(root)
    tree: dict[str, str] = {}
    if not base.is_dir():
        raise FileNotFoundError(f"config directory {str(base)!r} does not exist")
    for path in config_files(base):
        key = path.relative_to(base).with_suffix("").as_posix()
        if any(key.startswith(p) for p in prefixes):
            try:
                tree[key] = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                log.error("cannot read config file %s: %s", path, exc)
                tree[key] = f"{UNREADABLE}{type(exc).__name__}: {exc}"
    return tree


def config_files(base: Path) -> list[Path]:
    """Every ``*.json`` file under ``base``, following symlinked directories (kubelet's ``..data``
    layout) but skipping hidden ``..*`` entries and directory loops; sorted."""
    out: list[Path] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(base, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a symlink loop or a second link to the same directory
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = [d for d in dirnames if not d.startswith("..")]
        out.extend(Path(dirpath, f) for f in filenames if f.endswith(".json") and not f.startswith(".."))
    return sorted(out)


def write_config_dir(root: str | os.PathLike[str], tree: dict[str, str]) -> None:
    """Write a tree as files (used by tests and ``inferflow demo``)."""
    base = Path(root)
    for key, value in tree.items():
        path = base / f"{key}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(value, encoding="utf-8")
        tmp.replace(path)


class DirectorySource(ConfigSource):
    """A config directory, polled for changes (mtime + size of every file) every ``interval`` s."""

    def __init__(self, root: str | os.PathLike[str], prefixes: Sequence[str], interval: float = 0.25) -> None:
        self.root = Path(root)
        self.prefixes = tuple(prefixes)
        self.interval = interval

    async def load(self) -> dict[str, str]:
        # remember what this load saw, so a watch started later still reports a change made in between
        self._loaded_stamp = await asyncio.to_thread(self._stamp)
        return await asyncio.to_thread(read_config_dir, self.root, self.prefixes)

    def _stamp(self) -> tuple[tuple[str, str, int, int], ...]:
        out = []
        if not self.root.is_dir():
            return ()
        for path in config_files(self.root):
            try:
                st = path.stat()  # follows the symlink: the file behind ``..data``
                real = os.path.realpath(path)
            except OSError:
                continue
            out.append((str(path), real, st.st_mtime_ns, st.st_size))
        return tuple(out)

    async def watch(self) -> AsyncIterator[dict[str, str]]:
        last = getattr(self, "_loaded_stamp", None) or await asyncio.to_thread(self._stamp)
        while True:
            await asyncio.sleep(self.interval)
            stamp = await asyncio.to_thread(self._stamp)
            if stamp != last:
                last = stamp
                yield await self.load()


class DirectorySourceFactory:
    """Registered as config source ``directory`` (the default)."""

    name = "directory"

    def create(self, settings: object, prefixes: Sequence[str]) -> ConfigSource:
        root = getattr(settings, "config_dir", None)
        if not root:
            raise ValueError("the directory config source needs INFERFLOW_CONFIG_DIR (or --config-dir)")
        return DirectorySource(root, prefixes)
