"""``inferflow`` command line: serve | validate | config push | plugins | demo | bench (+ plugin commands).

Plugins add commands through the entry-point group ``inferflow.cli`` (name -> ``main(argv) -> int``),
e.g. ``inferflow logs read FILE`` from inferflow-logging.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .config.settings import ServiceSettings
from .config.sources import UNREADABLE, read_config_dir
from .errors import ConfigError

CLI_GROUP = "inferflow.cli"


def _plugin_commands() -> dict[str, md.EntryPoint]:
    return {ep.name: ep for ep in md.entry_points(group=CLI_GROUP)}


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate a model config file or every model of a config directory."""
    from .runtime import Runtime

    path = Path(args.path)
    runtime = Runtime(ServiceSettings(app_name=args.app_name))
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:  # reported as this model's problem, no traceback
            text = f"{UNREADABLE}{type(exc).__name__}: {exc}"
        tree = {f"{runtime.settings.config_map_prefix}{path.stem}": text}
        models = {path.stem: tree[next(iter(tree))]}
        view_tree: dict[str, str] = tree
    elif path.is_dir():
        view_tree = read_config_dir(path)
        models = {}
        for key, value in view_tree.items():
            parts = key.split("/")
            if len(parts) == 6 and parts[0] == "inferflow" and parts[3:5] == ["model-config", "config-map"]:
                models[parts[5] if parts[2] == args.app_name else f"{parts[2]}/{parts[5]}"] = value
    else:
        print(f"error: {path} is neither a file nor a directory", file=sys.stderr)
        return 2
    if not models:
        print(f"error: no model configs found under {path}", file=sys.stderr)
        return 1
    bad = 0
    for model_id, raw in sorted(models.items()):
        try:
            runtime.compiler.compile(model_id, raw, view_tree)  # type: ignore[arg-type]
        except ConfigError as exc:
            bad += 1
            print(f"INVALID {model_id}")
            for jpath, msg in exc.problems:
                print(f"  model {model_id}: {jpath or '$'}: {msg}")
        else:
            print(f"ok      {model_id}")
    print(f"{len(models) - bad} valid, {bad} invalid")
    return 1 if bad else 0


def cmd_plugins(args: argparse.Namespace) -> int:
    """List loaded plugins, their versions and hooks, what they registered and load failures."""
    from .runtime import Runtime

    runtime = Runtime()
    reg = runtime.registry
    if args.json:
        print(
            json.dumps(
                {
                    "plugins": [p.__dict__ for p in runtime.host.plugins()],
                    "failures": [f.__dict__ for f in runtime.host.failures],
                    "components": sorted(reg.components),
                    "log_formats": sorted(reg.log_formats),
                    "log_sinks": sorted(reg.log_sinks),
                    "config_sources": sorted(reg.config_sources),
                },
                indent=2,
            )
        )
        return 0
    print("plugins:")
    for p in runtime.host.plugins():
        print(f"  {p.name:<12} {p.distribution} {p.version}  hooks: {', '.join(p.hooks)}")
    sections = sorted(k for k in reg.components if k != "feature_initializer")  # the root node, not a section
    print(f"component sections: {', '.join(sections) or '-'}")
    print(f"log formats: {', '.join(sorted(reg.log_formats)) or '-'}")
    print(f"log sinks: {', '.join(sorted(reg.log_sinks)) or '-'}")
    print(f"config sources: {', '.join(sorted(reg.config_sources)) or '-'}")
    if runtime.host.failures:
        print("load failures:")
        for f in runtime.host.failures:
            print(f"  {f.name} ({f.distribution} {f.version}): {f.error}")
    return 0


def _optional(module: str, func: str, args: argparse.Namespace, missing: str) -> int:
    import importlib

    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            print(missing)
            return 0
        raise
    return int(getattr(mod, func)(args))


def versions() -> str:
    """``inferflow --version``: the core's version and every installed plugin distribution's."""
    lines = [f"inferflow-core {md.version('inferflow-core')}"]
    plugins = md.entry_points(group="inferflow")
    dists = {ep.dist.name: ep.dist.version for ep in plugins if ep.dist is not None}
    lines += [f"{name} {ver}" for name, ver in sorted(dists.items()) if name != "inferflow-core"]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inferflow",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,  # keeps --version one line a package
    )
    parser.add_argument("--version", action="version", version=versions(), help="print versions and exit")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check a model config file or a config directory")
    p.add_argument("path")
    p.add_argument("--app-name", default=ServiceSettings().app_name)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("plugins", help="list loaded plugins and load failures")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("serve", help="serve the gRPC APIs")
    p.add_argument("--config-dir", help="config directory (default source when ETCD_SERVER is unset)")
    p.add_argument("--port", type=int, help="gRPC port (default APP_PORT or 8085)")
    p.add_argument("--http-port", type=int, help="HTTP side port for health and metrics (default: port+1)")
    p.add_argument("--workers", type=int, default=1, help="worker processes sharing the port")
    p.set_defaults(func=lambda a: _optional("inferflow_core.serving.app", "main", a, "serving not installed"))

    p = sub.add_parser("config", help="config tooling")
    csub = p.add_subparsers(dest="config_command", required=True)
    push = csub.add_parser("push", help="write a config directory into etcd")
    push.add_argument("dir")
    push.add_argument("--dry-run", action="store_true", help="show the diff against etcd, write nothing")
    push.set_defaults(
        func=lambda a: _optional("inferflow_core.config.push", "main", a, "etcd push not available")
    )

    p = sub.add_parser("demo", help="run the example model end to end with embedded backends")
    p.add_argument("--keep-running", action="store_true")
    p.add_argument("--port", type=int, default=0)
    p.set_defaults(func=lambda a: _optional("inferflow_core.demo", "main", a, "no demo yet"))

    p = sub.add_parser("bench", help="run the standard benchmark (scenario S1)")
    p.add_argument("--quick", action="store_true")
    p.set_defaults(func=lambda a: _optional("inferflow_core.bench", "main", a, "no benchmark yet"))

    for name in _plugin_commands():
        sub.add_parser(name, help=f"(plugin command) see 'inferflow {name} --help'", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    plugin_cmds = _plugin_commands()
    if argv and argv[0] in plugin_cmds:
        return int(plugin_cmds[argv[0]].load()(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
