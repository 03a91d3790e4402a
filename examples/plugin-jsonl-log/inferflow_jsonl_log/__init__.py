"""inferflow-jsonl-log: a JSON Lines inference-log format (``jsonl``) and a stdout log sink (``stdout``)."""

from __future__ import annotations

from .format import JsonLinesFormat
from .sink import StdoutSink

__all__ = ["JsonLinesFormat", "StdoutSink"]
