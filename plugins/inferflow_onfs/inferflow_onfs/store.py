"""The embedded feature store: one Parquet file (or folder of parts) per entity label, loaded once.

``<dir>/<label>.parquet`` holds the key columns (named as the ``keys_schema``) and one column per feature,
named ``<group>:<feature>``, typed by its Arrow type: float16/32/64, int8..64, uint8..64, bool, string/binary,
and (fixed-size or variable) lists of those for vectors. FP8 features are stored as uint8 (or lists of uint8)
with field metadata ``inferflow.dtype = FP8E4M3`` (Arrow has no float8). Null = missing cell.

Memory layout (why it is small): a label is read in record batches straight into one
:class:`~inferflow_core.api.features.FeatureFrame` — consecutive fixed-width features of one element type
share one contiguous 2-D numpy block (the S1 catalog's 64 FP32 + FP32Vector[32] are a single ``(n + 1, 96)``
float32 array), with one extra all-missing last row; the Arrow table is not kept. The key index
(:class:`KeyIndex`) is a hash directory in numpy arrays (a dict for composite keys). A component's feature
list is served from views of those blocks when its features are contiguous in the file (no copy), otherwise
from one copy made once. A lookup is one index pass over the keys and one ``take`` per block; an unknown
entity is the missing last row.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from inferflow_core.api import DataType, DataTypeError, codecs, features

_ARROW: dict[str, DataType] = {
    "halffloat": DataType.FP16, "float": DataType.FP32, "double": DataType.FP64,
    "int8": DataType.INT8, "int16": DataType.INT16, "int32": DataType.INT32, "int64": DataType.INT64,
    "uint8": DataType.UINT8, "uint16": DataType.UINT16, "uint32": DataType.UINT32, "uint64": DataType.UINT64,
    "bool": DataType.BOOL, "string": DataType.STRING, "large_string": DataType.STRING,
    "binary": DataType.STRING, "large_binary": DataType.STRING,
}  # fmt: skip
_FP8 = (DataType.FP8E4M3, DataType.FP8E5M2)
_BATCH_ROWS = 8_192  # rows decoded from Parquet at a time: bounds the transient Arrow memory of a load


class StoreError(LookupError):
    """A label or feature the store does not have (OnFS would reject the query)."""


def arrow_dtype(field: pa.Field) -> DataType:
    """The DataType of a feature column (field metadata ``inferflow.dtype`` wins)."""
    meta = field.metadata or {}
    if b"inferflow.dtype" in meta:
        return codecs.parse_dtype(meta[b"inferflow.dtype"].decode())
    typ = field.type
    if pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ):
        elem = _ARROW.get(str(typ.value_type))
        if elem is None:
            raise DataTypeError(f"column {field.name!r}: unsupported list element type {typ.value_type}")
        return elem.vector
    got = _ARROW.get(str(typ))
    if got is None:
        raise DataTypeError(f"column {field.name!r}: unsupported Arrow type {typ}")
    return got


def _filled(arr: pa.Array) -> np.ndarray:
    """Null-free numpy view of a primitive Arrow array (nulls -> 0 / False)."""
    if arr.null_count:
        zero = pa.scalar(False) if pa.types.is_boolean(arr.type) else pa.scalar(0, pa.int8()).cast(arr.type)
        arr = arr.fill_null(zero)
    return np.asarray(arr.to_numpy(zero_copy_only=False))


def _lengths(arr: pa.Array) -> np.ndarray:
    return np.asarray(pc.list_value_length(arr).fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)


def _mode(lens: np.ndarray) -> int:
    """Most common positive length (ties: the larger); 0 when there is none."""
    dims, counts = np.unique(lens[lens > 0], return_counts=True)
    return int(dims[len(counts) - 1 - int(np.argmax(counts[::-1]))]) if dims.size else 0


def _fixed_cells(arr: pa.Array, dt: DataType, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """One record batch of a fixed-width feature -> (``(rows, max(dim, 1))`` values, valid)."""
    n = len(arr)
    store = np.uint8 if dt.scalar in _FP8 else dt.numpy_dtype
    valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    if not dt.is_vector:
        raw = _filled(arr).astype(store, copy=False)
        return (raw.view(dt.numpy_dtype) if store is np.uint8 else raw).reshape(n, 1), valid
    if pa.types.is_fixed_size_list(arr.type) and arr.type.list_size == dim and not arr.null_count:
        flat = arr.values.slice(arr.offset * dim, n * dim)
        if not flat.null_count:  # the common case: the child buffer is the block, no copies on the way
            raw = _filled(flat).astype(store, copy=False).reshape(n, dim)
            return (raw.view(dt.numpy_dtype) if store is np.uint8 else raw), valid
    valid &= _lengths(arr) == dim
    values = np.zeros((n, dim), dtype=dt.numpy_dtype)
    if dim and valid.any():
        raw = _filled(pc.list_flatten(arr.filter(pa.array(valid)))).astype(store, copy=False)
        values[valid] = (raw.view(dt.numpy_dtype) if store is np.uint8 else raw).reshape(-1, dim)
    return values, valid


def _object_cells(arr: pa.Array, dt: DataType) -> np.ndarray:
    out = features.empty_objects(len(arr), dt.is_vector)
    for i, item in enumerate(arr.to_pylist()):
        if item is not None:
            out[i] = (
                [x.decode() if isinstance(x, bytes) else str(x) for x in item]
                if dt.is_vector
                else (item.decode("utf-8", "surrogateescape") if isinstance(item, bytes) else item)
            )
    return out


_GOLDEN = 0x9E3779B97F4A7C15  # odd 64-bit multiplier of the key hash (Fibonacci hashing)
_U64 = (1 << 64) - 1


class KeyIndex:
    """Entity key -> row. One key column: a *hash directory* over the keys' fixed-width text; composite
    keys, long keys (the fixed-width text would be larger than a dict), keys with NUL characters (numpy
    strips trailing NULs), pathological hash buckets and one hash for two different keys use a dict.
    Duplicate keys: the last row wins, as in a dict.

    The text: every key as ``words`` little-endian 64-bit words of its fixed-width numpy text (bytes when
    every key is ASCII, else UCS-4), wide enough that every key's last character slot is empty — a longer
    query, cut to that width, keeps a character there and matches no key. Its hash: ``w0 * G``, then
    ``(h ^ w) * G`` per further word (mod 2**64, ``G`` odd), whose top bits pick the bucket (at least as
    many buckets as keys). The directory: the entries ordered by bucket, each bucket's start offset, and per
    entry its row and text (its hash too when keys take more than one word). A lookup of many keys is
    about ten numpy calls whatever their count: the query texts as one fixed-width array (its words are
    the hash input, no per-key Python ``hash()``), one ``(keys, width)`` gather of every bucket's (at most
    ``width``) candidates compared with the query (the text itself when it is one word, else the hash),
    then the first equal candidate's full text compared with the query. Each key costs a few independent
    memory reads (numpy overlaps them across keys), where a ``searchsorted`` over the sorted keys costs ~17
    dependent ones and a dict lookup ~4 dependent ones. Memory: the S1 catalog (100k keys of at most 5
    characters, one word) ~17 bytes a key, 1.7 MB (a dict: ~12 MB). The hash does not depend on the
    process (unlike ``hash()`` of a ``str``)."""

    _MAX_WIDTH = 48  # longest key (characters) kept as fixed-width text
    _MAX_BUCKET = 16  # longer buckets (many duplicate keys): a dict instead
    _FEW = 4

    def __init__(self, parts: list[list[str]], n: int) -> None:
        self.n = n
        self.single = len(parts) == 1
        self.dict: dict | None = None
        first = parts[0]
        self.has_empty = self.single and "" in first  # a stored empty key (a row with no key is not it)
        if (
            self.single
            and n
            and max(map(len, first)) <= self._MAX_WIDTH
            and not any("\x00" in k for k in first)
            and self._directory(first)
        ):
            return
        self.dict = (
            dict(zip(first, range(n), strict=True))
            if self.single
            else dict(zip(zip(*parts, strict=True), range(n), strict=True))
        )

    def _directory(self, keys: list[str]) -> bool:
        """Build the hash directory; False when a bucket would be longer than ``_MAX_BUCKET`` or two
        different keys share a hash."""
        n = self.n
        self.ascii = all(map(str.isascii, keys))
        per_word = 8 if self.ascii else 2  # characters in a 64-bit word
        self.words = max(map(len, keys)) // per_word + 1  # room for at least one empty last character
        self.query_dtype = np.dtype(f"{'S' if self.ascii else 'U'}{self.words * per_word}")
        text = np.array(keys, dtype=self.query_dtype).view("<u8").reshape(n, self.words)
        hashes = self._hash(text)
        if self.words > 1:  # the candidates are compared by hash: two different keys must not share one
            by_hash = np.argsort(hashes, kind="stable")
            same = np.flatnonzero(hashes[by_hash[1:]] == hashes[by_hash[:-1]])  # neighbours, one hash
            if len(same) and (text[by_hash[same]] != text[by_hash[same + 1]]).any():
                return False
            del by_hash, same
        self.shift = 64 - max(1, (n - 1).bit_length())
        bucket = hashes >> np.uint64(self.shift)
        # bucket order; within a bucket the later row first, so a duplicate key finds its last row
        order = (n - 1) - np.argsort(bucket[::-1], kind="stable")
        starts = np.searchsorted(bucket[order], np.arange((1 << (64 - self.shift)) + 1, dtype=np.uint64))
        width = int(np.diff(starts).max())
        if width > self._MAX_BUCKET:
            return False
        self.width = width
        self.starts = starts.astype(np.int32 if n < 2**31 else np.int64)
        self.offsets = np.arange(width, dtype=self.starts.dtype)
        # ``width`` padding entries past the end for the candidate gather: all bits set, a text no key
        # has (its last character slot is not empty) and no query reaches (not ASCII / not a character)
        pad = np.full((width, self.words), _U64, dtype=np.uint64)
        self.text = np.concatenate([text[order], pad])
        del text
        # one-word keys compare their text with the candidates; longer keys their hash
        self.probe = self.text[:, 0] if self.words == 1 else np.concatenate([hashes[order], self._hash(pad)])
        del hashes
        self.rows_ = np.concatenate([order, [n]]).astype(self.starts.dtype)
        # numpy scalars of the lookup, made once
        self._golden, self._shift, self._miss = np.uint64(_GOLDEN), np.uint64(self.shift), np.intp(n)
        return True

    @staticmethod
    def _hash(text: np.ndarray) -> np.ndarray:
        """The 64-bit hash of each row of ``text`` (``(m, words)`` uint64), see the class docstring."""
        gold = np.uint64(_GOLDEN)
        h = text[:, 0] * gold
        for j in range(1, text.shape[1]):
            h ^= text[:, j]
            h *= gold
        return h

    def rows(self, keys: Sequence[tuple[str, ...]]) -> np.ndarray:
        """Row of each key (``self.n`` when unknown)."""
        if self.single:
            return self.text_rows([k[0] for k in keys])
        get, miss = self.dict.get, self.n  # type: ignore[union-attr]
        return np.fromiter(map(get, map(tuple, keys), repeat(miss)), dtype=np.intp, count=len(keys))

    def text_rows(self, texts: list[str], array: np.ndarray | None = None) -> np.ndarray:
        """Row of each key of a one-column index, given as the key texts (``self.n`` when unknown).
        ``array``: the same texts as an object array (a matrix column), converted in one C loop."""
        if self.dict is not None:
            get, miss = self.dict.get, self.n
            return np.fromiter(map(get, texts, repeat(miss)), dtype=np.intp, count=len(texts))
        if len(texts) <= self._FEW:  # e.g. the one user of a request: a loop beats ~10 numpy calls
            return self._few(texts)
        if "\x00" in "".join(texts):  # no stored key has one, and numpy would strip a trailing one
            return self._few(texts)
        try:
            fixed = (
                np.array(texts, dtype=self.query_dtype) if array is None else array.astype(self.query_dtype)
            )
            query = fixed.view("<u8")
        except UnicodeEncodeError:  # a non-ASCII query (an ASCII index: it matches no key)
            return self._few(texts)
        probe, shift = self.probe, self._shift
        if self.words == 1:  # the text is the candidate compared: one equal candidate is a hit
            first = self.starts[(query * self._golden) >> shift]
            at = first + (probe[first[:, None] + self.offsets] == query[:, None]).argmax(axis=1)
            return np.where(probe[at] == query, self.rows_[at], self._miss)
        query = query.reshape(len(texts), self.words)
        want = self._hash(query)
        first = self.starts[want >> shift]
        at = first + (probe[first[:, None] + self.offsets] == want[:, None]).argmax(axis=1)
        return np.where((self.text[at] == query).all(axis=1), self.rows_[at], self._miss)

    def text_row(self, text: str) -> int:
        """Row of one key of a one-column index (``self.n`` when unknown), with no numpy call."""
        if self.dict is not None:
            return int(self.dict.get(text, self.n))
        if "\x00" in text:
            return self.n
        try:
            raw = text.encode("ascii") if self.ascii else text.encode("utf-32-le", "surrogatepass")
        except UnicodeEncodeError:
            return self.n
        size = self.query_dtype.itemsize
        if len(raw) >= size:  # no empty last character: longer than every key
            return self.n
        # little-endian words of the text padded with NULs (a short or empty slice reads as zeros)
        if self.words == 1:
            want = int.from_bytes(raw, "little")
            bucket, words = ((want * _GOLDEN) & _U64) >> self.shift, [want]
        else:
            words = [int.from_bytes(raw[i : i + 8], "little") for i in range(0, size, 8)]
            want = (words[0] * _GOLDEN) & _U64
            for w in words[1:]:
                want = ((want ^ w) * _GOLDEN) & _U64
            bucket = want >> self.shift
        probe, text_ = self.probe, self.text
        for at in range(self.starts.item(bucket), self.starts.item(bucket + 1)):
            if probe.item(at) == want and (self.words == 1 or text_[at].tolist() == words):
                return int(self.rows_.item(at))
        return self.n

    def _few(self, texts: list[str]) -> np.ndarray:
        """``text_rows`` key by key (:meth:`text_row`)."""
        return np.fromiter(map(self.text_row, texts), dtype=np.intp, count=len(texts))


@dataclass
class LabelTable:
    """One entity label: key index, and every feature as a slot of one :class:`FeatureFrame` of
    ``rows + 1`` rows (the last row all missing)."""

    label: str
    keys_schema: tuple[str, ...]
    index: KeyIndex
    rows: int
    frame: features.FeatureFrame
    dtypes: dict[str, DataType]
    slots: dict[str, int]  # feature column -> slot in ``frame``

    def dtype(self, column: str) -> DataType:
        got = self.dtypes.get(column)
        if got is None:
            raise StoreError(f"entity {self.label!r} has no feature column {column!r}")
        return got

    def feature_column(self, column: str, dtype: DataType | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Values of ``column`` (optionally cast to ``dtype``) with the extra all-missing last row."""
        own = self.dtype(column)
        values, valid = self.frame.column(self.slots[column])
        if dtype is not None and dtype is not own:
            values = codecs.cast_array(values, own, dtype)
        return values, valid

    def positions(self, keys: Sequence[tuple[str, ...]]) -> np.ndarray:
        """Row of each key; unknown keys map to the all-missing last row."""
        return self.index.rows(keys)


def _parts(path: str) -> list[str]:
    """The Parquet file, or the part files of a folder (sorted; hidden and ``_`` files skipped)."""
    if not os.path.isdir(path):
        return [path]
    out = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        out += [os.path.join(root, f) for f in sorted(files) if not f.startswith((".", "_"))]
    return out


def _stream(files: list[pq.ParquetFile], column: str) -> Iterator[pa.Array]:
    """One column, in record batches, file after file. Reading one column at a time with small buffers keeps
    the transient Arrow memory of a load to a few MB (a whole-table read costs ~2x the data, kept as RSS)."""
    for pf in files:
        for batch in pf.iter_batches(batch_size=_BATCH_ROWS, columns=[column], use_threads=False):
            yield batch.column(0)


def _read(label: str, path: str, keys: tuple[str, ...] | None) -> LabelTable:
    """Read ``path`` column by column into one FeatureFrame (+ missing row) and a key index."""
    files = [pq.ParquetFile(p, pre_buffer=False, buffer_size=1 << 20) for p in _parts(path)]
    if not files:
        raise StoreError(f"no data for entity {label!r}: {path} holds no Parquet files")
    schema = files[0].schema_arrow
    names = schema.names
    keys = keys if keys is not None else tuple(c for c in names if ":" not in c)
    missing = [k for k in keys if k not in names]
    if missing or not keys:
        raise StoreError(f"entity {label!r} has no key column(s) {missing or 'at all'}")
    feats = [c for c in names if ":" in c]
    dtypes = {c: arrow_dtype(schema.field(c)) for c in feats}
    n = sum(pf.metadata.num_rows for pf in files)
    dims: dict[str, int] = {}
    for c in feats:
        dt, typ = dtypes[c], schema.field(c).type
        if not (dt.is_fixed_width and dt.is_vector):
            continue
        if pa.types.is_fixed_size_list(typ):
            dims[c] = typ.list_size
        else:  # variable lists: the most common length wins (others are missing)
            lens = [_lengths(arr) for arr in _stream(files, c)]
            dims[c] = _mode(np.concatenate(lens)) if lens else 0
    # block layout: consecutive fixed-width features of one element type share a block
    shapes: list[list] = []  # per block: [dtype, width, validity columns]
    slots: list[features.Slot] = []
    where: dict[str, tuple[int, int, int, int]] = {}  # column -> (block, start, width, vcol)
    for c in feats:
        dt = dtypes[c]
        if not dt.is_fixed_width:
            shapes.append([dt, 0, 1])
            where[c] = (len(shapes) - 1, 0, 0, 0)
            slots.append(features.Slot(len(shapes) - 1, 0, 0, 0, dt.is_vector))
            continue
        width = dims[c] if dt.is_vector else 1
        if not shapes or not shapes[-1][0].is_fixed_width or shapes[-1][0] is not dt.scalar:
            shapes.append([dt.scalar, 0, 0])
        b, (_, start, vcol) = len(shapes) - 1, shapes[-1]
        where[c] = (b, start, width, vcol)
        slots.append(features.Slot(b, start, dims[c] if dt.is_vector else 0, vcol, dt.is_vector))
        shapes[-1][1:] = [start + width, vcol + 1]
    blocks = [
        features.Block(dt, np.zeros((n + 1, width), dtype=dt.numpy_dtype), np.zeros((n + 1, k), dtype=bool))
        if dt.is_fixed_width
        else features.Block(dt, features.empty_objects(n + 1, dt.is_vector), np.zeros((n + 1, 1), dtype=bool))
        for dt, width, k in shapes
    ]
    key_parts = [[str(v) for arr in _stream(files, k) for v in arr.to_pylist()] for k in keys]
    # the index first: its build's temporary arrays are gone before the feature blocks' pages are written
    index = KeyIndex(key_parts, n)
    del key_parts
    for c in feats:
        dt = dtypes[c]
        b, start, width, vcol = where[c]
        block, row = blocks[b], 0
        for arr in _stream(files, c):
            m = len(arr)
            if not dt.is_fixed_width:
                block.values[row : row + m] = _object_cells(arr, dt)
                block.valid[row : row + m, 0] = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False))
            else:
                values, valid = _fixed_cells(arr, dt, dims.get(c, 0))
                block.values[row : row + m, start : start + width] = values
                block.valid[row : row + m, vcol] = valid
            row += m
    frame = features.FeatureFrame(n + 1, blocks, slots)
    _release_memory()
    return LabelTable(label, keys, index, n, frame, dtypes, {c: j for j, c in enumerate(feats)})


def _release_memory() -> None:
    """Hand the load's transient buffers back to the OS: Arrow's pool and glibc keep freed memory as RSS."""
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _select(table: LabelTable, columns: Sequence[tuple[str, DataType | None]]) -> features.FeatureFrame:
    """The frame of ``columns``: views of the label's blocks where the features are contiguous there and
    need no cast, otherwise a copy (blocks grouped as :meth:`FeatureFrame.from_columns` groups them)."""
    full = table.frame
    dtypes = [dt or table.dtype(name) for name, dt in columns]
    if any(d is not table.dtype(name) for d, (name, _) in zip(dtypes, columns, strict=True)):
        return _copy(table, columns, dtypes)
    blocks: list[features.Block] = []
    out: list[features.Slot] = []
    runs: list[list[int]] = []  # per output block: [source block, start, end, vcol start, vcol end]
    for name, _ in columns:
        slot = full.slots[table.slots[name]]
        src = full.blocks[slot.block]
        if not src.fixed:
            runs.append([slot.block, 0, 0, 0, 0])
            out.append(features.Slot(len(runs) - 1, 0, 0, 0, slot.vector))
            continue
        width = slot.dim if slot.vector else 1
        run = runs[-1] if runs else None
        if run and run[0] == slot.block and run[2] == slot.start and run[4] == slot.vcol:
            out.append(
                features.Slot(len(runs) - 1, slot.start - run[1], slot.dim, slot.vcol - run[3], slot.vector)
            )
            run[2], run[4] = slot.start + width, slot.vcol + 1
        elif run and full.blocks[run[0]].fixed and full.blocks[run[0]].dtype is src.dtype:
            return _copy(table, columns, dtypes)  # same type but not contiguous: one merged copy
        else:
            runs.append([slot.block, slot.start, slot.start + width, slot.vcol, slot.vcol + 1])
            out.append(features.Slot(len(runs) - 1, 0, slot.dim, 0, slot.vector))
    for b, start, end, v0, v1 in runs:
        src = full.blocks[b]
        if src.fixed:
            valid = src.valid[:, v0:v1]
            dense = bool(valid[:-1].all()) and not valid[-1].any()
            blocks.append(features.Block(src.dtype, src.values[:, start:end], valid, dense))
        else:
            blocks.append(src)
    return features.FeatureFrame(full.n, blocks, out)


def _copy(
    table: LabelTable, columns: Sequence[tuple[str, DataType | None]], dtypes: Sequence[DataType]
) -> features.FeatureFrame:
    cols = [table.feature_column(name, dt) for name, dt in columns]
    return features.FeatureFrame.from_columns(dtypes, cols)


class LocalStore:
    """All labels of one directory, each loaded on first use and kept for the life of the process."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._tables: dict[str, LabelTable] = {}
        self._prepared: dict[tuple, features.FeatureFrame] = {}
        self._lock = threading.Lock()

    def table(self, label: str, keys_schema: Sequence[str]) -> LabelTable:
        with self._lock:
            got = self._tables.get(label)
            if got is None:
                got = self._load(label, None)
                self._tables[label] = got
        if got.keys_schema != tuple(keys_schema):
            # a different key order: re-read with that key order (rare; cached under its own name)
            alt = f"{label}\x00{'|'.join(keys_schema)}"
            with self._lock:
                if alt not in self._tables:
                    self._tables[alt] = self._load(label, tuple(keys_schema))
                return self._tables[alt]
        return got

    def _load(self, label: str, keys: tuple[str, ...] | None) -> LabelTable:
        path = os.path.join(self.root, f"{label}.parquet")
        if not os.path.exists(path):
            raise StoreError(f"no data for entity {label!r}: {path} does not exist")
        return _read(label, path, keys)

    def prepared(
        self, label: str, keys_schema: Sequence[str], columns: Sequence[tuple[str, DataType | None]]
    ) -> features.FeatureFrame:
        """The frame (all rows + missing row) of ``columns`` = ``(group:feature, cast-to dtype or None)``."""
        key = (label, tuple(keys_schema), tuple(columns))
        got = self._prepared.get(key)
        if got is not None:
            return got
        table = self.table(label, keys_schema)
        frame = _select(table, columns)
        with self._lock:
            self._prepared[key] = frame
        return frame
