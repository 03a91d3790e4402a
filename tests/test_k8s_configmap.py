"""A config directory mounted from a Kubernetes ConfigMap: the kubelet's ``..data`` layout and atomic swap.

``KubeletVolume`` writes exactly what the kubelet's AtomicWriter does: the payload goes into a fresh
timestamped directory ``..<ts>``, a ``..data_tmp`` symlink to it is renamed over ``..data`` (atomic), each
top-level entry of the payload is a symlink through ``..data``, and the old timestamped directory is removed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from inferflow_core.config.sources import DirectorySource, read_config_dir

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "inferflow_core/example/config"
PREFIX = "inferflow/services/inferflow/model-config/config-map/"


class KubeletVolume:
    """A ConfigMap volume directory maintained the way the kubelet maintains it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.generation = 0

    def write(self, payload: dict[str, str]) -> None:
        """``payload``: relative path (a ConfigMap ``items[].path``) -> content."""
        self.generation += 1
        ts = self.root / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{os.getpid()}{self.generation:04d}"
        for rel, text in payload.items():
            path = ts / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        data = self.root / "..data"
        old = os.readlink(data) if data.is_symlink() else None
        tmp = self.root / "..data_tmp"
        os.symlink(ts.name, tmp)
        os.replace(tmp, data)  # the atomic swap
        tops = {rel.split("/", 1)[0] for rel in payload}
        for top in tops:
            link = self.root / top
            if not link.is_symlink():
                os.symlink(f"..data/{top}", link)
        for entry in self.root.iterdir():
            if not entry.name.startswith("..") and entry.name not in tops:
                entry.unlink()
        if old is not None:
            shutil.rmtree(self.root / old)


def _example_payload() -> dict[str, str]:
    return {p.relative_to(EXAMPLE).as_posix(): p.read_text() for p in EXAMPLE.rglob("*.json")}


def test_nested_items_layout_is_read_once(tmp_path: Path) -> None:
    vol = KubeletVolume(tmp_path / "config")
    vol.write(_example_payload())
    tree = read_config_dir(vol.root)
    want = {k.removesuffix(".json") for k in _example_payload()}
    assert set(tree) == want  # nothing from ``..<ts>`` or ``..data`` twice


def test_flat_configmap_mounted_at_the_config_map_dir(tmp_path: Path) -> None:
    vol = KubeletVolume(tmp_path / "config" / PREFIX)
    vol.write({"m1.json": "{}", "m2.json": "{}"})
    tree = read_config_dir(tmp_path / "config", (PREFIX,))
    assert sorted(tree) == [PREFIX + "m1", PREFIX + "m2"]


def test_validate_cli_finds_models_in_a_configmap_volume(tmp_path: Path) -> None:
    from inferflow_core.example import generate, harness

    # validate checks what the server would load: the feature store and the ONNX file must be there
    data = generate.ensure_data(tmp_path / "data", demo=True, progress=None)
    written = harness.write_config(tmp_path / "written", data)
    vol = KubeletVolume(tmp_path / "config")
    vol.write({p.relative_to(written).as_posix(): p.read_text() for p in written.rglob("*.json")})
    out = subprocess.run(
        [sys.executable, "-m", "inferflow_core.cli", "validate", str(vol.root)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **harness.embedded_env(data)},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok      bench_ctr" in out.stdout


async def test_directory_source_reloads_on_the_data_swap(tmp_path: Path) -> None:
    vol = KubeletVolume(tmp_path / "config")
    vol.write({PREFIX + "m1.json": '{"v": 1}'})
    source = DirectorySource(vol.root, (PREFIX,), interval=0.05)
    assert await source.load() == {PREFIX + "m1": '{"v": 1}'}
    watch = source.watch()
    # same size, and possibly the same mtime: only the resolved path differs
    vol.write({PREFIX + "m1.json": '{"v": 2}', PREFIX + "m2.json": '{"v": 9}'})
    tree = await asyncio.wait_for(anext(watch), 5.0)
    assert tree == {PREFIX + "m1": '{"v": 2}', PREFIX + "m2": '{"v": 9}'}
    vol.write({PREFIX + "m2.json": '{"v": 9}'})  # a key removed from the ConfigMap
    tree = await asyncio.wait_for(anext(watch), 5.0)
    assert tree == {PREFIX + "m2": '{"v": 9}'}
    await watch.aclose()
