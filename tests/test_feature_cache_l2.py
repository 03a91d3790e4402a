"""The L2 feature cache never unpickles what it finds in its directory (a shared, writable place)."""

from __future__ import annotations

import os
from pathlib import Path

import diskcache
import pytest

from inferflow_core.api import features
from inferflow_core.features.l2 import decode_entry, encode_desc, encode_entry
from inferflow_core.features.l2_disk import BytesDisk


class Planted:
    """Unpickling this creates ``path``: the proof that a pickle was loaded."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (self.path, "w"))


async def test_a_planted_pickle_is_a_miss_and_never_loaded(tmp_path: Path) -> None:
    l2 = tmp_path / "l2"
    marker = tmp_path / "pwned"
    cache = features.FeatureCache(1_000_000, l2_path=str(l2))
    prefix = "m|1|user_features|"
    # someone with write access to the directory plants pickles with diskcache's default Disk,
    # in the database (small) and as a file (large)
    with diskcache.Cache(str(l2)) as planter:
        planter.set(prefix + "u1", Planted(str(marker)))
        planter.set(prefix + "u2", [Planted(str(marker)), "x" * 100_000])
        planter.set(prefix + "u3", "some text")
    assert await cache.fill_from_l2(prefix, ["u1", "u2", "u3"], 10.0) == 0
    assert not marker.exists()
    assert cache.l2_hits == 0
    cache.close()


def test_bytes_disk_stores_bytes_only(tmp_path: Path) -> None:
    with diskcache.Cache(str(tmp_path), disk=BytesDisk) as cache:
        cache.set("k", b"\x00raw")
        assert cache.get("k") == b"\x00raw"
        big = os.urandom(200_000)  # stored as a file
        cache.set("big", big)
        assert cache.get("big") == big
        with pytest.raises(TypeError):
            cache.set("obj", {"a": 1})
        with pytest.raises(TypeError):
            cache.set(("tuple", "key"), b"x")


def test_entries_round_trip_and_garbage_is_a_miss() -> None:
    from inferflow_core.api import DataType, features

    signature = (
        ((DataType.FP32, (2,), 2), (DataType.STRING, (), 1)),
        (features.Slot(0, 0, 1, 0), features.Slot(1, 0, 0, 0)),
    )
    entry = encode_entry(encode_desc("lay", signature), b"\x01" * 10, (("name", True),))
    assert entry is not None
    assert decode_entry(entry) == ("lay", signature, b"\x01" * 10, (("name", True),))
    for bad in (None, b"", b"IFL2\x01\xff\xff\xff\xff", entry[:-30], b"\x80\x04pickle", "text"):
        assert decode_entry(bad) is None
