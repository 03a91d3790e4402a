"""The logging plugin's fixtures (iflog_support is found through pytest's pythonpath, pyproject.toml)."""

from __future__ import annotations

from iflog_support import broker, served_factory

__all__ = ["broker", "served_factory"]
