"""Inferflow for Python: real-time ML inference orchestration (a DAG of components over a column matrix)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("inferflow-core")  # single source: pyproject.toml
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
