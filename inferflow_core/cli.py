"""The inferflow command line: serve, validate, config push, plugins, predict, demo, bench, plugin new, ...

Commands: serve | validate | config push | plugins | predict | demo | bench | plugin new (+ plugin commands).

Plugins add commands through the entry-point group ``inferflow.cli`` (name -> ``main(argv) -> int``),
e.g. ``inferflow logs read FILE`` from inferflow-logging.

A user error (a bad argument, a file that is not there, a server that does not answer) prints one line
``error: ...`` on stderr and exits non-zero; ``--debug`` (anywhere on the line, or ``INFERFLOW_DEBUG=1``)
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import predict
from .config.settings import ServiceSettings
from .config.sources import UNREADABLE, read_config_dir
from .errors import ConfigError, InferflowError

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
    p.add_argument("path", help="a model config JSON file, or a config directory (the etcd tree's layout)")
    p.add_argument("--app-name", default=ServiceSettings().app_name, help="service name (default APP_NAME)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("plugins", help="list loaded plugins and load failures")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser(
        "serve",
        help="serve the gRPC APIs",
        epilog=serve_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config-dir", help="config directory (default source when ETCD_SERVER is unset)")
    p.add_argument("--port", type=int, help="gRPC port (default APP_PORT or 8085)")
    p.add_argument("--http-port", type=int, help="HTTP side port for health and metrics (default: port+1)")
    p.add_argument("--workers", type=int, default=1, help="worker processes sharing the port")
    p.set_defaults(func=lambda a: _optional("inferflow_core.serving.app", "main", a, "serving not installed"))

    p = sub.add_parser("config", help="config tooling")
    csub = p.add_subparsers(dest="config_command", required=True)
    push = csub.add_parser("push", help="write a config directory into etcd")
    push.add_argument("dir", help="config directory to write (the etcd tree's layout)")
    push.add_argument("--dry-run", action="store_true", help="show the diff against etcd, write nothing")
    push.set_defaults(
        func=lambda a: _optional("inferflow_core.config.push", "main", a, "etcd push not available")
    )

    p = sub.add_parser("demo", help="run the example model end to end with embedded backends")
    p.add_argument("--keep-running", action="store_true", help="leave the server up until Ctrl-C")
    p.add_argument("--port", type=int, default=0, help="gRPC port (default: a free one)")
    p.set_defaults(func=lambda a: _optional("inferflow_core.demo", "main", a, "no demo yet"))

    p = sub.add_parser("bench", help="run the standard benchmark (scenario S1)")
    p.add_argument("--quick", action="store_true", help="about a minute: 1 worker, short windows")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.add_argument("--no-check", action="store_true", help="only report; exit 0 even when a target is missed")
    p.set_defaults(func=lambda a: _optional("inferflow_core.bench", "main", a, "no benchmark yet"))

    p = sub.add_parser(
        "predict",
        help="call a model (PointWise, PairWise, SlateWise) and print the result",
        description=predict.__doc__,
        epilog=predict.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    predict.add_arguments(p)
    p.set_defaults(func=lambda a: _optional("inferflow_core.predict", "main", a, "client not available"))

    p = sub.add_parser("plugin", help="plugin authoring tools")
    psub = p.add_subparsers(dest="plugin_command", required=True)
    new = psub.add_parser("new", help="write a pip-installable plugin package with a component type")
    new.add_argument("name", help="plugin name, e.g. 'rerank' -> distribution inferflow-rerank")
    new.add_argument("--dir", default=".", help="parent directory of the new package (default: .)")
    new.add_argument("--force", action="store_true", help="write into an existing, non-empty directory")
    new.set_defaults(func=lambda a: _optional("inferflow_core.scaffold", "main", a, "scaffold not available"))

    for name in _plugin_commands():
        sub.add_parser(name, help=f"(plugin command) see 'inferflow {name} --help'", add_help=False)
    parser.add_argument("--debug", action="store_true", help="show tracebacks (also INFERFLOW_DEBUG=1)")
    return parser


def serve_epilog() -> str:
    """The environment variables ``serve`` reads: the settings model's, then StatsD's."""
    from .observability.statsd import StatsdClient

    names = []
    for field in ServiceSettings.model_fields.values():
        alias = field.validation_alias
        choices = getattr(alias, "choices", [alias])
        names += [c for c in choices if isinstance(c, str) and c.isupper()]
    names += StatsdClient.ENV_VARS
    lines, line = [], " "
    for name in names:
        if len(line) + len(name) > 100:
            lines.append(line)
            line = " "
        line += " " + name
    lines.append(line)
    return (
        "environment (service settings; flags override them):\n" + "\n".join(lines) + "\n"
        "plugins read their own (INFERFLOW_ONFS_*, INFERFLOW_LOG_*, ...): see each plugin's README.\n"
        "docs/configuration.md describes every variable."
    )


def _pop_debug(argv: list[str]) -> tuple[list[str], bool]:
    """Remove ``--debug`` (before any ``--``) so it works anywhere, plugin commands included."""
    end = argv.index("--") if "--" in argv else len(argv)
    debug = "--debug" in argv[:end]
    rest = [a for i, a in enumerate(argv) if not (i < end and a == "--debug")]
    return rest, debug or os.environ.get("INFERFLOW_DEBUG", "") not in ("", "0", "false")


def _run(argv: list[str]) -> int:
    plugin_cmds = _plugin_commands()
    if argv and argv[0] in plugin_cmds:
        return int(plugin_cmds[argv[0]].load()(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    argv, debug = _pop_debug(list(sys.argv[1:] if argv is None else argv))
    try:
        return _run(argv)
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the one place a failure becomes a message and an exit code
        if debug:
            raise
        print(f"error: {_one_line(exc)} (--debug shows the traceback)", file=sys.stderr)
        return int(getattr(exc, "exit_code", 1))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if not isinstance(exc, ValueError | OSError | InferflowError | LookupError):
        text = f"{type(exc).__name__}: {text}"  # an unexpected error: say what kind
    return text if len(text) <= 500 else text[:497] + "..."


if __name__ == "__main__":
    raise SystemExit(main())
