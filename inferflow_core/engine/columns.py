"""Load-time checks of the columns a model reads: every column a component (or the response) reads must
be produced by an upstream component or come from the request.

* read from a component that is not upstream of the reader: an **error** (the reader may run first and
  silently see a missing column);
* read but produced by nothing and not declared in ``request_features`` (the id column is always
  declared): a **warning** naming the column, the reader, the config field and the closest known name
  ("did you mean ..."); an error in strict mode;
* a slate (pair/slate) column read by a component that reads the target matrix, or the reverse: an
  error (the reader would see zeros).

Columns read and produced by nothing are also returned, so a request that lacks one of them is told so
(:func:`check_request_columns`, run by the executor before the DAG).
"""

from __future__ import annotations

import difflib
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..components.base import Component, RunContext
from ..config.model import ModelConfig
from .graph import Graph

if TYPE_CHECKING:
    from ..observability.metrics import Metrics
    from .compile import CompiledModel

log = logging.getLogger("inferflow.engine")

Problem = tuple[str, str]


@dataclass(frozen=True)
class RequestColumn:
    """A column read by some component that no component produces: it must come from the request."""

    name: str
    slate: bool
    readers: tuple[str, ...]
    slate_ok: bool = False  # also satisfied by a pair/slate request feature


@dataclass
class ColumnReport:
    errors: list[Problem]
    warnings: list[Problem]
    request_columns: list[RequestColumn]


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest known name, or ``""``."""
    close = difflib.get_close_matches(name, sorted(set(known)), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _ancestors(graph: Graph) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for node in graph.order:
        acc: set[str] = set()
        for dep in graph.prerequisites[node]:
            acc.add(dep)
            acc |= out[dep]
        out[node] = acc
    return out


def check_columns(
    model: ModelConfig, components: Mapping[str, Component], paths: Mapping[str, str], graph: Graph
) -> ColumnReport:
    """Check every read of ``components`` (keyed by name; ``paths`` = each one's config path)."""
    producers: dict[tuple[str, bool], str] = {}
    for comp in components.values():
        for spec in comp.outputs():
            producers.setdefault((spec.name, spec.slate), comp.name)
    declared = set(model.request_features) | {model.response_config.id_column}
    known = {name for name, _ in producers} | declared
    ancestors = _ancestors(graph)
    report = ColumnReport([], [], [])
    unproduced: dict[tuple[str, bool], list[str]] = {}
    slate_ok: set[tuple[str, bool]] = set()

    for comp in components.values():
        base = paths.get(comp.name, f"component {comp.name!r}")
        for read in comp.reads():
            where = f"{base}.{read.path}" if read.path else base
            producer = producers.get((read.name, read.slate))
            if producer is None and read.slate_ok:
                producer = producers.get((read.name, True))
            if producer is not None:
                if producer != comp.name and producer not in ancestors.get(comp.name, set()):
                    report.errors.append(
                        (
                            where,
                            f"column {read.name!r} read by {comp.name!r} is produced by {producer!r}, "
                            f"which is not upstream of {comp.name!r} in the DAG (it may run first and "
                            f"see nothing): add {producer!r} to its prerequisites",
                        )
                    )
                continue
            other = producers.get((read.name, not read.slate))
            if other is not None:
                side, other_side = ("slate", "target") if read.slate else ("target", "slate")
                report.errors.append(
                    (
                        where,
                        f"column {read.name!r} read by {comp.name!r} from the {side} matrix is a "
                        f"{other_side} column (produced by {other!r}): {comp.name!r} would read zeros",
                    )
                )
                continue
            unproduced.setdefault((read.name, read.slate), []).append(comp.name)
            if read.slate_ok:
                slate_ok.add((read.name, read.slate))
            if read.name not in declared:
                report.warnings.append(
                    (
                        where,
                        f"column {read.name!r} read by {comp.name!r} is produced by no component and not "
                        f"declared in request_features{did_you_mean(read.name, known)}",
                    )
                )

    for i, feature in enumerate(model.response_config.features):
        if i == 0 or any((feature, s) in producers for s in (False, True)) or feature in declared:
            continue
        report.warnings.append(
            (
                f"response_config.features[{i}]",
                f"response feature {feature!r} is produced by no component and not declared in "
                f"request_features{did_you_mean(feature, known)}",
            )
        )
    report.request_columns = [
        RequestColumn(name, slate, tuple(readers), (name, slate) in slate_ok)
        for (name, slate), readers in unproduced.items()
    ]
    return report


_LOG_EVERY_S = 60.0
_last_logged: dict[tuple[str, str], float] = {}  # (model, column) -> monotonic time of the last line


def check_request_columns(model: CompiledModel, ctx: RunContext, metrics: Metrics | None) -> list[str]:
    """Columns the DAG reads that no component produces and this request lacks: noted for
    ``request_error``, counted (``request_missing_columns``), logged at most once a minute per column."""
    initial = ctx.initial
    absent = []
    for col in model.request_columns:
        if col.slate:
            if ctx.slate_matrix is None:
                continue
            sent = col.name in getattr(initial, "slate_texts", {}) or col.name in getattr(
                initial, "slate_typed", {}
            )
        else:
            sent = col.name in getattr(initial, "texts", {}) or col.name in getattr(initial, "typed", {})
            if not sent and col.slate_ok and ctx.slate_matrix is not None:
                slate_texts, slate_typed = (
                    getattr(initial, "slate_texts", {}),
                    getattr(initial, "slate_typed", {}),
                )
                sent = col.name in slate_texts or col.name in slate_typed
        if sent:
            continue
        absent.append(col.name)
        readers = ", ".join(map(repr, col.readers))
        ctx.notes.append(
            f"{'pair/slate ' if col.slate else ''}feature {col.name!r} (read by {readers}) is neither "
            "produced by a component nor present in the request"
        )
        if metrics is not None:
            metrics.count("request_missing_columns", model_id=ctx.model_id, column=col.name)
        now = time.monotonic()
        key = (ctx.model_id, col.name)
        if now - _last_logged.get(key, -_LOG_EVERY_S) >= _LOG_EVERY_S:
            if len(_last_logged) > 4096:
                _last_logged.clear()
            _last_logged[key] = now
            log.warning(
                "model %s: request lacks feature %r read by %s (no component produces it)",
                ctx.model_id,
                col.name,
                readers,
                extra={"model_id": ctx.model_id, "column": col.name},
            )
    return absent
