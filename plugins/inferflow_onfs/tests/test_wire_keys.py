"""The batch paths of the OnFS client's wire code against the key-by-key paths, on random batches.

``encode_keys`` must write exactly the bytes protobuf writes for ``Query.keys``, whichever path it takes, and
``RowTemplate.decode`` must accept and reject exactly the same regions through its batch path (short ASCII
one-column keys) as through its key-by-key path: every byte of a valid region corrupted in turn, truncated
and extended regions, and regions of other keys."""

from __future__ import annotations

import random
import sys

import numpy as np
import pytest
from inferflow_onfs import wire
from inferflow_onfs._proto import retrieve_pb2 as pb
from inferflow_onfs.server import encode_rows

from inferflow_core.api import DataType, features

BATCH, KEY_BY_KEY = 1, sys.maxsize  # min_fast values forcing one path or the other
FIXED = [d for d in DataType if d.is_fixed_width]


def _ascii(rng: random.Random, length: int) -> str:
    return "".join(chr(rng.randrange(128)) for _ in range(length))


def _key_column(rng: random.Random) -> str:
    kind = rng.randrange(8)
    if kind == 0:  # the hand-over lengths: 125 bytes is the last of the batch path
        return _ascii(rng, rng.choice([124, 125, 126, 127, 128, 129, 300]))
    if kind == 1:  # non-ASCII: UTF-8 longer than the string
        return _ascii(rng, rng.randrange(4)) + rng.choice(["é", "日本", "\U0001f600", "\x80"])
    if kind == 2:
        return ""
    return _ascii(rng, rng.randrange(12))


def _protobuf(batch: list[tuple[str, ...]]) -> bytes:
    return pb.Query(keys=[pb.Keys(cols=list(k)) for k in batch]).SerializeToString()


def _is_short(batch: list[tuple[str, ...]]) -> bool:
    return bool(batch) and all(len(k) == 1 and k[0].isascii() and len(k[0]) < wire.SHORT_KEY for k in batch)


def test_encode_keys_writes_the_protobuf_bytes_on_either_path() -> None:
    rng = random.Random(16)
    paths = {True: 0, False: 0}
    for trial in range(400):
        n = rng.randrange(0, 40)
        mode = trial % 4
        if mode == 0:  # all short ASCII: the batch path
            batch = [(_ascii(rng, rng.randrange(0, wire.SHORT_KEY)),) for _ in range(n)]
        elif mode == 1:  # mostly short ASCII, one key of another kind somewhere
            batch = [(_ascii(rng, rng.randrange(8)),) for _ in range(n)]
            if n:
                batch[rng.randrange(n)] = (_key_column(rng),)
        elif mode == 2:  # one to three columns, or none
            width = rng.randrange(4)
            batch = [tuple(_key_column(rng) for _ in range(width)) for _ in range(n)]
        else:  # columns per key differ within the batch (same number of strings as keys)
            batch = [(_key_column(rng),) for _ in range(n)]
            if n >= 2:
                batch[0], batch[1] = (), (batch[1][0], "x")
        want = _protobuf(batch)
        fast, slow = wire.encode_keys(batch, BATCH), wire.encode_keys(batch, KEY_BY_KEY)
        assert fast.body == want, batch
        assert slow.body == want, batch
        assert fast.n == slow.n == n
        short = _is_short(batch)
        assert (fast.short is not None) == short, batch
        assert slow.short is None
        paths[short] += 1
    assert min(paths.values()) > 50, paths  # both paths were exercised


def test_encode_keys_takes_the_batch_path_from_fast_min() -> None:
    small = [(str(i),) for i in range(wire.FAST_MIN - 1)]
    assert wire.encode_keys(small).short is None
    assert wire.encode_keys([*small, ("x",)]).short is not None
    with pytest.raises(AttributeError):  # not a string: the key-by-key path's error, as before
        wire.encode_keys([(str(i),) for i in range(9)] + [(7,)])  # type: ignore[list-item]


def _columns(rng: np.random.Generator, dtypes: tuple[DataType, ...], dims: list[int], n: int):  # type: ignore[no-untyped-def]
    cols = []
    for dt, dim in zip(dtypes, dims, strict=True):
        shape = (n, dim) if dt.is_vector else (n,)
        width = dt.itemsize * (dim if dt.is_vector else 1)
        raw = rng.integers(0, 256, (n, width), dtype=np.uint8)
        if dt.scalar is DataType.BOOL:
            values = (raw != 0).reshape(shape)
        else:
            values = features.from_raw(raw.view(features.raw_dtype(dt.scalar)), dt.scalar).reshape(shape)
        cols.append((values, np.ones(n, dtype=bool)))
    return cols


def _frame_bytes(frame: features.FeatureFrame | None) -> object:
    if frame is None:
        return None
    return (
        frame.n,
        frame.slots,
        [
            (b.dtype, np.ascontiguousarray(b.values).tobytes(), b.values.shape, b.valid.tolist())
            for b in frame.blocks
        ],
    )


def _case(seed: int):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    pyrng = random.Random(seed)
    nfeat = int(rng.integers(1, 7))
    if rng.random() < 0.3:
        dtypes = (FIXED[int(rng.integers(len(FIXED)))],) * nfeat
    else:
        dtypes = tuple(FIXED[int(rng.integers(len(FIXED)))] for _ in range(nfeat))
    if seed % 5 == 0:  # rows of about 128 bytes: row lengths of one and of two varint bytes in one batch
        dtypes = (DataType.UINT8_VECTOR,)
        dims = [int(rng.integers(112, 124))]
    else:
        dims = [int(rng.choice([1, 2, 3, 31, 40, 70])) if dt.is_vector else 1 for dt in dtypes]
    n = int(rng.integers(1, 10))
    keys = list({_ascii(pyrng, pyrng.randrange(0, 14 if seed % 3 else wire.SHORT_KEY)) for _ in range(n)})
    batch = [(k,) for k in keys]
    frame = features.FeatureFrame.from_columns(dtypes, _columns(rng, dtypes, dims, len(batch)))
    template = wire.RowTemplate(dtypes, wire.cell_widths(dtypes, frame.slots))
    region = b"".join(encode_rows(batch, frame, dtypes))
    return rng, batch, frame, template, region


@pytest.mark.parametrize("seed", range(40))
def test_decode_batch_path_accepts_and_rejects_what_the_key_by_key_path_does(seed: int) -> None:
    rng, batch, frame, template, region = _case(seed)
    fast, slow = wire.encode_keys(batch, BATCH), wire.encode_keys(batch, KEY_BY_KEY)
    assert fast.short is not None
    assert slow.short is None

    def both(data: bytes, keys: tuple[wire.Keys, wire.Keys] = (fast, slow)) -> object:
        a = _frame_bytes(template.decode(memoryview(data), keys[0]))
        b = _frame_bytes(template.decode(data, keys[1]))
        assert a == b
        return a

    assert both(region) == _frame_bytes(frame)
    accepted = 0
    for i in range(len(region)):  # every byte corrupted in turn
        bad = bytearray(region)
        bad[i] ^= int(rng.integers(1, 256))
        accepted += both(bytes(bad)) is not None
    assert accepted == len(batch) * sum(template.widths)  # a changed value is a value, nothing else passes
    for cut in sorted({0, 1, len(region) - 1, *rng.integers(0, len(region), 5).tolist()}):
        assert both(region[:cut]) is None
    for extra in (b"\x00", b"\x22\x00", rng.integers(0, 256, 7, dtype=np.uint8).tobytes()):
        assert both(region + extra) is None
        assert both(extra + region) is None
    others = [(k[0] + "x",) if i == len(batch) // 2 else k for i, k in enumerate(batch)]
    other_keys = (wire.encode_keys(others, BATCH), wire.encode_keys(others, KEY_BY_KEY))
    assert both(region, other_keys) is None
    if len(batch) > 1:
        swapped = batch[::-1]
        assert both(region, (wire.encode_keys(swapped, BATCH), wire.encode_keys(swapped, KEY_BY_KEY))) is None
