"""The OnFS client's per-batch wire work in process: the query body of a batch of keys and the template
decode of the answer (``RowTemplate.decode``), on S1's shapes.

    python plugins/inferflow_onfs/benchmarks/bench_wire_keys.py [--before REV] [--rounds 15]

Shapes: the catalog fetch (200 keys drawn from "0".."99999" as the S1 load generator draws them; 64 FP32
features, an FP32 price and a 32-dim FP32 embedding per row) and the user fetch (1 key, 32 FP32 features).
Variants, timed alternately round by round (median µs per call, with the min-max over the rounds):

- ``batch``: ``encode_keys`` as the client calls it (the batch path from ``FAST_MIN`` keys on);
- ``key-by-key``: the same code with the batch path off (``min_fast`` above any batch);
- ``before``: with ``--before REV``, the client's code at that git revision (``wire.py`` read with ``git
  show``; the body as that revision's client wrote it, one ``key_bytes`` and one ``varint`` per key).

Every variant's body and frame are checked to be equal before timing.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import subprocess
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
from inferflow_onfs import wire
from inferflow_onfs.server import encode_rows

from inferflow_core.api import DataType, features

WIRE = "plugins/inferflow_onfs/inferflow_onfs/wire.py"
ROOT = Path(__file__).resolve().parents[3]


def load_before(rev: str) -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{rev}:{WIRE}"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "wire_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("wire_before", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shape(n: int, dtypes: tuple[DataType, ...], dims: list[int], seed: int):  # type: ignore[no-untyped-def]
    draw = random.Random(seed)
    batch = [(str(k),) for k in draw.sample(range(100_000), n)]
    rng = np.random.default_rng(seed)
    cols = [
        (rng.random((n, d) if dt.is_vector else n, dtype=np.float32), np.ones(n, dtype=bool))
        for dt, d in zip(dtypes, dims, strict=True)
    ]
    frame = features.FeatureFrame.from_columns(dtypes, cols)
    region = b"".join(encode_rows(batch, frame, dtypes))
    return batch, frame, region


def variants(
    batch: list[tuple[str, ...]],
    region: bytes,
    dtypes: tuple[DataType, ...],
    widths: list[int],
    before: ModuleType | None,
) -> dict[str, tuple[Callable[[], bytes], Callable[[], object]]]:
    """name -> (build the body, decode the region)."""
    template = wire.RowTemplate(dtypes, widths)
    out = {}
    for name, min_fast in (("batch", wire.FAST_MIN), ("key-by-key", sys.maxsize)):
        keys = wire.encode_keys(batch, min_fast)
        out[name] = (
            lambda m=min_fast: wire.encode_keys(batch, m).body,
            lambda k=keys: template.decode(region, k),
        )
    if before is not None:
        old = before.RowTemplate(dtypes, widths)
        kbs = [before.key_bytes(k) for k in batch]

        def old_body() -> bytes:
            kb = [before.key_bytes(k) for k in batch]
            return b"".join([b"\x22" + before.varint(len(b)) + b for b in kb])

        out["before"] = (old_body, lambda: old.decode(region, kbs))
    return out


def frame_bytes(frame: features.FeatureFrame) -> list[bytes]:
    return [np.ascontiguousarray(b.values).tobytes() for b in frame.blocks]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", help="git revision whose wire.py to time as 'before'")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    before = load_before(args.before) if args.before else None
    catalog = ((DataType.FP32,) * 65 + (DataType.FP32_VECTOR,), [1] * 65 + [32])
    user = ((DataType.FP32,) * 32, [1] * 32)
    for label, n, (dtypes, dims) in (("catalog", 200, catalog), ("user", 1, user)):
        batch, frame, region = shape(n, dtypes, dims, seed=n)
        widths = wire.cell_widths(dtypes, frame.slots)
        runs = variants(batch, region, dtypes, widths, before)
        want_body = runs["key-by-key"][0]()
        want_frame = frame_bytes(frame)
        for name, (body, decode) in runs.items():
            got = decode()
            assert body() == want_body, name
            assert got is not None, name
            assert frame_bytes(got) == want_frame, name  # type: ignore[arg-type]
        number = max(1, 20_000 // (n + 50))
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds):
            for name, (body, decode) in runs.items():
                for what, fn in (("body", body), ("decode", decode)):
                    t = timeit.timeit(fn, number=number) / number * 1e6
                    times.setdefault((what, name), []).append(t)
        print(f"{label}: {n} keys, {len(region)} bytes of rows, {args.rounds} rounds x {number} calls")
        for (what, name), ts in times.items():
            med = statistics.median(ts)
            print(f"  {what:6s} {name:10s} {med:7.1f} us  (min {min(ts):.1f}, max {max(ts):.1f})")


if __name__ == "__main__":
    main()
