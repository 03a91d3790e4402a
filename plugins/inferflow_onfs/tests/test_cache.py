"""Feature cache: hits skip the store, TTL, version bump, byte bound, L2 shared by two processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from inferflow_onfs.backends import LocalBackend
from inferflow_onfs.client import OnfsClient
from inferflow_onfs.settings import OnfsSettings
from inferflow_onfs.store import LocalStore
from onfs_support import _build, _run

from inferflow_core.api import Metrics, features
from inferflow_core.testing import pick_free_port


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _fetched(metrics: Metrics) -> float:
    return metrics.value("onfs_fetched_entities", model_id="m", component="user_features")


def _same(a, b) -> None:  # type: ignore[no-untyped-def]
    for col in (
        "user:scalars:fp32",
        "user:scalars:name",
        "user:vectors:emb",
        "user:vectors:svec",
        "user:scalars:f8",
    ):
        va, oka = a.matrix.read(col)
        vb, okb = b.matrix.read(col)
        assert (oka == okb).all(), col
        assert [np.asarray(x).tolist() for x in va[oka]] == [np.asarray(x).tolist() for x in vb[okb]], col


async def test_hits_skip_the_store_and_equal_the_store(store_dir) -> None:
    cache = features.FeatureCache(10_000_000)
    comp, metrics = _build(LocalBackend(LocalStore(str(store_dir[0]))), cache)
    first = await _run(comp, ["u1", "u2", "u1", "ghost"])
    assert _fetched(metrics) == 3
    assert len(cache) == 2
    assert metrics.value("cache_misses", model_id="m", component="user_features") == 3
    # same cache, a backend that cannot answer: hits must not touch it
    broken = OnfsClient(OnfsSettings(fs_host="127.0.0.1", fs_port=pick_free_port(), fs_plaintext=True))
    comp2, metrics2 = _build(broken, cache)
    second = await _run(comp2, ["u1", "u2", "u1"])
    assert _fetched(metrics2) == 0
    assert not second.failures
    assert metrics2.value("cache_hits", model_id="m", component="user_features") == 2
    for col in ("user:scalars:fp32", "user:vectors:emb", "user:vectors:svec", "user:scalars:name"):
        va, _ = first.matrix.read(col)
        vb, okb = second.matrix.read(col)
        assert okb.all()
        assert [np.asarray(x).tolist() for x in va[:3]] == [np.asarray(x).tolist() for x in vb], col


async def test_ttl_expiry_and_version_bump(store_dir) -> None:
    clock = Clock()
    cache = features.FeatureCache(10_000_000, clock=clock)
    backend = LocalBackend(LocalStore(str(store_dir[0])))
    comp, metrics = _build(backend, cache, ttl=60)
    await _run(comp, ["u1"])
    await _run(comp, ["u1"])
    assert _fetched(metrics) == 1
    clock.now += 61
    await _run(comp, ["u1"])
    assert _fetched(metrics) == 2  # expired -> fetched again
    bumped, metrics_b = _build(backend, cache, version=2, ttl=60)
    await _run(bumped, ["u1"])
    assert _fetched(metrics_b) == 1  # a new cache_version never reads old entries


async def test_byte_bound_is_respected(store_dir) -> None:
    cache = features.FeatureCache(3_000)
    comp, _ = _build(LocalBackend(LocalStore(str(store_dir[0]))), cache)
    for i in range(0, 40, 4):
        await _run(comp, [f"u{j}" for j in range(i, i + 4)])
        assert cache.bytes <= 3_000
    assert cache.evictions > 0
    assert 0 < len(cache) < 40


TESTS_DIR = str(Path(__file__).resolve().parent)  # the writer imports onfs_support from here
L2_WRITER = textwrap.dedent(
    """
    import asyncio, json, sys
    from onfs_support import _build, _run
    from inferflow_onfs.backends import LocalBackend
    from inferflow_core.api import features
    from inferflow_onfs.store import LocalStore

    async def main():
        cache = features.FeatureCache(10_000_000, l2_path=sys.argv[2])
        comp, _ = _build(LocalBackend(LocalStore(sys.argv[1])), cache)
        await _run(comp, ["u3", "u4"])
        await cache.drain()
        cache.close()
    asyncio.run(main())
    """
)


async def test_two_processes_share_l2(store_dir, tmp_path) -> None:
    l2 = str(tmp_path / "l2")
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", L2_WRITER, str(store_dir[0]), l2],
        env={**os.environ, "PYTHONPATH": TESTS_DIR},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    cache = features.FeatureCache(10_000_000, l2_path=l2)
    broken = OnfsClient(OnfsSettings(fs_host="127.0.0.1", fs_port=pick_free_port(), fs_plaintext=True))
    comp, metrics = _build(broken, cache)
    ctx = await _run(comp, ["u3", "u4"])
    assert not ctx.failures
    assert _fetched(metrics) == 0
    assert cache.l2_hits == 2
    local = await _run(
        _build(LocalBackend(LocalStore(str(store_dir[0]))), features.FeatureCache(10_000_000))[0],
        ["u3", "u4"],
    )
    _same(ctx, local)
    cache.close()
