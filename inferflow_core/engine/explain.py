"""EXPLAIN ANALYZE for one request: a node-lifecycle adapter that times every DAG node.

The executor knows nothing about explaining: it calls ``ctx.lifecycle.before_node`` / ``after_node``
around each node when a lifecycle is set (Hamilton's lifecycle adapters), and nothing when it is not,
so a request that did not ask costs one attribute test per node. Components may add what only they
know (cache hits, external calls and their batches) through ``RunContext.note`` /
``RunContext.external_call``, which are no-ops unless the request is explained.

:meth:`ExplainRecorder.render` turns the finished run into compact JSON, capped in size (column samples
go first, then per-node details, then nodes), for the ``inferflow-explain`` response trailer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..components.base import Component, RunContext
    from .compile import CompiledModel

EXPLAIN_METADATA = "inferflow-explain"  # request metadata key and response trailer key
_TRUE = frozenset(("1", "true", "yes", "on"))
_COLUMNS = "columns"  # ``inferflow-explain: columns`` also samples the columns each component wrote


class NodeLifecycle(Protocol):
    """Called by the executor around each node of one request's run (only when set on the context)."""

    def before_node(self, component: Component, ctx: RunContext) -> None: ...

    def after_node(self, component: Component, ctx: RunContext, outcome: str | None) -> None: ...

    def note(self, component: str, key: str, n: int = 1) -> None: ...

    def external_call(
        self, component: str, endpoint: str, batches: int, rows: int, seconds: float | None = None
    ) -> None: ...


def explain_mode(metadata: Mapping[str, list[str]]) -> str | None:
    """``"timing"``, ``"columns"`` or None from the request's ``inferflow-explain`` metadata value."""
    values = metadata.get(EXPLAIN_METADATA)
    if not values:
        return None
    value = values[0].strip().lower()
    if value == _COLUMNS:
        return _COLUMNS
    return "timing" if value in _TRUE else None


class _Node:
    __slots__ = ("calls", "counts", "end", "outcome", "rows_in", "start")

    def __init__(self, start: float, rows_in: int) -> None:
        self.start, self.rows_in = start, rows_in
        self.end: float | None = None
        self.outcome: str | None = None
        self.counts: dict[str, int] = {}
        self.calls: list[dict[str, Any]] = []


class ExplainRecorder:
    """Records one request's node timings and notes; renders them as the explain trailer."""

    def __init__(self, columns: bool = False, max_bytes: int = 6144, sample_rows: int = 3) -> None:
        self.t0 = time.perf_counter()
        self.columns = columns
        self.max_bytes = max_bytes
        self.sample_rows = sample_rows
        self.nodes: dict[str, _Node] = {}

    def _ms(self, t: float) -> float:
        return round((t - self.t0) * 1000.0, 3)

    # -- the lifecycle ------------------------------------------------------------------------------
    def before_node(self, component: Component, ctx: RunContext) -> None:
        self.nodes[component.name] = _Node(time.perf_counter(), ctx.matrix.rows)

    def after_node(self, component: Component, ctx: RunContext, outcome: str | None) -> None:
        node = self.nodes.get(component.name)
        if node is not None:
            node.end, node.outcome = time.perf_counter(), outcome

    # -- what components add ------------------------------------------------------------------------
    def _node(self, component: str) -> _Node:
        node = self.nodes.get(component)
        if node is None:
            node = self.nodes[component] = _Node(time.perf_counter(), 0)
        return node

    def note(self, component: str, key: str, n: int = 1) -> None:
        counts = self._node(component).counts
        counts[key] = counts.get(key, 0) + n

    def external_call(
        self, component: str, endpoint: str, batches: int, rows: int, seconds: float | None = None
    ) -> None:
        call: dict[str, Any] = {"endpoint": endpoint, "batches": batches, "rows": rows}
        if seconds is not None:
            call["ms"] = round(seconds * 1000.0, 3)
        self._node(component).calls.append(call)

    # -- the report -----------------------------------------------------------------------------------
    def report(self, model: CompiledModel, ctx: RunContext) -> dict[str, Any]:
        failures = [
            {"component": f.component, "kind": f.kind, "message": f.message[:200]} for f in ctx.failures
        ]
        nodes = [self._node_report(name, model, ctx) for name in model.graph.order]
        return {
            "model_id": model.model_id,
            "api": ctx.request.api,
            "total_ms": self._ms(time.perf_counter()),
            "rows": ctx.matrix.rows,
            "dag": {
                "order": list(model.graph.order),
                "prerequisites": {k: list(v) for k, v in model.graph.prerequisites.items()},
            },
            "nodes": nodes,
            "failures": failures,
            "deferred_jobs": len(ctx.deferred or ()),  # e.g. shadow calls, started after the response
        }

    def _node_report(self, name: str, model: CompiledModel, ctx: RunContext) -> dict[str, Any]:
        component = model.nodes[name]
        node = self.nodes.get(name)
        out: dict[str, Any] = {"name": name, "type": component.kind}
        if node is None:
            cut = next((f.kind for f in ctx.failures if f.component == name), None)
            out["outcome"] = cut or "not_run"
            return out
        end = node.end if node.end is not None else time.perf_counter()
        declared = [s.name for s in component.outputs() if not s.slate]
        written = [name for name in declared if ctx.matrix.has(name)]
        out.update(
            start_ms=self._ms(node.start),
            end_ms=self._ms(end),
            duration_ms=round((end - node.start) * 1000.0, 3),
            rows_in=node.rows_in,
            # rows with a value in any declared output (None: the component declares no target columns)
            rows_out=_rows_out(ctx, written) if declared else None,
            outcome=node.outcome or ("ok" if node.end is not None else "deadline"),
        )
        if node.counts:
            out["counts"] = dict(node.counts)
        if node.calls:
            out["calls"] = list(node.calls)
        if self.columns and written:
            out["columns"] = {c: _sample(ctx, c, self.sample_rows) for c in written}
        return out

    def render(self, model: CompiledModel, ctx: RunContext) -> str:
        """The report as compact ASCII JSON of at most ``max_bytes`` (see :func:`cap`)."""
        return cap(self.report(model, ctx), self.max_bytes)


def _rows_out(ctx: RunContext, columns: list[str]) -> int:
    """Rows with at least one valid cell among the columns the component writes."""
    best = 0
    for name in columns:
        col = ctx.matrix.column(name)
        best = max(best, int(col.valid.sum()))
        if best == ctx.matrix.rows:
            break
    return best


def _sample(ctx: RunContext, name: str, rows: int) -> list[str | None]:
    col = ctx.matrix.column(name)
    n = min(rows, ctx.matrix.rows)
    try:
        texts = ctx.matrix.texts(name)[:n]
    except Exception:  # an explain sample never fails a request
        return []
    return [t[:64] if bool(col.valid[i]) else None for i, t in enumerate(texts)]


def _dump(report: Mapping[str, Any]) -> str:
    return json.dumps(report, separators=(",", ":"), ensure_ascii=True)


def cap(report: dict[str, Any], max_bytes: int) -> str:
    """Serialize ``report`` within ``max_bytes``, dropping detail in a fixed order and saying so in
    ``"truncated"``: column samples, then calls/counts and failure messages, then the DAG's edges, then
    trailing nodes."""
    text = _dump(report)
    if len(text) <= max_bytes:
        return text
    dropped: list[str] = []
    steps = (
        ("columns", lambda r: [n.pop("columns", None) for n in r["nodes"]]),
        ("calls", lambda r: [(n.pop("calls", None), n.pop("counts", None)) for n in r["nodes"]]),
        ("failure_messages", lambda r: [f.pop("message", None) for f in r["failures"]]),
        ("dag", lambda r: r.pop("dag", None)),
    )
    for label, step in steps:
        step(report)
        dropped.append(label)
        report["truncated"] = dropped
        text = _dump(report)
        if len(text) <= max_bytes:
            return text
    dropped.append("nodes")
    while report["nodes"]:
        report["nodes"].pop()
        text = _dump(report)
        if len(text) <= max_bytes:
            return text
    return _dump({"model_id": report.get("model_id", "")[:100], "truncated": ["all"]})[:max_bytes]
