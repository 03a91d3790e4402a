"""Call a model from the shell with the Python client (inferflow_core.client); print a table or JSON.

Targets, context and features come from flags or from a request file (``--request FILE``, JSON or JSON
Lines, ``-`` = stdin), one request per object::

    {"model_id": "bench_ctr", "targets": ["954", "614"], "context": {"user_id": "42"},
     "features": {"price": [3.5, 4.0]}, "types": {"price": "fp32"}, "pairs": [[0, 1]]}

``pairs`` / ``slates`` (lists of target indices) select PairWise / SlateWise, else PointWise.
Exit code: 0 when every response is free of errors, 1 when a call failed or a response reports an
error, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._console import table
from .dtypes import parse_dtype
from .errors import UsageError

if TYPE_CHECKING:  # the client (grpc, protobuf) is imported when a call is made, not for `--help`
    from .client import GroupedResult, InferflowClient, PointwiseResult, Table

EPILOG = """\
values: NAME=VALUE sends one value for every target, NAME=V1,V2,... one value per target; a vector
  value separates its elements with ':' (emb=0.1:0.2). NAME:TYPE=VALUE declares the type (fp32, int64,
  fp32_vector ...); without it a value travels as text (DataTypeString) and the server converts it to
  the type its components declare.
examples:
  inferflow predict bench_ctr --target 954 --target 614 --context user_id=42
  inferflow predict bench_ctr_pairwise --target 954 --target 614 --context user_id=42 --pairs 0:1 --json
  inferflow predict bench_ctr --http --server 127.0.0.1:8086 --target 954 --context user_id=42
  inferflow predict --request requests.jsonl --json"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_id", nargs="?", help="model config id (optional with --request)")
    p.add_argument("--target", "-t", action="append", default=[], metavar="ID", help="a target id (repeat)")
    p.add_argument(
        "--context",
        "-c",
        action="append",
        default=[],
        metavar="NAME[:TYPE]=VALUE",
        help="a context feature, one value for the request (repeat)",
    )
    p.add_argument(
        "--feature",
        "-f",
        action="append",
        default=[],
        metavar="NAME[:TYPE]=VALUES",
        help="a target feature: one value for all targets or one per target, comma-separated",
    )
    p.add_argument(
        "--pairs",
        action="append",
        default=[],
        metavar="I:J",
        help="a pair of target indices (repeat): calls PairWise",
    )
    p.add_argument(
        "--slates",
        action="append",
        default=[],
        metavar="I,J,...",
        help="a slate of target indices (repeat): calls SlateWise",
    )
    p.add_argument("--request", "-r", metavar="FILE", help="JSON / JSONL request file ('-' = stdin)")
    p.add_argument(
        "--server",
        "-s",
        default=None,
        help="HOST:PORT (default 127.0.0.1:8085, with --http 127.0.0.1:8086: the HTTP port next to it)",
    )
    p.add_argument(
        "--http",
        action="store_true",
        help="call the server's HTTP API (POST /v1/models/ID/...) instead of gRPC",
    )
    p.add_argument(
        "--timeout", type=float, default=30.0, help="deadline per call, seconds (default %(default)s)"
    )
    p.add_argument(
        "--encoding",
        choices=("text", "binary"),
        default="text",
        help="value encoding; must match the server's INFERFLOW_REQUEST_VALUE_ENCODING",
    )
    p.add_argument("--tls", action="store_true", help="connect with TLS (system root certificates)")
    p.add_argument("--json", action="store_true", help="print one JSON object per request")
    p.add_argument(
        "--explain",
        nargs="?",
        const="1",
        choices=("1", "columns"),
        help="ask for EXPLAIN ANALYZE (server needs INFERFLOW_EXPLAIN_ENABLED=true) and print it as a tree "
        "with timings ('columns': also sample the columns each component wrote)",
    )


def _named(item: str, flag: str) -> tuple[str, str | None, str]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise ValueError(f"{flag} {item!r}: expected NAME=VALUE or NAME:TYPE=VALUE")
    name, _, dtype = name.partition(":")
    if dtype:
        parse_dtype(dtype)  # a bad type name is a usage error here, not a server error
    return name, dtype or None, value


def _indices(items: list[str], flag: str, size: int | None = None) -> list[list[int]]:
    out = []
    for item in items:
        try:
            group = [int(x) for x in re.split(r"[,:]", item) if x != ""]
        except ValueError:
            raise ValueError(f"{flag} {item!r}: expected target indices like 0:1 or 0,1,2") from None
        if size is not None and len(group) != size:
            raise ValueError(f"{flag} {item!r}: a pair has exactly two target indices")
        out.append(group)
    return out


def requests_from_flags(args: argparse.Namespace) -> list[dict[str, Any]]:
    if not args.model_id:
        raise ValueError("a MODEL_ID (or --request FILE) is required")
    if not args.target:
        raise ValueError("at least one --target is required")
    n = len(args.target)
    req: dict[str, Any] = {"model_id": args.model_id, "targets": args.target, "types": {}}
    req["context"] = {}
    for item in args.context:
        name, dtype, value = _named(item, "--context")
        req["context"][name] = value
        if dtype:
            req["types"][name] = dtype
    req["features"] = {}
    for item in args.feature:
        name, dtype, value = _named(item, "--feature")
        values = value.split(",")
        if len(values) not in (1, n):
            raise ValueError(f"--feature {name}: {len(values)} values for {n} targets (give 1 or {n})")
        req["features"][name] = values * n if len(values) == 1 else values
        if dtype:
            req["types"][name] = dtype
    if args.pairs and args.slates:
        raise ValueError("give --pairs or --slates, not both")
    if args.pairs:
        req["pairs"] = _indices(args.pairs, "--pairs", 2)
    if args.slates:
        req["slates"] = _indices(args.slates, "--slates")
    return [req]


def requests_from_file(name: str) -> list[dict[str, Any]]:
    text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    try:
        data = json.loads(text)
        items = data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        items = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{name}:{lineno}: not JSON: {exc.msg}") from None
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not (item.get("model_id") or item.get("model_config_id")):
            raise ValueError(f"{name}: request {i} must be an object with a model_id")
        unknown = set(item) - {
            "model_id",
            "model_config_id",
            "targets",
            "context",
            "features",
            "types",
            "pairs",
            "slates",
            "pair_features",
            "slate_features",
            "tracking_id",
        }
        if unknown:
            raise ValueError(f"{name}: request {i}: unknown key(s) {', '.join(sorted(unknown))}")
    return items


def call(
    client: InferflowClient, req: dict[str, Any], explain: str | None = None
) -> PointwiseResult | GroupedResult:
    model = req.get("model_id") or req["model_config_id"]
    common = {
        "explain": explain or False,
        "features": req.get("features") or None,
        "context": req.get("context") or None,
        "types": req.get("types") or None,
        "tracking_id": req.get("tracking_id", ""),
    }
    targets = [str(t) for t in req.get("targets", [])]
    if req.get("pairs"):
        return client.pairwise(model, targets, req["pairs"], pair_features=req.get("pair_features"), **common)
    if req.get("slates"):
        return client.slatewise(
            model, targets, req["slates"], slate_features=req.get("slate_features"), **common
        )
    return client.pointwise(model, targets, **common)


def as_json(req: dict[str, Any], result: PointwiseResult | GroupedResult) -> dict[str, Any]:
    from .client import GroupedResult

    out: dict[str, Any] = {"model_id": req.get("model_id") or req.get("model_config_id")}
    if isinstance(result, GroupedResult):
        out[f"{result.kind}s"] = result.groups.to_dicts()
        if any(result.groups.errors):
            out[f"{result.kind}_errors"] = result.groups.errors
        targets: Table = result.targets
    else:
        targets = result
    out["targets"] = targets.to_dicts()
    if any(targets.errors):
        out["target_errors"] = targets.errors
    out["request_error"] = result.request_error
    return out


def _print_table(title: str, rows: Table, lead: list[tuple[str, list[Any]]]) -> None:
    print(f"{title} ({len(rows)})")
    names = [n for n, _ in lead] + rows.names
    body = [[col[i] for _, col in lead] + list(row.values()) for i, row in enumerate(rows.to_dicts())]
    if any(rows.errors):
        names.append("error")
        body = [[*r, e or None] for r, e in zip(body, rows.errors, strict=True)]
    table(names, body)


def print_result(req: dict[str, Any], result: PointwiseResult | GroupedResult) -> None:
    from .client import GroupedResult

    print(f"model {req.get('model_id') or req.get('model_config_id')}")
    if isinstance(result, GroupedResult):
        groups = req.get(f"{result.kind}s", [])
        ids = [str(t) for t in req.get("targets", [])]
        members = [",".join(ids[i] if 0 <= i < len(ids) else "?" for i in g) for g in groups]
        _print_table(
            f"{result.kind}s", result.groups, [(result.kind, list(range(len(groups)))), ("targets", members)]
        )
        _print_table("targets", result.targets, [])
    else:
        _print_table("targets", result, [])
    if result.request_error:
        print(f"request_error: {result.request_error}")


def explain_tree(report: dict[str, Any] | None) -> list[str]:
    """The EXPLAIN report as lines: each node under its prerequisite, with its timing and rows."""
    if report is None:
        return ["explain: the server sent none (INFERFLOW_EXPLAIN_ENABLED off, or not for this caller)"]
    lines = [
        f"EXPLAIN ANALYZE {report.get('model_id', '')} ({report.get('api', '')}): "
        f"{report.get('rows', '?')} rows, {report.get('total_ms', 0):.3f} ms"
    ]
    prereqs: dict[str, list[str]] = (report.get("dag") or {}).get("prerequisites", {})
    depth: dict[str, int] = {}
    for node in report.get("nodes", []):
        name = node["name"]
        deps = prereqs.get(name, [])
        depth[name] = 1 + max((depth.get(d, 0) for d in deps), default=-1)
        pad = "   " * depth[name] + ("└─ " if depth[name] else "")
        if "start_ms" in node:
            timing = (
                f"{node['start_ms']:8.3f} -> {node['end_ms']:8.3f} ms ({node['duration_ms']:.3f} ms)"
                f"  rows {node['rows_in']} -> {'-' if node['rows_out'] is None else node['rows_out']}"
            )
        else:
            timing = "not timed"
        after = f"  after {', '.join(deps)}" if len(deps) > 1 else ""
        lines.append(f"{pad}{name} [{node.get('type', '')}] {timing}  {node.get('outcome', '')}{after}")
        extra = "   " * (depth[name] + 1)
        if node.get("counts"):
            lines.append(extra + "counts " + ", ".join(f"{k}={v}" for k, v in node["counts"].items()))
        for c in node.get("calls", []):
            ms = f" {c['ms']:.3f} ms" if "ms" in c else ""
            lines.append(f"{extra}call {c['endpoint']}: {c['batches']} batch(es), {c['rows']} rows{ms}")
        for col, sample in (node.get("columns") or {}).items():
            lines.append(f"{extra}{col} = {sample}")
    if report.get("deferred_jobs"):
        lines.append(f"{report['deferred_jobs']} deferred job(s) (e.g. shadow models) run after the response")
    for f in report.get("failures", []):
        lines.append(f"failure {f['component']} ({f['kind']}): {f.get('message', '')}")
    if report.get("truncated"):
        lines.append(f"(truncated to fit the trailer: dropped {', '.join(report['truncated'])})")
    return lines


def print_explain(report: dict[str, Any] | None) -> None:
    print("\n".join(explain_tree(report)))


def main(args: argparse.Namespace) -> int:
    try:
        reqs = requests_from_file(args.request) if args.request else requests_from_flags(args)
    except ValueError as exc:  # includes a bad type name (DataTypeError)
        raise UsageError(str(exc)) from exc
    from .client import InferflowClient

    ok = True
    transport = "http" if args.http else "grpc"
    server = args.server or ("127.0.0.1:8086" if args.http else "127.0.0.1:8085")
    options = {"timeout": args.timeout, "encoding": args.encoding, "tls": args.tls, "transport": transport}
    with InferflowClient(server, **options) as client:
        for req in reqs:
            result = call(client, req, args.explain)
            ok &= result.ok
            if args.json:
                out = as_json(req, result)
                if args.explain:
                    out["explain"] = result.explain
                print(json.dumps(out, ensure_ascii=False))
            else:
                print_result(req, result)
                if args.explain:
                    print_explain(result.explain)
    return 0 if ok else 1
