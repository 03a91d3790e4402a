"""deploy/monitoring/: every metric the Grafana dashboard and the alert rules query exists on a running
server (with every installed plugin loaded), and the metrics hygiene the dashboard relies on."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from pathlib import Path

from inferflow_core.observability.metrics import LATENCY_BUCKETS
from inferflow_core.runtime import Runtime
from inferflow_core.testing.server import running_server

ROOT = Path(__file__).resolve().parents[1]
MONITORING = ROOT / "deploy/monitoring"
METRIC = re.compile(r"\b((?:inferflow|process|python)_[a-zA-Z0-9_]+)\b")


def _queried(exprs: list[str]) -> set[str]:
    return {m for e in exprs for m in METRIC.findall(e)}


def _dashboard_exprs() -> list[str]:
    dash = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs += [v["query"] for v in dash["templating"]["list"] if v["type"] == "query"]
    return exprs


def _rule_exprs() -> list[str]:
    text = (MONITORING / "prometheusrule.yaml").read_text()
    return re.findall(r"expr: [|]?\s*\n?((?:.+\n?)+?)\s*(?:for:|labels:)", text)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return str(r.read().decode())


def _families(exposition: str) -> dict[str, str]:
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", exposition, re.M))


def _exists(name: str, families: dict[str, str]) -> bool:
    if name in families:
        return True
    for suffix, kinds in (("_total", {"counter"}), ("_bucket", {"histogram"}), ("_sum", {"histogram"}),
                          ("_count", {"histogram"})):  # fmt: skip
        base = name.removesuffix(suffix)
        if base != name and families.get(base) in kinds:
            return True
    return False


async def test_every_queried_metric_exists_on_a_running_server() -> None:
    runtime = Runtime()
    async with running_server(runtime) as srv:
        url = f"http://127.0.0.1:{srv.server.http_port}/metrics"
        text = await asyncio.to_thread(_get, url)
    families = _families(text)
    queried = _queried(_dashboard_exprs()) | _queried(_rule_exprs())
    assert len(queried) >= 15
    missing = sorted(n for n in queried if not _exists(n, families))
    assert not missing, f"queried but not exposed: {missing}"
    # hygiene: explanatory HELP, no _created series, buckets beyond the default deadline, build info
    assert "_created" not in text
    helps = dict(re.findall(r"^# HELP (inferflow_\S+) (.+)$", text, re.M))
    short = [n for n, h in helps.items() if len(h.split()) < 4]
    assert not short, f"HELP text too short: {short}"
    assert max(LATENCY_BUCKETS) >= runtime.settings.default_deadline_ms / 1000
    assert re.search(r'^inferflow_build_info\{.*version="[^"]+".*\} 1\.0$', text, re.M)
    assert "python_gc_collections_total" in text
    assert "process_cpu_seconds_total" in text


def test_rule_file_has_alerts() -> None:
    assert len(_rule_exprs()) >= 5
