"""Fast paths for the OnFS ``Row`` wire format when every cell of a row is a full fixed-width value.

A ``Row`` is ``keys`` (field 1, strings) then ``columns`` (field 2, bytes), in field order (what Go's and our
serializers write). When every feature is fixed width and present, the columns part of every row has the same
shape: for feature ``j`` the tag ``0x12``, ``varint(w_j)`` and ``w_j`` bytes. :class:`RowTemplate` holds that
shape once: the server writes the columns of ``n`` rows with one numpy scatter, and the client checks a whole
response against the rows it expects (row tags, lengths and keys in one bytes comparison, every cell header in
one masked numpy comparison) and copies the values of all rows with one strided copy per run of equal cells —
no per-cell Python, no protobuf row objects.
Anything else (missing cells, strings, other widths, rows in another order) takes the general path.

:func:`encode_keys` serializes a batch's keys once, for the query and for the check of the answer. When
a batch has at least :data:`FAST_MIN` keys and every key is one ASCII column shorter than :data:`SHORT_KEY`
characters (every varint of a key's fields then fits one byte), the query body is one ``str.join`` of
table-looked-up field heads and key strings, the rows' heads are checked with one gather and one bytes
comparison, and the rows' columns are one fancy index of a sliding-window view: the per-key steps are C-level
``map``s, no Python bytecode per key. Other batches serialize key by key.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from itertools import chain

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


SHORT_KEY = 126  # a key of fewer bytes has one-byte varints in ``Keys`` (its length) and in ``Query.keys``
FAST_MIN = 16  # batches of fewer keys serialize key by key (cheaper than the fixed cost of the batch path)
# ``Query.keys`` field of a one-column key of ``m`` bytes: tag, length, then ``Keys.cols`` tag and length.
# Code points below 128 (m + 2 <= 127): encoding the joined string as ASCII writes exactly these bytes.
_QUERY_HEADS = [f"\x22{chr(m + 2)}\x0a{chr(m)}" for m in range(SHORT_KEY)]


class Keys:
    """One batch's keys, serialized once: ``body`` is their ``Query.keys`` fields (append it to the query
    template). ``short`` is the key strings when the batch was written by the batch path (every key one
    ASCII column shorter than :data:`SHORT_KEY`), else None and ``kbs`` holds each key's ``Keys`` message."""

    __slots__ = ("body", "kbs", "n", "short")

    def __init__(self, n: int, body: bytes, short: list[str] | None, kbs: list[bytes] | None) -> None:
        self.n, self.body, self.short, self.kbs = n, body, short, kbs


def encode_keys(batch: Sequence[Sequence[str]], min_fast: int = FAST_MIN) -> Keys:
    """Serialize ``batch``; byte-identical to ``Query(keys=[Keys(cols=k) for k in batch])`` without the
    header fields. Batches of at least ``min_fast`` short ASCII one-column keys take the batch path."""
    n = len(batch)
    if n >= min_fast:
        flat = list(chain.from_iterable(batch))
        # as many strings as keys and no empty key: every key has exactly one column
        if len(flat) == n and all(batch):
            try:  # a head per key length: a key of SHORT_KEY characters or more has none (IndexError)
                text = "".join(map(operator.add, map(_QUERY_HEADS.__getitem__, map(len, flat)), flat))
            except (IndexError, TypeError):  # too long, or not a string: key by key (which raises for these)
                pass
            else:
                if text.isascii():  # the heads are ASCII: so are the keys, and their UTF-8 is the text
                    return Keys(n, text.encode("ascii"), flat, None)
    kbs = [key_bytes(k) for k in batch]
    return Keys(n, b"".join([b"\x22" + varint(len(kb)) + kb for kb in kbs]), None, kbs)


class RowTemplate:
    """The columns part of a complete row for ``dtypes`` with cell widths ``widths`` (bytes)."""

    def __init__(self, dtypes: Sequence[DataType], widths: Sequence[int]) -> None:
        self.dtypes, self.widths = tuple(dtypes), tuple(int(w) for w in widths)
        template = bytearray()
        data_pos: list[np.ndarray] = []
        value_at: list[int] = []  # first value byte of each cell
        for w in self.widths:
            template += b"\x12" + varint(w)
            value_at.append(len(template))
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
        # per block, runs of consecutive cells of one width (equal cells lie at a constant distance, their
        # width plus their header): (void dtype of a cell, first value byte in the columns, cells, distance
        # between cells, first byte in the block); each run is one strided copy of all rows
        self.runs: list[list[tuple[np.dtype, int, int, int, int]]] = []
        first = 0
        for _elem, _start, _end, k in self.blocks:
            runs: list[tuple[np.dtype, int, int, int, int]] = []
            dst = 0
            for w, at in zip(self.widths[first : first + k], value_at[first : first + k], strict=True):
                if runs and runs[-1][0].itemsize == w:
                    cell, a0, count, step, d0 = runs[-1]
                    runs[-1] = (cell, a0, count + 1, step, d0)
                else:
                    runs.append((np.dtype(f"V{w}"), at, 1, w + 1 + len(varint(w)), dst))
                dst += w
            self.runs.append(runs)
            first += k
        # row heads of one-column keys of m < SHORT_KEY bytes, as latin-1 text (one code point per byte)
        self._key_heads = [
            (_ROW_TAG + varint(m + 2 + self.size) + b"\x0a" + bytes((m,))).decode("latin-1")
            for m in range(SHORT_KEY)
        ]
        self._key_head_lens = np.array([len(h) for h in self._key_heads], dtype=np.intp)

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
    def decode(self, region: bytes | memoryview, keys: Keys) -> features.FeatureFrame | None:
        """The frame of ``keys`` when ``region`` (the serialized rows) is exactly their rows, in order, with
        complete cells of the template's widths; None otherwise (use the general path).

        Checked byte for byte: every row's tag, length and keys (one bytes comparison), and every cell
        header (one masked numpy comparison over the ``(n, size)`` columns matrix)."""
        if not keys.n:
            return None
        if keys.short is not None:
            return self._decode_short(region, keys.short)
        assert keys.kbs is not None
        n, size = keys.n, self.size
        heads = [_ROW_TAG + varint(len(kb) + size) + kb for kb in keys.kbs]
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
        return self._frame(cols)

    def _decode_short(self, region: bytes | memoryview, short: list[str]) -> features.FeatureFrame | None:
        """:meth:`decode` of one-column ASCII keys shorter than :data:`SHORT_KEY`: the expected row heads
        are one ``str.join`` (a head per key length, from a table), compared with the region's head bytes
        in one gather; the columns of all rows are one fancy index of a sliding-window view."""
        n, size = len(short), self.size
        key_lens = np.fromiter(map(len, short), dtype=np.intp, count=n)
        heads = self._key_head_lens[key_lens] + key_lens
        ends = np.cumsum(heads + size)
        total = int(ends[-1])
        if len(region) != total:
            return None
        expect = "".join(map(operator.add, map(self._key_heads.__getitem__, map(len, short)), short))
        buf = np.frombuffer(region, dtype=np.uint8)
        # the region without its columns is the heads, back to back
        at = np.arange(len(expect)) + np.repeat(np.arange(0, n * size, size), heads)
        if buf[at].tobytes() != expect.encode("latin-1"):
            return None
        windows = np.ndarray((total - size + 1, size), dtype=np.uint8, buffer=region, strides=(1, 1))
        return self._frame(windows[ends - size])

    def _frame(self, cols: np.ndarray) -> features.FeatureFrame | None:
        """The frame of an ``(n, size)`` columns matrix, None when a cell header differs from the template."""
        if ((cols ^ self._head) & self._header_mask).any():
            return None
        n, size = cols.shape
        blocks = []
        for (elem, start, end, k), runs in zip(self.blocks, self.runs, strict=True):
            if len(runs) == 1:  # the block is one run: its copy is the block
                cell, at, count, step, _dst = runs[0]
                cells = np.ndarray((n, count), dtype=cell, buffer=cols, offset=at, strides=(size, step))
                raw = cells.copy().view(np.uint8)
            else:
                raw = np.empty((n, end - start), dtype=np.uint8)
                for cell, at, count, step, dst in runs:
                    out = raw[:, dst : dst + count * cell.itemsize].view(cell)
                    out[...] = np.ndarray(
                        (n, count), dtype=cell, buffer=cols, offset=at, strides=(size, step)
                    )
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
