"""Puts this directory on sys.path (pytest runs with --import-mode=importlib) and exposes the fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from iflog_support import broker, served_factory

__all__ = ["broker", "served_factory"]
