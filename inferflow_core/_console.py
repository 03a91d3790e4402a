"""Terminal output shared by the commands: aligned tables and progress bars (tqdm, on a TTY only)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def fmt(value: Any) -> str:
    """A cell: ``-`` for missing, floats with 4 decimals (scientific when tiny), lists comma-joined."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"
    if isinstance(value, list):
        return "[" + ",".join(fmt(v) for v in value) + "]"
    return str(value)


def table(headers: list[str], rows: list[list[Any]], indent: str = "  ") -> None:
    """Print a boxed table; numbers right-aligned."""
    cells = [list(headers)] + [[fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = indent + "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    print(line)
    print(indent + "| " + " | ".join(h.ljust(w) for h, w in zip(cells[0], widths, strict=True)) + " |")
    print(line)
    for row in cells[1:]:
        print(indent + "| " + " | ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) + " |")
    print(line, flush=True)


def progress(items: Iterable[T], desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """``items`` with a progress bar on stderr when it is a terminal (tqdm); plain iteration otherwise."""
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a core dependency
        yield from items
        return
    yield from tqdm(items, desc=desc, total=total, unit=unit, disable=not sys.stderr.isatty(), leave=False)
