"""The L2 feature cache's storage: ``diskcache`` holding **bytes only**, never pickles.

A shared cache directory is a place another process (or a person) can write to. diskcache's default
``Disk`` unpickles any value whose row says "pickle", which would run code planted there. Here:

* ``l2_disk.BytesDisk`` stores ``bytes`` values under ``str`` keys only, and returns a value only when
  its row is raw bytes (in the database or in a file inside the cache directory); any other row (pickled,
  text, a file outside the directory) reads as a miss. Keys are never unpickled either.
* :func:`encode_entry` / :func:`decode_entry` turn one cached entity into bytes and back: a magic prefix, a
  JSON description of its format (layout and block signature), the fixed-width row bytes and the string
  cells as JSON. Anything that does not parse is a miss.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from typing import Any

import numpy as np

from ..dtypes import DataType
from ..errors import PluginError
from .frame import Slot

log = logging.getLogger("inferflow.features.cache")

MAGIC = b"IFL2\x01"
_LEN = struct.Struct("<I")


def open_l2(path: str) -> Any:
    """The L2 ``diskcache.Cache`` at ``path`` with :class:`~.l2_disk.BytesDisk` (diskcache is optional)."""
    try:
        from .l2_disk import BytesDisk
    except ImportError:
        raise PluginError(
            "a feature cache L2 path is set but diskcache is not installed: install the "
            "feature-source plugin's disk-cache extra (pip install '<plugin>[disk-cache]')"
        ) from None
    import diskcache

    cache = diskcache.Cache(path, disk=BytesDisk)
    if os.stat(path).st_mode & 0o022:
        log.warning("L2 cache directory %s is writable by group or others; restrict it to this service", path)
    return cache


def encode_desc(layout: str, signature: tuple) -> bytes:
    """The format of a batch of entries (written once per batch, prefixed to every entry)."""
    blocks, slots = signature
    desc = {
        "layout": layout,
        "blocks": [[int(dt), list(shape), int(k)] for dt, shape, k in blocks],
        "slots": [[s.block, s.start, s.dim, s.vcol, s.vector] for s in slots],
    }
    return json.dumps(desc, separators=(",", ":")).encode()


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON: {type(value).__name__}")


def encode_entry(desc: bytes, row: bytes, cells: Any) -> bytes | None:
    """One entity as bytes; None when its cells cannot be written as JSON (then it is not cached in L2)."""
    try:
        cells_json = b"" if cells is None else json.dumps(cells, default=_plain).encode()
    except (TypeError, ValueError):
        return None
    return b"".join((MAGIC, _LEN.pack(len(desc)), desc, _LEN.pack(len(row)), row, cells_json))


def decode_entry(data: Any) -> tuple[str, tuple, bytes, tuple | None] | None:
    """``(layout, signature, row, cells)`` or None for anything that is not an entry we wrote."""
    try:
        if not isinstance(data, bytes) or not data.startswith(MAGIC):
            return None
        pos = len(MAGIC)
        (n,) = _LEN.unpack_from(data, pos)
        desc = json.loads(data[pos + 4 : pos + 4 + n])
        pos += 4 + n
        (m,) = _LEN.unpack_from(data, pos)
        row = data[pos + 4 : pos + 4 + m]
        if len(row) != m:
            return None
        rest = data[pos + 4 + m :]
        cells = json.loads(rest) if rest else None
        blocks = tuple(
            (DataType(int(dt)), tuple(int(x) for x in shape), int(k)) for dt, shape, k in desc["blocks"]
        )
        slots = tuple(Slot(int(b), int(s), int(d), int(v), bool(vec)) for b, s, d, v, vec in desc["slots"])
        if cells is not None:
            cells = tuple((value, bool(ok)) for value, ok in cells)  # one (value, valid) per string block
        return str(desc["layout"]), (blocks, slots), row, cells
    except (ValueError, TypeError, KeyError, struct.error):
        return None
