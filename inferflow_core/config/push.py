"""``inferflow config push DIR [--dry-run]``: write a config directory into etcd.

The directory mirrors the etcd tree (file ``DIR/<key>.json`` = etcd key ``/config/<key>``). Changed and
new keys are written in one etcd transaction (so a watching server sees one consistent change); keys
that exist only in etcd are listed and left alone. ``--dry-run`` prints the diff and writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import sys
from dataclasses import dataclass, field

import aetcd

from ..tls import ClientTls, TlsConfigError
from .etcd_source import ROOT, etcd_client, etcd_tls, parse_endpoint
from .settings import ServiceSettings
from .sources import read_config_dir


@dataclass
class PushPlan:
    added: dict[str, str] = field(default_factory=dict)
    changed: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (old, new)
    unchanged: list[str] = field(default_factory=list)
    only_in_etcd: list[str] = field(default_factory=list)

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
) -> PushPlan:
    host, port = parse_endpoint(server)
    async with etcd_client(host, port, username, password, 10, tls) as client:
        plan = plan_push(local, await _remote(client, _top_prefixes(list(local))))
        writes = plan.writes
        if writes and not dry_run:
            ops = [client.transactions.put((ROOT + k).encode(), v.encode()) for k, v in writes.items()]
            await client.transaction(compare=[], success=ops, failure=[])
    return plan


def _validate_json(local: dict[str, str]) -> list[str]:
    bad = []
    for key, value in local.items():
        try:
            json.loads(value)
        except ValueError as exc:
            bad.append(f"{key}: not valid JSON: {exc}")
    return bad


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
        lines.append(f"  {key} (only in etcd, left alone)")
    verb = "would write" if dry_run else "wrote"
    lines.append(
        f"{verb} {len(plan.writes)} key(s): {len(plan.added)} new, {len(plan.changed)} changed, "
        f"{len(plan.unchanged)} unchanged"
    )
    return "\n".join(lines)


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
    plan = asyncio.run(
        push(settings.etcd_server, local, args.dry_run, settings.etcd_username, settings.etcd_password, tls)
    )
    print(report(plan, args.dry_run))
    return 0
