"""Deterministic data for the CTR example (scenario S1 of benchmarks/README.md).

Writes, under ``<data>/{demo,full}/`` (``$INFERFLOW_EXAMPLE_DATA``, else the user's cache directory
``~/.cache/inferflow/example``; regenerated when missing or when the sizes change):

* ``features/user.parquet``    key ``user_id`` + 32 FP32 features of group ``A`` (``A:u00`` .. ``A:u31``);
* ``features/catalog.parquet`` key ``catalog_id`` + 64 FP32 features of group ``A`` (``A:c00`` .. ``A:c63``),
  ``A:price`` (FP32, > 0) and one FP32Vector[32] ``B:emb``;
* ``models/s1_mlp/1/model.onnx`` the S1 ranker (dense[96] + emb[32] -> 128 -> 64 -> 1, sigmoid), a copy
  of the one shipped in this package, in a Triton-layout repository (``onnx://<data>/models``).

The feature files are the embedded OnFS store's format (``INFERFLOW_ONFS_LOCAL_DIR/<label>.parquet``,
key columns named as ``keys_schema``, feature columns ``<group>:<feature>``). Everything is derived from
one seed, so the demo, the tests and the benchmark see the same numbers on every machine.

Run ``python -m inferflow_core.example.generate [--demo]``; the demo and the bench call :func:`ensure_data`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CONFIG_DIR = HERE / "config"
MODEL_NAME = "s1_mlp"  # = examples/models/make_mlp.MODEL_NAME
SHIPPED_MODEL = HERE / "models" / MODEL_NAME / "1" / "model.onnx"  # make_mlp.build(seed=7)
SEED = 20261126
USER_DIM, CATALOG_DIM, EMB_DIM = 32, 64, 32
FULL = {"users": 10_000, "catalogs": 100_000}
DEMO = {"users": 1_000, "catalogs": 5_000}

Progress = Callable[[str], None]


def user_features() -> list[str]:
    return [f"u{i:02d}" for i in range(USER_DIM)]


def catalog_features() -> list[str]:
    return [f"c{i:02d}" for i in range(CATALOG_DIM)]


def _stamp(users: int, catalogs: int) -> dict:
    return {"seed": SEED, "users": users, "catalogs": catalogs, "version": 1}


def _write_users(path: Path, users: int, rng: np.random.Generator) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    values = rng.standard_normal((users, USER_DIM), dtype=np.float32)
    cols: dict[str, pa.Array] = {"user_id": pa.array([str(i) for i in range(users)], pa.string())}
    for j, name in enumerate(user_features()):
        cols[f"A:{name}"] = pa.array(values[:, j], pa.float32())
    pq.write_table(pa.table(cols), path)


def _write_catalogs(path: Path, catalogs: int, rng: np.random.Generator) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    values = rng.standard_normal((catalogs, CATALOG_DIM), dtype=np.float32)
    price = np.round(rng.lognormal(mean=5.5, sigma=0.8, size=catalogs), 2).astype(np.float32)
    emb = rng.standard_normal((catalogs, EMB_DIM), dtype=np.float32) * np.float32(0.5)
    cols: dict[str, pa.Array] = {"catalog_id": pa.array([str(i) for i in range(catalogs)], pa.string())}
    for j, name in enumerate(catalog_features()):
        cols[f"A:{name}"] = pa.array(values[:, j], pa.float32())
    cols["A:price"] = pa.array(price, pa.float32())
    flat = pa.array(emb.reshape(-1), pa.float32())
    cols["B:emb"] = pa.ListArray.from_arrays(
        pa.array(np.arange(0, catalogs * EMB_DIM + 1, EMB_DIM, dtype=np.int32)), flat
    )
    pq.write_table(pa.table(cols), path)


def default_data_dir() -> Path:
    """Where generated data goes: ``$INFERFLOW_EXAMPLE_DATA``, else ``$XDG_CACHE_HOME/inferflow/example``."""
    if os.environ.get("INFERFLOW_EXAMPLE_DATA"):
        return Path(os.environ["INFERFLOW_EXAMPLE_DATA"])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "inferflow" / "example"


def _write_model(repo: Path) -> Path:
    """Place the S1 ONNX model (the copy shipped in this package: no ``onnx`` package needed)."""
    target = repo / MODEL_NAME / "1" / "model.onnx"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SHIPPED_MODEL, target)
    return target


def ensure_data(
    data_dir: Path | str | None = None, *, demo: bool = False, progress: Progress | None = print
) -> Path:
    """Generate the example's data under ``data_dir`` unless an up-to-date copy is there; return it.

    ``demo=True`` writes a smaller store (1,000 users x 5,000 catalogs) so the first run is quick;
    the benchmark uses the full S1 sizes (10,000 x 100,000).
    """
    data = Path(data_dir) if data_dir else default_data_dir() / ("demo" if demo else "full")
    sizes = DEMO if demo else FULL
    stamp_path = data / "stamp.json"
    want = _stamp(sizes["users"], sizes["catalogs"])
    if stamp_path.exists() and json.loads(stamp_path.read_text()) == want:
        return data
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    if data.exists():
        shutil.rmtree(data)
    (data / "features").mkdir(parents=True)
    rng = np.random.default_rng(SEED)
    say(f"  generating {sizes['users']:,} users x {USER_DIM} FP32 features ...")
    _write_users(data / "features" / "user.parquet", sizes["users"], rng)
    say(
        f"  generating {sizes['catalogs']:,} catalogs x "
        f"({CATALOG_DIM} FP32 + price + FP32Vector[{EMB_DIM}]) ..."
    )
    _write_catalogs(data / "features" / "catalog.parquet", sizes["catalogs"], rng)
    say(f"  building the ONNX ranker ({MODEL_NAME}: 128 -> 64 -> 1) ...")
    _write_model(data / "models")
    stamp_path.write_text(json.dumps(want))
    say(f"  data ready in {data} ({time.perf_counter() - t0:.1f}s)")
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", help="default: <$INFERFLOW_EXAMPLE_DATA or ~/.cache/inferflow/example>/demo or /full"
    )
    parser.add_argument("--demo", action="store_true", help="the small demo sizes")
    args = parser.parse_args(argv)
    ensure_data(args.data_dir, demo=args.demo)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
