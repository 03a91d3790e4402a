"""``inferflow replay LOGS... --config-dir DIR``: score logged traffic with a candidate config.

LOGS are log files, directories of them, or Kafka topic ranges ``kafka://HOST:PORT/TOPIC?from=N&to=M``
(:mod:`.kafka_source`; their schemas from ``--schema`` or ``--log-config-dir``, the config that wrote them).

Each logged request (one tracking id of one model, the target log; slate logs are not replayed) is run
through the candidate config's DAG on the logged features and its score compared with the logged one:

* **embedded** (default): the DAG runs in this process. Components of the ``feature_components``
  section whose outputs are all in the log are not run: the logged values stand in (the features as
  served, not as the store holds them today). Every other component runs; the logged columns that no
  running component produces go in as request features.
* ``--server HOST:PORT``: the same request features are sent to a running server (which must serve
  the candidate config); suited to models whose features come with the request.

A log is replayable when it holds the features the candidate's models read: the default logged schema
(``log_features: false``) holds every feature-component, numerix and predator output (and numerix inputs);
``log_features: true`` logs exactly ``response_config.features``, which must then list the model inputs.
A log without features (no schema, or none of the inputs) is refused with the reason.

Report per model: rows replayed / skipped (and why), score deltas (mean, p50 / p99 absolute), sign flips
at ``--threshold``, Spearman and Kendall per request, top-k overlap; ``--output`` writes a Parquet file
of (request, target, old, new); ``--plot`` a PNG (needs the ``plot`` extra: matplotlib).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inferflow_core.api import (
    CompiledModel,
    Component,
    DataType,
    InitialData,
    RequestInfo,
    RunContext,
    Runtime,
)
from inferflow_core.api import sources as config_sources
from inferflow_core.api import stats as rank_stats

from .cli import Schemas, read_files
from .kafka_source import KafkaSourceError, is_kafka, parse_source, read_kafka
from .schema import derive_schema

FEATURE_SECTION = "feature_components"


class ReplayError(Exception):
    """The logs or the config cannot be replayed (the message says why)."""


@dataclass
class LoggedRequest:
    model_id: str
    tracking_id: str
    entities: list[str]
    features: dict[str, list[str | None]]  # column -> one text cell per entity (None = missing)
    key: tuple[str, str, int] = ("", "", 0)  # (model, tracking id, created_at): one logged request


def logged_requests(lines: Iterable[dict[str, Any]], skipped: dict[str, int]) -> Iterator[LoggedRequest]:
    """Group decoded log lines (``inferflow logs read``) into requests, in log order."""
    current: LoggedRequest | None = None
    for line in lines:
        if line["event_name"].endswith("slate_logs"):
            skipped["slate log rows (not replayed)"] = skipped.get("slate log rows (not replayed)", 0) + 1
            continue
        feats = line.get("features")
        if feats is None:
            raise ReplayError(
                f"log of model {line['model_config_id']!r} has no schema (no .schema.json sidecar, no "
                "--schema, not in --log-config-dir): its features cannot be read, so it cannot be replayed"
            )
        key = (line["model_config_id"], line["tracking_id"], line["created_at"])
        if current is None or current.key != key:
            if current is not None:
                yield current
            current = LoggedRequest(line["model_config_id"], line["tracking_id"], [], {}, key)
        current.entities.append(line["entity"])
        for name, value in feats.items():
            current.features.setdefault(name, []).append(value)
    if current is not None:
        yield current


# -- the candidate DAG ----------------------------------------------------------------------------------
class _Logged(Component):
    """Stands in for a feature component whose outputs the log holds: writes nothing, they are there."""

    kind = "logged"

    def __init__(self, original: Component) -> None:
        super().__init__(original.name, original.model_id)
        self.original = original

    def outputs(self) -> Sequence[Any]:
        return self.original.outputs()

    async def run(self, ctx: RunContext) -> None:
        return None


def _sections(model: CompiledModel) -> dict[str, str]:
    out: dict[str, str] = {}
    for section, entries in model.config.component_config.sections().items():
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("component"), str):
                out[entry["component"]] = section
    return out


@dataclass
class Plan:
    model: CompiledModel  # the variant run (logged stand-ins)
    score: str
    request_columns: list[str]  # logged columns sent as request features
    stand_ins: list[str]
    notes: list[str] = field(default_factory=list)
    vectors: frozenset[str] = frozenset()  # numeric vector columns: logged "a,b" -> request text "a:b"

    def request_texts(self, req: LoggedRequest) -> dict[str, list[str | None]]:
        """The request features of ``req`` in the request text format."""
        id_column = self.model.config.response_config.id_column
        out: dict[str, list[str | None]] = {}
        for name in self.request_columns:
            if name == id_column:
                continue
            cells = req.features[name]
            if name in self.vectors:
                cells = [None if c is None else c.replace(",", ":") for c in cells]
            out[name] = cells
        return out


def plan_for(model: CompiledModel, logged: Sequence[str], score: str | None) -> Plan:
    """Which components run, which logged columns go in, which score is compared."""
    have = set(logged)
    sections = _sections(model)
    stand_ins, notes = [], []
    for name, comp in model.components.items():
        outs = [s.name for s in comp.outputs() if not s.slate and s.constant is None]
        if sections.get(name) == FEATURE_SECTION and outs:
            missing = [o for o in outs if o not in have]
            if not missing:
                stand_ins.append(name)
            else:
                notes.append(f"component {name!r} runs (the log lacks {missing[:3]}...)")
    produced = {
        s.name for n, c in model.components.items() if n not in stand_ins for s in c.outputs() if not s.slate
    }
    response = model.config.response_config
    if score is None:
        candidates = [f for f in response.features[1:] if f in produced and f in have]
        if not candidates:
            raise ReplayError(
                f"model {model.model_id!r}: no response feature is both produced by the candidate and logged "
                "(pass --score COLUMN)"
            )
        score = candidates[0]
    if score not in produced:
        raise ReplayError(f"model {model.model_id!r}: the candidate does not produce --score {score!r}")
    if score not in have:
        raise ReplayError(f"the log of model {model.model_id!r} holds no {score!r}: nothing to compare with")
    request_columns = [c for c in logged if c not in produced]
    reads = {r.name for n, c in model.components.items() if n not in stand_ins for r in c.reads()}
    if reads and not (reads & (set(request_columns) | produced)):
        raise ReplayError(
            f"the log of model {model.model_id!r} holds none of the features the candidate reads "
            f"({sorted(reads)[:5]}...): log with the default schema or list the inputs in "
            "response_config.features with log_features: true"
        )
    nodes = {n: (_Logged(c) if n in stand_ins else c) for n, c in model.nodes.items()}
    variant = dataclasses.replace(model, nodes=nodes, request_columns=())  # stand-ins read nothing
    vectors = set()
    for name in request_columns:
        spec = model.column_spec(name)
        if spec is not None and spec.dtype.is_vector and spec.dtype.scalar is not DataType.STRING:
            vectors.add(name)
    return Plan(variant, score, request_columns, stand_ins, notes, frozenset(vectors))


def _floats(cells: Sequence[str | None]) -> np.ndarray:
    out = np.full(len(cells), np.nan)
    for i, c in enumerate(cells):
        if c:
            with contextlib.suppress(ValueError):  # a non-numeric cell stays missing
                out[i] = float(c)
    return out


async def _embedded(runtime: Runtime, plan: Plan, req: LoggedRequest) -> tuple[np.ndarray, list[str]]:
    id_column = plan.model.config.response_config.id_column
    texts: dict[str, Any] = {id_column: req.entities}
    for name, cells in plan.request_texts(req).items():
        texts[name] = ["" if v is None else v for v in cells]
    initial = InitialData(rows=len(req.entities), texts=texts)
    ctx = await runtime.execute(
        plan.model.model_id, initial, RequestInfo("pointwise", req.tracking_id), model=plan.model
    )
    values, valid = ctx.matrix.read(plan.score)
    new = np.where(valid, values.astype(np.float64), np.nan)
    return new, [f"{f.component}: {f.kind}" for f in ctx.failures]


def _remote(client: Any, plan: Plan, model_id: str, req: LoggedRequest) -> tuple[np.ndarray, list[str]]:
    feats = plan.request_texts(req)
    result = client.pointwise(model_id, req.entities, features=feats or None)
    cols = result.to_numpy()
    if plan.score not in cols:
        return np.full(len(req.entities), np.nan), [f"response has no {plan.score!r}"]
    new = np.asarray(cols[plan.score], dtype=np.float64)
    valid = result.valid.get(plan.score)
    if valid is not None:
        new = np.where(valid, new, np.nan)
    return new, [result.request_error] if result.request_error else []


# -- the report ------------------------------------------------------------------------------------------
@dataclass
class ModelReport:
    model_id: str
    score: str
    rows_replayed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    old: list[float] = field(default_factory=list)
    new: list[float] = field(default_factory=list)
    per_request: list[tuple[float, float, float]] = field(default_factory=list)  # spearman, kendall, top-k

    def skip(self, reason: str, n: int) -> None:
        if n:
            self.skipped[reason] = self.skipped.get(reason, 0) + n

    def add(self, req: LoggedRequest, old: np.ndarray, new: np.ndarray, failures: list[str], k: int) -> None:
        no_old, no_new = np.isnan(old), np.isnan(new)
        self.skip("no logged score", int(no_old.sum()))
        why = "candidate produced no score" + (f" ({failures[0]})" if failures else "")
        self.skip(why, int((~no_old & no_new).sum()))
        ok = ~no_old & ~no_new
        self.rows_replayed += int(ok.sum())
        for i in np.flatnonzero(ok).tolist():
            self.requests.append(req.tracking_id)
            self.targets.append(req.entities[i])
        self.old += old[ok].tolist()
        self.new += new[ok].tolist()
        if ok.sum() >= 2:
            a, b = old[ok], new[ok]
            self.per_request.append(
                (rank_stats.spearman(a, b), rank_stats.kendall_tau_b(a, b), rank_stats.top_k_overlap(a, b, k))
            )

    def summary(self, threshold: float, k: int) -> dict[str, Any]:
        old, new = np.asarray(self.old), np.asarray(self.new)
        delta = new - old
        stats = np.asarray(self.per_request, dtype=np.float64).reshape(-1, 3)

        def agg(col: int) -> dict[str, float | None]:
            v = stats[:, col][~np.isnan(stats[:, col])]
            return {"mean": _num(v.mean()), "median": _num(np.median(v))} if v.size else {"mean": None}

        return {
            "model_id": self.model_id,
            "score": self.score,
            "requests": len(set(self.requests)),
            "rows_replayed": self.rows_replayed,
            "rows_skipped": dict(self.skipped),
            "delta_mean": _num(delta.mean()) if delta.size else None,
            "abs_delta_p50": _num(np.percentile(np.abs(delta), 50)) if delta.size else None,
            "abs_delta_p99": _num(np.percentile(np.abs(delta), 99)) if delta.size else None,
            "threshold": threshold,
            "sign_flips": int(((old >= threshold) != (new >= threshold)).sum()),
            "spearman_per_request": agg(0),
            "kendall_per_request": agg(1),
            f"top{k}_overlap_per_request": agg(2),
        }


def _num(x: Any) -> float:
    return round(float(x), 9)


def config_schemas(config_dir: str) -> Schemas:
    """The logged schemas of the models of a config tree (what its server writes), by schema key."""
    snap = Runtime().apply_tree(config_sources.read_config_dir(Path(config_dir)))
    out: Schemas = {}
    for model_id, model in snap.models.items():
        schema = derive_schema(model)
        out[model_id] = schema.entries
        if schema.slate_entries:
            out[model_id + "#slate"] = schema.slate_entries
    if not out:
        why = "; ".join(f"{k}: {e.message}" for k, e in snap.errors.items()) or "no model config found"
        raise ReplayError(f"--log-config-dir {config_dir}: no model compiles ({why})")
    return out


def read_sources(
    sources: Sequence[str],
    schema: str | None = None,
    log_config_dir: str | None = None,
    kafka_timeout: float = 30.0,
) -> Iterator[dict[str, Any]]:
    """The decoded records of every source in order: files / directories, and Kafka topic ranges."""
    for source in sources:  # a malformed URL fails before anything is read
        if is_kafka(source):
            parse_source(source)
    kafka_schemas: Schemas | None = None
    for source in sources:
        if not is_kafka(source):
            yield from read_files([source], schema)
            continue
        if kafka_schemas is None:
            if schema is not None:
                from .cli import load_schemas

                kafka_schemas = load_schemas(Path(schema))
            elif log_config_dir is not None:
                kafka_schemas = config_schemas(log_config_dir)
            else:
                raise ReplayError(
                    f"{source}: Kafka messages carry no schema: pass --log-config-dir DIR (the config that "
                    "wrote the logs) or --schema FILE"
                )
        yield from read_kafka(source, kafka_schemas, kafka_timeout)


def replay(
    files: Sequence[str],
    config_dir: str,
    model_id: str | None = None,
    server: str | None = None,
    score: str | None = None,
    threshold: float = 0.5,
    k: int = 10,
    schema: str | None = None,
    log_config_dir: str | None = None,
    kafka_timeout: float = 30.0,
) -> dict[str, ModelReport]:
    tree = config_sources.read_config_dir(Path(config_dir))
    runtime = Runtime()
    snap = runtime.apply_tree(tree)
    skipped_lines: dict[str, int] = {}
    reports: dict[str, ModelReport] = {}
    plans: dict[str, Plan] = {}
    client = None
    if server is not None:
        from inferflow_core.api import InferflowClient

        client = InferflowClient(server)
    loop = asyncio.new_event_loop()
    try:
        records = read_sources(files, schema, log_config_dir, kafka_timeout)
        for req in logged_requests(records, skipped_lines):
            if model_id is not None and req.model_id != model_id:
                continue
            target = req.model_id
            if target not in plans:
                model = snap.models.get(target)
                if model is None:
                    why = snap.errors.get(target)
                    raise ReplayError(
                        f"model {target!r} is not in {config_dir}" + (f" ({why.message})" if why else "")
                    )
                plans[target] = plan_for(model, list(req.features), score)
                reports[target] = ModelReport(target, plans[target].score)
            plan, report = plans[target], reports[target]
            if client is None:
                new, failures = loop.run_until_complete(_embedded(runtime, plan, req))
            else:
                new, failures = _remote(client, plan, target, req)
            report.add(req, _floats(req.features[plan.score]), new, failures, k)
    finally:
        loop.close()
        if client is not None:
            client.close()
    if not reports:
        raise ReplayError(
            "no replayable request in the logs" + (f" ({skipped_lines})" if skipped_lines else "")
        )
    for report in reports.values():
        for reason, n in skipped_lines.items():
            report.skip(reason, n)
    return reports


def write_parquet(reports: dict[str, ModelReport], path: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        (r.model_id, q, t, o, n)
        for r in reports.values()
        for q, t, o, n in zip(r.requests, r.targets, r.old, r.new, strict=True)
    ]
    names = ["model_id", "request", "target", "old", "new"]
    pq.write_table(pa.table({n: [row[i] for row in rows] for i, n in enumerate(names)}), path)


def write_plot(reports: dict[str, ModelReport], path: str) -> None:
    """A PNG per run: for each model, the old-vs-new score scatter and the histogram of ``new - old``.

    Drawn on a bare Agg canvas (no pyplot, no display, no global backend switch)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ReplayError("--plot needs matplotlib: pip install 'inferflow-logging[plot]'") from None
    fig = Figure(figsize=(10, 4 * len(reports)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(reports), 2, squeeze=False)
    for (ax_scatter, ax_hist), report in zip(axes, reports.values(), strict=True):
        old, new = np.asarray(report.old), np.asarray(report.new)
        ax_scatter.scatter(old, new, s=4, alpha=0.5)
        if old.size:
            lo, hi = float(min(old.min(), new.min())), float(max(old.max(), new.max()))
            ax_scatter.plot([lo, hi], [lo, hi], color="grey", linewidth=0.8)  # new == old
        ax_scatter.set(
            xlabel=f"logged {report.score}", ylabel=f"replayed {report.score}", title=report.model_id
        )
        ax_hist.hist(new - old, bins=50)
        ax_hist.set(xlabel="new - old", ylabel="rows", title=f"{report.model_id}: score delta")
    fig.tight_layout()
    fig.savefig(path, format="png")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="inferflow replay", description=(__doc__ or "").split("\n\n")[0].split(": ", 1)[-1]
    )
    p.add_argument(
        "files",
        nargs="+",
        metavar="LOGS",
        help="inference-log files (.binpb, any registered format), directories of them, or Kafka topic "
        "ranges kafka://HOST:PORT[,HOST:PORT]/TOPIC[?from=N&to=M&partition=P[,P]] (offsets per partition, "
        "from inclusive, to exclusive; default: the whole topic up to its high watermark at start)",
    )
    p.add_argument(
        "--config-dir", required=True, help="the candidate config tree (as `inferflow serve` reads it)"
    )
    p.add_argument("--model-id", help="replay only the logs of this model (default: every logged model)")
    p.add_argument("--server", help="HOST:PORT of a server serving the candidate (default: run embedded)")
    p.add_argument("--score", help="the score column compared (default: the first produced response feature)")
    p.add_argument(
        "--threshold", type=float, default=0.5, help="sign flips: old and new on either side of it"
    )
    p.add_argument("--top-k", type=int, default=10, help="k of the top-k overlap per request (default 10)")
    p.add_argument("--schema", help="schema JSON for logs without a .schema.json sidecar (and Kafka ranges)")
    p.add_argument(
        "--log-config-dir",
        help="the config tree that wrote the logs: Kafka messages are decoded with its models' "
        "logged schemas",
    )
    p.add_argument(
        "--kafka-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="bound on reaching the broker and reading each Kafka range (default 30)",
    )
    p.add_argument(
        "--output", "-o", help="write (model_id, request, target, old, new) rows to this Parquet file"
    )
    p.add_argument(
        "--plot",
        metavar="PATH.png",
        help="write a PNG (score scatter old vs new, delta histogram) to this file; "
        "needs matplotlib: pip install 'inferflow-logging[plot]'",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    args = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        reports = replay(
            args.files, args.config_dir, args.model_id, args.server, args.score, args.threshold, args.top_k,
            args.schema, args.log_config_dir, args.kafka_timeout,
        )  # fmt: skip
        if args.output:
            write_parquet(reports, args.output)
        if args.plot:
            write_plot(reports, args.plot)
    except (ReplayError, KafkaSourceError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    summaries = [r.summary(args.threshold, args.top_k) for r in reports.values()]
    if args.json:
        print(json.dumps(summaries if len(summaries) > 1 else summaries[0], indent=2))
    else:
        for s in summaries:
            print(format_summary(s))
    return 0


def format_summary(s: dict[str, Any]) -> str:
    lines = [f"model {s['model_id']}: score {s['score']!r}, {s['requests']} requests"]
    lines.append(f"  rows replayed {s['rows_replayed']}, skipped {sum(s['rows_skipped'].values())}")
    lines += [f"    {n} {reason}" for reason, n in s["rows_skipped"].items()]
    lines.append(
        f"  delta mean {s['delta_mean']}, |delta| p50 {s['abs_delta_p50']}, p99 {s['abs_delta_p99']}; "
        f"sign flips at {s['threshold']}: {s['sign_flips']}"
    )
    for key in [k for k in s if k.endswith("_per_request")]:
        v = s[key]
        lines.append(f"  {key.replace('_', ' ')}: mean {v.get('mean')}, median {v.get('median')}")
    return "\n".join(lines)
