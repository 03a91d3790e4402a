"""Expressions from the config tree, parsed once per version.

The value of ``/config/<app>/expression-config/<compute_id>`` is ``{"expression": "<postfix>"}``. The
cache is keyed by ``(compute_id, raw value text)``: a request only does a dict lookup, and a hot-reloaded
expression (a new value text) is parsed on its first use. Broken values are cached as their error.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict

from .language import ExpressionError, Program, parse


class ProgramCache:
    def __init__(self, maxsize: int = 512) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[tuple[str, str], Program | ExpressionError] = OrderedDict()
        self._lock = threading.Lock()  # the server may call from several threads

    def get(self, compute_id: str, raw: str | None) -> Program:
        """The program for ``raw`` (the config value); raises ExpressionError naming the compute_id."""
        if raw is None:
            raise ExpressionError(f"no expression configured for compute_id {compute_id!r}")
        key = (compute_id, raw)
        got = self._items.get(key)
        if got is None:
            got = _load(compute_id, raw)
            with self._lock:
                self._items[key] = got
                while len(self._items) > self.maxsize:
                    self._items.popitem(last=False)
        if isinstance(got, ExpressionError):
            raise got
        return got


def _load(compute_id: str, raw: str) -> Program | ExpressionError:
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        return ExpressionError(f"expression config of compute_id {compute_id!r} is not JSON: {exc}")
    expression = doc.get("expression") if isinstance(doc, dict) else None
    if not isinstance(expression, str):
        return ExpressionError(
            f'expression config of compute_id {compute_id!r} must be {{"expression": "<postfix>"}}'
        )
    try:
        return parse(expression)
    except ExpressionError as exc:
        return ExpressionError(f"compute_id {compute_id!r}: {exc}")
