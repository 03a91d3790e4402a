"""Fast paths for the OnFS ``Row`` wire format when every cell of a row is a full fixed-width value.

A ``Row`` is ``keys`` (field 1, strings) then ``columns`` (field 2, bytes), in field order (what Go's and our
serializers write). When every feature is fixed width and present, the columns part of every row has the same
shape: for feature ``j`` the tag ``0x12``, ``varint(w_j)`` and ``w_j`` bytes. :class:`RowTemplate` holds that
shape once: the server writes the columns of ``n`` rows with one numpy scatter, and the client checks a whole
response against the rows it expects (row tags, lengths and keys in one bytes comparison, every cell header in
one masked numpy comparison) and takes the values of all rows with one ``np.take`` — no per-cell Python, no
protobuf row objects.
Anything else (missing cells, strings, other widths, rows in another order) takes the general path.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from inferflow_core.api import DataType, features

_ROW_TAG = b"\x22"  # Result.rows: field 4, length-delimited


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if not value:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


_SMALL = [_varint(i) for i in range(1 << 14)]  # lengths of keys and rows: a table lookup, not a loop


def varint(value: int) -> bytes:
    return _SMALL[value] if value < 16384 else _varint(value)


def key_bytes(key: Sequence[str]) -> bytes:
    """``Row.keys`` / ``Keys.cols`` of one key, serialized."""
    if len(key) == 1:
        part = key[0].encode()
        return b"\x0a" + varint(len(part)) + part
    parts = [k.encode() for k in key]
    return b"".join(b"\x0a" + varint(len(p)) + p for p in parts)


class RowTemplate:
    """The columns part of a complete row for ``dtypes`` with cell widths ``widths`` (bytes)."""

    def __init__(self, dtypes: Sequence[DataType], widths: Sequence[int]) -> None:
        self.dtypes, self.widths = tuple(dtypes), tuple(int(w) for w in widths)
        template = bytearray()
        data_pos: list[np.ndarray] = []
        for w in self.widths:
            template += b"\x12" + varint(w)
            data_pos.append(np.arange(len(template), len(template) + w))
            template += bytes(w)
        self.template = bytes(template)
        self.size = len(template)
        self.data_pos = np.concatenate(data_pos) if data_pos else np.zeros(0, dtype=np.intp)
        self._head = np.frombuffer(self.template, dtype=np.uint8)
        self._header_mask = np.full(self.size, 0xFF, dtype=np.uint8)  # 0 where values go
        self._header_mask[self.data_pos] = 0
        # blocks: consecutive features of one element type, as FeatureFrame.from_columns groups them
        self.blocks: list[tuple[DataType, int, int, int]] = []  # (element type, byte start, byte end, k)
        slots: list[features.Slot] = []
        offset = 0
        for dt, w in zip(self.dtypes, self.widths, strict=True):
            elem = dt.scalar
            if not self.blocks or self.blocks[-1][0] is not elem:
                self.blocks.append((elem, offset, offset, 0))
            b_elem, b_start, _b_end, k = self.blocks[-1]
            dim = w // dt.itemsize
            slots.append(
                features.Slot(len(self.blocks) - 1, (offset - b_start) // dt.itemsize,
                              dim if dt.is_vector else 0, k, dt.is_vector)
            )  # fmt: skip
            offset += w
            self.blocks[-1] = (b_elem, b_start, offset, k + 1)
        self.slots = tuple(slots)

    @staticmethod
    def usable(dtypes: Sequence[DataType], widths: Sequence[int]) -> bool:
        return layout_info(tuple(dtypes))[0] and all(w > 0 for w in widths)

    # ---------------------------------------------------------------------------- server side
    def encode(self, raw: np.ndarray) -> np.ndarray:
        """``(n, data bytes)`` uint8 values in feature order -> ``(n, size)`` serialized columns."""
        out = np.empty((raw.shape[0], self.size), dtype=np.uint8)
        out[:] = self._head
        out[:, self.data_pos] = raw
        return out

    # ---------------------------------------------------------------------------- client side
    def decode(self, region: bytes | memoryview, keys: Sequence[bytes]) -> features.FeatureFrame | None:
        """The frame of the serialized ``keys`` when ``region`` (the serialized rows) is exactly their rows,
        in order, with complete cells of the template's widths; None otherwise (use the general path).

        Checked byte for byte: every row's tag, length and keys (one bytes comparison), and every cell
        header (one masked numpy comparison over the ``(n, size)`` columns matrix)."""
        n, size = len(keys), self.size
        if not n:
            return None
        heads = [_ROW_TAG + varint(len(kb) + size) + kb for kb in keys]
        lens = np.fromiter(map(len, heads), dtype=np.intp, count=n)
        ends = np.cumsum(lens + size)
        if len(region) != int(ends[-1]):
            return None
        starts = (ends - size).tolist()
        if b"".join([region[a - len(h) : a] for a, h in zip(starts, heads, strict=True)]) != b"".join(heads):
            return None
        cols = np.frombuffer(b"".join([region[a : a + size] for a in starts]), dtype=np.uint8).reshape(
            n, size
        )
        if ((cols ^ self._head) & self._header_mask).any():
            return None
        data = np.take(cols, self.data_pos, axis=1)
        blocks = []
        for elem, start, end, k in self.blocks:
            raw = data if start == 0 and end == data.shape[1] else np.ascontiguousarray(data[:, start:end])
            blocks.append(
                features.Block(
                    elem,
                    features.from_raw(raw.view(features.raw_dtype(elem)), elem),
                    np.ones((n, k), dtype=bool),
                )
            )
        return features.FeatureFrame(n, blocks, self.slots)


@functools.lru_cache(maxsize=1024)
def layout_info(dtypes: tuple[DataType, ...]) -> tuple[bool, tuple[int, ...]]:
    """``(all fixed width, element sizes)`` of a feature list — computed once, not per request."""
    fixed = all(dt.is_fixed_width for dt in dtypes)
    return fixed, tuple(dt.itemsize if dt.is_fixed_width else 0 for dt in dtypes)


def cell_widths(dtypes: tuple[DataType, ...], slots: Sequence[features.Slot]) -> list[int]:
    """Byte width of every feature's cell in a frame with ``slots`` (all fixed width)."""
    sizes = layout_info(dtypes)[1]
    return [size * (slot.dim if slot.vector else 1) for size, slot in zip(sizes, slots, strict=True)]


def rows_region(raw: bytes) -> int | None:
    """Offset of the first ``rows`` field of a serialized ``Result`` when the fields before it are the
    header fields 1-3 (length-delimited) and everything from there on can only be rows; else None."""
    pos, end = 0, len(raw)
    while pos < end:
        tag = raw[pos]
        if tag == 0x22:
            return pos
        if tag not in (0x0A, 0x12, 0x1A):
            return None
        pos += 1
        length = shift = 0
        while True:
            if pos >= end:
                return None
            byte = raw[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
        pos += length
    return end if pos == end else None
