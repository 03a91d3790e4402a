"""``inferflow config push DIR [--dry-run] [--force] [--prune]``: write a config directory into etcd.

The directory mirrors the etcd tree (file ``DIR/<key>.json`` = etcd key ``/config/<key>``). Every model
config is validated first, exactly as a server would load it (against the directory overlaid on what
etcd already holds, so expressions kept only in etcd are found); an invalid model stops the push, and
nothing is written, unless ``--force``. Changed and new keys are written in one etcd transaction (so a
watching server sees one consistent change); keys that exist only in etcd are listed and left alone,
except that ``--prune`` deletes model configs (``.../config-map/<id>``) that are not in the directory.
``--dry-run`` prints the diff and writes nothing. etcd being unreachable is one line, exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aetcd

from .config.etcd_source import ROOT, etcd_client, etcd_tls, parse_endpoint
from .config.settings import ServiceSettings
from .config.sources import read_config_dir
from .tls import ClientTls, TlsConfigError


@dataclass
class PushPlan:
    added: dict[str, str] = field(default_factory=dict)
    changed: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (old, new)
    unchanged: list[str] = field(default_factory=list)
    only_in_etcd: list[str] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)  # --prune: model configs only in etcd

    @property
    def writes(self) -> dict[str, str]:
        return {**self.added, **{k: new for k, (_, new) in self.changed.items()}}


def _top_prefixes(keys: list[str]) -> list[str]:
    """Prefixes to compare against: ``inferflow/services/<app>/model-config/`` style roots of the files."""
    out: set[str] = set()
    for key in keys:
        parts = key.split("/")
        if len(parts) >= 4 and parts[0] == "inferflow" and parts[1] == "services":
            out.add("/".join(parts[:4]) + "/")
        else:
            out.add("/".join(parts[:-1]) + "/" if len(parts) > 1 else key)
    return sorted(out)


def plan_push(local: dict[str, str], remote: dict[str, str]) -> PushPlan:
    plan = PushPlan()
    for key, value in sorted(local.items()):
        old = remote.get(key)
        if old is None:
            plan.added[key] = value
        elif old != value:
            plan.changed[key] = (old, value)
        else:
            plan.unchanged.append(key)
    plan.only_in_etcd = sorted(k for k in remote if k not in local)
    return plan


async def _remote(client: aetcd.Client, prefixes: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for prefix in prefixes:
        for kv in await client.get_prefix((ROOT + prefix).encode()):
            out[kv.key.decode()[len(ROOT) :]] = kv.value.decode("utf-8", "replace")
    return out


async def push(
    server: str,
    local: dict[str, str],
    dry_run: bool,
    username: str | None = None,
    password: str | None = None,
    tls: ClientTls | None = None,
    prune: bool = False,
    check: Callable[[dict[str, str], dict[str, str]], list[str]] | None = None,
    extra_prefixes: Sequence[str] = (),
) -> PushPlan:
    """Plan (and unless ``dry_run`` write) the push. ``check(view, local)`` returns the problems of the
    ``local`` models validated against ``view`` (etcd overlaid with the directory); any problem
    raises :class:`PushRefused` before anything is written."""
    host, port = parse_endpoint(server)
    async with etcd_client(host, port, username, password, 10, tls) as client:
        prefixes = _top_prefixes(list(local))
        remote = await _remote(client, prefixes)
        plan = plan_push(local, remote)
        if prune:
            plan.deletes = [k for k in plan.only_in_etcd if _is_model_key(k)]
        if check is not None:
            context = await _remote(client, [p for p in extra_prefixes if p not in prefixes])
            problems = check({**context, **remote, **local}, local)
            if problems:
                raise PushRefused(problems, plan)
        writes = plan.writes
        if (writes or plan.deletes) and not dry_run:
            ops = [client.transactions.put((ROOT + k).encode(), v.encode()) for k, v in writes.items()]
            ops += [client.transactions.delete((ROOT + k).encode()) for k in plan.deletes]
            await client.transaction(compare=[], success=ops, failure=[])
    return plan


class PushRefused(Exception):
    def __init__(self, problems: list[str], plan: PushPlan) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
        self.plan = plan


def _is_model_key(key: str) -> bool:
    parts = key.split("/")
    return len(parts) == 6 and parts[0] == "inferflow" and parts[3:5] == ["model-config", "config-map"]


def _validate_json(local: dict[str, str]) -> list[str]:
    bad = []
    for key, value in local.items():
        try:
            json.loads(value)
        except ValueError as exc:
            bad.append(f"{key}: not valid JSON: {exc}")
    return bad


def report_json(plan: PushPlan, dry_run: bool) -> str:
    """``config push --json``: what was (or would be) written and deleted, for scripts."""
    return json.dumps(
        {
            "dry_run": dry_run,
            "added": sorted(plan.added),
            "changed": sorted(plan.changed),
            "unchanged": sorted(plan.unchanged),
            "only_in_etcd": sorted(plan.only_in_etcd),
            "deleted": sorted(plan.deletes),
            "written": 0 if dry_run else len(plan.writes),
        }
    )


def report(plan: PushPlan, dry_run: bool) -> str:
    lines = []
    for key in plan.added:
        lines.append(f"+ {key} (new)")
    for key, (old, new) in plan.changed.items():
        lines.append(f"~ {key}")
        diff = difflib.unified_diff(
            old.splitlines(), new.splitlines(), f"etcd:{key}", f"dir:{key}", lineterm=""
        )
        lines.extend("    " + d for d in diff)
    for key in plan.only_in_etcd:
        if key in plan.deletes:
            lines.append(f"- {key} (only in etcd, {'would be ' if dry_run else ''}deleted: --prune)")
        else:
            lines.append(f"  {key} (only in etcd, left alone)")
    verb = "would write" if dry_run else "wrote"
    lines.append(
        f"{verb} {len(plan.writes)} key(s): {len(plan.added)} new, {len(plan.changed)} changed, "
        f"{len(plan.unchanged)} unchanged"
        + (f"; {'would delete' if dry_run else 'deleted'} {len(plan.deletes)}" if plan.deletes else "")
    )
    return "\n".join(lines)


Checker = Callable[[dict[str, str], dict[str, str]], list[str]]


def _checker(settings: ServiceSettings, force: bool) -> tuple[Checker, list[str]]:
    """A validation of the directory's models as the server would load them, and the config prefixes
    (plugins' extras, e.g. Numerix expressions) the validation may read from etcd."""
    from .cli import SERVICE_CONFIG, validate_models
    from .runtime import Runtime

    runtime = Runtime(settings)

    def check(view: dict[str, str], local: dict[str, str]) -> list[str]:
        local_models = {
            k.rsplit("/", 1)[1] if k.startswith(settings.config_map_prefix) else k: v
            for k, v in local.items()
            if _is_model_key(k)
        }
        problems = []
        for result in validate_models(runtime, view, local_models):
            what = result.model if result.model == SERVICE_CONFIG else f"model {result.model}"
            problems += [f"{what}: {p or '$'}: {m}" for p, m in result.errors]
        if problems and force:
            print("warning: pushing invalid model(s) (--force):\n  " + "\n  ".join(problems), file=sys.stderr)
            return []
        return problems

    return check, list(runtime.registry.config_prefixes)


def main(args: argparse.Namespace) -> int:
    settings = ServiceSettings()
    if not settings.etcd_server:
        print("error: set ETCD_SERVER (host:port) to push a config directory", file=sys.stderr)
        return 2
    try:
        local = read_config_dir(args.dir)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not local:
        print(f"error: no *.json files under {args.dir}", file=sys.stderr)
        return 1
    bad = _validate_json(local)
    if bad:
        print("error: refusing to push invalid JSON:\n  " + "\n  ".join(bad), file=sys.stderr)
        return 1
    try:
        tls = etcd_tls(settings)
    except TlsConfigError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    check, extra = _checker(settings, bool(getattr(args, "force", False)))
    try:
        plan = asyncio.run(
            push(
                settings.etcd_server,
                local,
                args.dry_run,
                settings.etcd_username,
                settings.etcd_password,
                tls,
                prune=bool(getattr(args, "prune", False)),
                check=check,
                extra_prefixes=extra,
            )
        )
    except PushRefused as exc:
        if getattr(args, "json", False):
            print(json.dumps({"refused": True, "problems": exc.problems}))
            return 1
        print(
            "error: refusing to push invalid model config(s) (nothing written; --force pushes anyway):\n  "
            + "\n  ".join(exc.problems),
            file=sys.stderr,
        )
        return 1
    except Exception as exc:  # etcd down, auth refused, ...: one line, no traceback
        print(f"error: etcd at {settings.etcd_server} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(report_json(plan, args.dry_run) if getattr(args, "json", False) else report(plan, args.dry_run))
    return 0
