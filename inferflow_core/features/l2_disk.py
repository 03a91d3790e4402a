"""The diskcache ``Disk`` of the L2 feature cache: bytes in, bytes out, never a pickle (see ``l2.py``).

Imported only when a plugin's L2 path (``INFERFLOW_ONFS_CACHE_L2_PATH``, ``INFERFLOW_FEAST_CACHE_L2_PATH``) is
set (diskcache is the plugins' ``disk-cache`` extra).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import diskcache
from diskcache.core import MODE_BINARY, MODE_RAW, UNKNOWN

log = logging.getLogger("inferflow.features.cache")


class BytesDisk(diskcache.Disk):
    """A diskcache ``Disk`` that never pickles or unpickles (see the module docstring)."""

    def put(self, key: Any) -> tuple[Any, bool]:
        if not isinstance(key, str):
            raise TypeError(f"L2 cache keys are str, got {type(key).__name__}")
        return super().put(key)

    def get(self, key: Any, raw: bool) -> Any:
        if not raw:
            raise ValueError("L2 cache: refusing to unpickle a key")
        return super().get(key, raw)

    def store(self, value: Any, read: bool, key: Any = UNKNOWN) -> Any:
        if read or not isinstance(value, bytes):
            raise TypeError(f"L2 cache values are bytes, got {type(value).__name__}")
        return super().store(value, read, key)

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if read:
            return None
        if mode == MODE_RAW and isinstance(value, bytes | memoryview):
            return bytes(value)
        if mode == MODE_BINARY and filename and self._inside(filename):
            return super().fetch(mode, filename, value, read)
        log.warning("L2 cache: ignoring an entry that is not raw bytes (mode %s)", mode)
        return None

    def _inside(self, filename: str) -> bool:
        root = os.path.realpath(self._directory)
        return os.path.realpath(os.path.join(root, filename)).startswith(root + os.sep)
