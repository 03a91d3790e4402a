"""The fast paths added for speed and memory: wire templates, store views, the slab cache.

Each test compares a fast path with the general one (or with the Parquet truth), and checks that the fast
path steps aside when the data does not fit it."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from inferflow_onfs import wire
from inferflow_onfs._proto import retrieve_pb2 as pb
from inferflow_onfs.backends import LocalBackend
from inferflow_onfs.client import OnfsClient
from inferflow_onfs.server import encode_rows
from inferflow_onfs.settings import OnfsSettings
from inferflow_onfs.store import LocalStore
from onfs_support import fetch_request

from inferflow_core.api import DataType, features

DTYPES = (DataType.FP32, DataType.FP32_VECTOR, DataType.INT64, DataType.BOOL, DataType.FP32)


def _frame(n: int, missing_row: int | None = None) -> features.FeatureFrame:
    rng = np.random.default_rng(3)
    cols = [
        (rng.random(n, dtype=np.float32), np.ones(n, dtype=bool)),
        (rng.random((n, 4), dtype=np.float32), np.ones(n, dtype=bool)),
        (rng.integers(-9, 9, n).astype(np.int64), np.ones(n, dtype=bool)),
        (rng.random(n) > 0.5, np.ones(n, dtype=bool)),
        (rng.random(n, dtype=np.float32), np.ones(n, dtype=bool)),
    ]
    if missing_row is not None:
        cols[2][1][missing_row] = False
    return features.FeatureFrame.from_columns(DTYPES, cols)


def _same(a: features.FeatureFrame, b: features.FeatureFrame) -> None:
    assert a.n == b.n
    for j in range(len(DTYPES)):
        va, oka = a.column(j)
        vb, okb = b.column(j)
        assert (oka == okb).all(), j
        assert np.array_equal(va[oka], vb[okb]), j


def test_row_template_encodes_protobuf_rows_and_decodes_them_back() -> None:
    keys = [("k1",), ("key-two",), ("3",)]
    frame = _frame(3)
    region = b"".join(encode_rows(keys, frame, DTYPES))
    parsed = pb.Result.FromString(region)  # the scatter-built rows are valid protobuf
    assert [tuple(r.keys) for r in parsed.rows] == keys
    assert np.frombuffer(parsed.rows[1].columns[1], np.float32).tolist() == frame.column(1)[0][1].tolist()
    template = wire.RowTemplate(DTYPES, wire.cell_widths(DTYPES, frame.slots))
    kbs = wire.encode_keys(keys)
    _same(template.decode(region, kbs), frame)  # type: ignore[arg-type]


def test_row_template_steps_aside_when_the_answer_is_not_the_expected_shape() -> None:
    keys = [("a",), ("b",), ("c",)]
    frame = _frame(3)
    template = wire.RowTemplate(DTYPES, wire.cell_widths(DTYPES, frame.slots))
    kbs = wire.encode_keys(keys)
    region = b"".join(encode_rows(keys, frame, DTYPES))
    assert template.decode(region, wire.encode_keys(keys[::-1])) is None  # rows in another order
    assert template.decode(region + b"\x22\x00", kbs) is None  # an extra row
    assert template.decode(region[:-1], kbs) is None  # truncated
    holed = b"".join(encode_rows(keys, _frame(3, missing_row=1), DTYPES))
    assert template.decode(holed, kbs) is None  # an empty cell
    other = wire.RowTemplate(DTYPES, [4, 8, 8, 1, 4])  # another vector length
    assert other.decode(region, kbs) is None
    head = pb.Result(entity_label="x", keys_schema=["id"]).SerializeToString()
    assert wire.rows_region(head + region) == len(head)
    assert wire.rows_region(b"\x08\x01" + region) is None  # an unexpected field before the rows


@pytest.mark.integration
@pytest.mark.parametrize("batch_size", [5, 32])  # 32: the 20-key batch takes encode_keys' batch path
async def test_client_fast_path_equals_the_store(server_port, store_dir, batch_size) -> None:
    component = {
        "component": "fixed", "component_id": "user_id", "fs_keys": [{"schema": "user_id", "col": "user_id"}],
        "fs_request": {"label": "user", "featureGroups": [
            {"label": "scalars", "data_type": "DataTypeFP32",
             "features": ["fp32", "i64@DataTypeInt64", "flag@DataTypeBool", "f8@DataTypeFP8E4M3"]},
            {"label": "vectors", "data_type": "DataTypeFP32Vector",
             "features": ["emb", "bvec@DataTypeBoolVector", "f8v@DataTypeFP8E5M2Vector"]}]},
    }  # fmt: skip
    request = fetch_request(component)
    decoded: list[bool] = []
    batch_path: list[bool] = []
    original = wire.RowTemplate.decode

    def spy(self, region, keys):  # type: ignore[no-untyped-def]
        got = original(self, region, keys)
        decoded.append(got is not None)
        batch_path.append(got is not None and keys.short is not None)
        return got

    client = OnfsClient(
        OnfsSettings(fs_host="127.0.0.1", fs_port=server_port, fs_plaintext=True, caller_id="inferflow",
                     caller_token="secret", deadline_ms=2000, batch_size=batch_size)
    )  # fmt: skip
    local = LocalBackend(LocalStore(str(store_dir[0])))
    wire.RowTemplate.decode = spy  # type: ignore[method-assign]
    try:
        for ids in (["u1", "u2"], [f"u{i}" for i in range(3, 23)], ["u5", "ghost", "u6"]):
            keys = [(i,) for i in ids]
            outcome = await client.fetch(request, keys, None)
            assert not outcome.failures
            want = (await local.fetch(request, keys, None)).per_key()
            for j in range(len(request.specs)):
                v, ok = outcome.frame.column(j)
                wv, wok = want.column(j)
                assert (ok == wok).all(), request.specs[j].name
                assert np.array_equal(v[ok], wv[wok]), request.specs[j].name
        assert len(client._channels) == 1  # one long-lived channel for all calls on this loop
    finally:
        wire.RowTemplate.decode = original  # type: ignore[method-assign]
        await client.close()
    assert any(decoded), "complete batches after the first must take the template path"
    assert not all(decoded), "a batch with a missing entity must fall back to the protobuf path"
    assert any(batch_path) == (batch_size > wire.FAST_MIN), batch_path


def test_store_serves_views_and_copies_correctly(store_dir) -> None:
    root, truth = store_dir
    store = LocalStore(str(root))
    table = store.table("user", ["user_id"])

    def label_block(column: str) -> np.ndarray:
        return table.frame.blocks[table.frame.slots[table.slots[column]].block].values

    in_order = store.prepared("user", ["user_id"], [("scalars:fp32", None), ("scalars:fp64", None)])
    merged = store.prepared("user", ["user_id"], [("scalars:fp32", None), ("vectors:emb", None)])
    cast = store.prepared("user", ["user_id"], [("scalars:fp32", DataType.FP64)])
    assert np.shares_memory(in_order.blocks[0].values, label_block("scalars:fp32"))  # a view, no copy
    assert np.shares_memory(in_order.blocks[1].values, label_block("scalars:fp64"))
    # two FP32 features from different places in the file: one merged (copied) block, as from_columns does
    assert len(merged.blocks) == 1
    assert not np.shares_memory(merged.blocks[0].values, label_block("vectors:emb"))
    rows = table.positions([("u3",), ("nobody",), ("u0",)])
    for frame, j, name in (
        (in_order, 0, "fp32"),
        (in_order, 1, "fp64"),
        (merged, 0, "fp32"),
        (cast, 0, "fp32"),
    ):
        values, valid = frame.take(rows).column(j)
        assert valid.tolist() == [True, False, True]
        want = truth[f"scalars:{name}"][[3, 0]].astype(values.dtype)
        assert np.array_equal(values[[0, 2]], want), name
    assert cast.blocks[0].values.dtype == np.float64
    vecs, ok = merged.take(rows).column(1)
    assert ok.tolist() == [True, False, True]
    assert np.array_equal(vecs[2], truth["vectors:emb"][0])


def _cache_frame(n: int, offset: float = 0.0) -> features.FeatureFrame:
    values = np.arange(n * 4, dtype=np.float32).reshape(n, 4) + offset
    return features.FeatureFrame.from_columns([DataType.FP32_VECTOR], [(values, np.ones(n, dtype=bool))])


def test_cache_evicts_least_recently_used_and_expires() -> None:
    clock = [100.0]
    probe = features.FeatureCache(1 << 20)
    probe.put_frame("p|", ["a"], "L", _cache_frame(1), 60)
    one = probe.bytes
    cache = features.FeatureCache(int(one * 3.5), clock=lambda: clock[0])
    cache.put_frame("p|", ["a", "b", "c"], "L", _cache_frame(3), 60)
    assert len(cache) == 3
    assert cache.lookup("p|", ["a"])  # a becomes the most recently used
    cache.put_frame("p|", ["d"], "L", _cache_frame(1, 100.0), 60)
    assert cache.bytes <= cache.max_bytes
    assert cache.evictions == 1
    alive = {k for k in "abcd" if cache.lookup("p|", [k], count=False)}
    assert alive == {"a", "c", "d"}
    (pos, slab, rows), = cache.lookup("p|", ["d", "a"])  # fmt: skip
    frame = slab.frame(rows)
    assert pos.tolist() == [0, 1]
    assert frame.column(0)[0][0].tolist() == [100.0, 101.0, 102.0, 103.0]
    assert cache.lookup("other|", ["a"]) == []  # another component / version prefix
    clock[0] += 61
    assert cache.lookup("p|", ["a", "c", "d"]) == []
    assert len(cache) == 0
    assert cache.bytes == 0


def test_cache_entries_are_not_gc_objects() -> None:
    """A warm cache must not hold per-entity container objects (full GC passes walk every one of them)."""
    cache = features.FeatureCache(1 << 30)
    keys = [str(i) for i in range(20_000)]
    gc.collect()
    before = len(gc.get_objects())
    cache.put_frame("m|1|c|", keys, "L", _cache_frame(len(keys)), 60)
    gc.collect()
    assert len(cache) == len(keys)
    assert len(gc.get_objects()) - before < 1_000


def test_cache_keeps_missing_cells_and_strings() -> None:
    cache = features.FeatureCache(1 << 20)
    n = 3
    values = np.arange(n, dtype=np.float32)
    valid = np.array([True, False, True])
    names = np.array(["a", "bb", "ccc"], dtype=object)
    frame = features.FeatureFrame.from_columns(
        [DataType.FP32, DataType.STRING], [(values, valid), (names, np.ones(n, dtype=bool))]
    )
    cache.put_frame("p|", ["x", "y", "z"], "L", frame, 60)
    (pos, slab, rows), = cache.lookup("p|", ["z", "y", "x"])  # fmt: skip
    got = slab.frame(rows)
    assert pos.tolist() == [0, 1, 2]
    assert got.column(0)[1].tolist() == [True, False, True]
    assert got.column(0)[0][[0, 2]].tolist() == [
        2.0,
        0.0,
    ]
    assert got.column(1)[0].tolist() == ["ccc", "bb", "a"]
    assert got.column(1)[1].all()
    only_full = slab.frame(rows[[0, 2]])  # rows with every cell present: validity is not gathered
    assert only_full.column(0)[1].all()
    cache.put_frame("p|", ["y"], "L", frame.take(np.array([0])), 60)  # replaced in place: still one entry
    assert len(cache) == 3
    (_, slab, rows), = cache.lookup("p|", ["y"])  # fmt: skip
    assert slab.frame(rows).column(1)[0].tolist() == ["a"]
