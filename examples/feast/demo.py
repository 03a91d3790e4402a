"""``make demo-feast``: the demo (`inferflow demo`) with the example's features served from Feast.

Builds a Feast repository from the example's Parquet features (SQLite online store, apply + materialize),
rewrites the demo's config so ``feast_components`` replace ``feature_components`` (same entries), points the
server at the repo with ``INFERFLOW_FEAST_REPO`` and runs the same requests. Runs in .venv-feast (Feast is
not in .venv); the ranker still uses the embedded ONNX model and the final score the numpy evaluator.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from feast_example import build_example_repo, rewrite_config_dir

from inferflow_core import demo


def feast_variant(config_dir: Path, data_dir: Path, env: dict[str, str]) -> str:
    started = time.perf_counter()
    repo = build_example_repo(data_dir / "features", config_dir.parent / "feast-repo")
    models = rewrite_config_dir(config_dir)
    env["INFERFLOW_FEAST_REPO"] = str(repo)
    # The SDK reads 200 catalogs x 66 features from SQLite in ~50-250 ms here (per-value Python in Feast):
    # the default 200 ms per call would fail a cold first request, so the demo allows more.
    env.setdefault("INFERFLOW_FEAST_DEADLINE_MS", "2000")
    env.pop("INFERFLOW_ONFS_LOCAL_DIR", None)
    took = time.perf_counter() - started
    return f"Feast repo {repo} built and materialized in {took:.1f}s; feast_components in {', '.join(models)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo-feast", description=__doc__)
    parser.add_argument("--keep-running", action="store_true")
    parser.add_argument("--port", type=int, default=0)
    return demo.main(parser.parse_args(argv), variant=feast_variant)


if __name__ == "__main__":
    sys.exit(main())
