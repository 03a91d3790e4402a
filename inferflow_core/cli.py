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
import asyncio
import importlib.metadata as md
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import predict
from .config.settings import ServiceSettings
from .config.sources import UNREADABLE, read_config_dir
from .errors import ConfigError, InferflowError

if TYPE_CHECKING:
    from .engine.compile import CompiledModel
    from .runtime import Runtime

CLI_GROUP = "inferflow.cli"


def _plugin_commands() -> dict[str, md.EntryPoint]:
    return {ep.name: ep for ep in md.entry_points(group=CLI_GROUP)}


def load_models(path: Path, app_name: str, prefix: str) -> tuple[dict[str, str], dict[str, str]]:
    """(config tree, model id -> raw config) of a model config file or a config directory.

    A file inside a config directory's canonical layout is validated with that directory's tree (so a
    Numerix expression beside it is found); a loose file alone. Raises FileNotFoundError."""
    if path.is_file():
        try:
            raw = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:  # reported as this model's problem, no traceback
            raw = f"{UNREADABLE}{type(exc).__name__}: {exc}"
        tree = {f"{prefix}{path.stem}": raw}
        parts = path.resolve().parts
        for depth in range(len(parts) - 1, 0, -1):
            if parts[depth : depth + 1] == ("inferflow",) and parts[depth + 3 : depth + 5] == (
                "model-config",
                "config-map",
            ):
                tree = {**read_config_dir(Path(*parts[:depth])), **tree}
                break
        return tree, {path.stem: raw}
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is neither a file nor a directory")
    tree = read_config_dir(path)
    models = {}
    for key, value in tree.items():
        seg = key.split("/")
        if len(seg) == 6 and seg[0] == "inferflow" and seg[3:5] == ["model-config", "config-map"]:
            models[seg[5] if seg[2] == app_name else f"{seg[2]}/{seg[5]}"] = value
    return tree, models


@dataclass
class ValidationResult:
    model: str
    errors: list[tuple[str, str]]  # (json path, message)
    warnings: list[tuple[str, str]]

    @property
    def valid(self) -> bool:
        return not self.errors

    def as_json(self) -> dict[str, object]:
        return {
            "model": self.model,
            "valid": self.valid,
            "errors": [{"path": p or "$", "message": m} for p, m in self.errors],
            "warnings": [{"path": p or "$", "message": m} for p, m in self.warnings],
        }


def validate_models(
    runtime: Runtime, tree: dict[str, str], models: dict[str, str], check_backends: bool = False
) -> list[ValidationResult]:
    """Compile every model with ``runtime``'s compiler (the server's checks, strict or not); with
    ``check_backends`` also ask each component's remote backend (``Component.check_backend``)."""
    results = []
    compiled_models: dict[str, CompiledModel] = {}
    for model_id, raw in sorted(models.items()):
        try:
            compiled = runtime.compiler.compile(model_id, raw, tree)
        except ConfigError as exc:
            results.append(ValidationResult(model_id, list(exc.problems), []))
        else:
            results.append(ValidationResult(model_id, [], list(compiled.warnings)))
            compiled_models[model_id] = compiled
    if check_backends and compiled_models:
        found = asyncio.run(_check_backends(runtime, compiled_models))
        for result in results:
            result.errors += found.get(result.model, [])
    service = check_service_config(runtime, tree)
    if service:
        results.append(ValidationResult(SERVICE_CONFIG, service, []))
    return results


SERVICE_CONFIG = "service-config"  # the pseudo model of a service-config problem in validation results


def check_service_config(runtime: Runtime, tree: Mapping[str, str]) -> list[tuple[str, str]]:
    """Problems of the tree's service config (its parse, then every plugin's check), as (path, message);
    none when the tree has no service config."""
    from pydantic import ValidationError

    from .engine.store import parse_service_config

    key = runtime.settings.service_config_key
    if key not in tree and not any(k.startswith(key + "/") for k in tree):
        return []
    try:
        service = parse_service_config(tree, key)
    except (ValueError, ValidationError) as exc:
        return [("", f"{type(exc).__name__}: {exc}")]
    return [("", problem) for problem in runtime.host.validate_service_config(service)]


async def _check_backends(
    runtime: Runtime, models: dict[str, CompiledModel], timeout: float = 30.0
) -> dict[str, list[tuple[str, str]]]:
    from .components.base import close_component_types

    out: dict[str, list[tuple[str, str]]] = {}
    try:
        for model_id, model in models.items():
            for name, comp in model.components.items():
                check = getattr(comp, "check_backend", None)
                if check is None:
                    continue
                base = model.component_paths.get(name, f"component {name!r}")
                try:
                    got = await asyncio.wait_for(check(), timeout)
                except Exception as exc:
                    got = [("", f"backend check failed: {type(exc).__name__}: {exc}")]
                out.setdefault(model_id, []).extend((f"{base}.{p}" if p else base, m) for p, m in got)
    finally:
        await close_component_types(runtime.registry.components, 2.0)
    return out


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate a model config file or every model of a config directory (warnings are errors with
    ``--strict``); ``--json`` prints one JSON document instead of the human report."""
    from .runtime import Runtime

    path = Path(args.path)
    env = ServiceSettings()
    strict = args.strict or env.strict_validation
    runtime = Runtime(ServiceSettings(app_name=args.app_name, strict_validation=strict))
    try:
        tree, models = load_models(path, args.app_name, runtime.settings.config_map_prefix)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not models:
        print(f"error: no model configs found under {path}", file=sys.stderr)
        return 1
    results = validate_models(runtime, tree, models, check_backends=args.check_backends)
    bad = sum(1 for r in results if not r.valid)
    if args.json:
        doc = {"valid": bad == 0, "strict": strict, "models": [r.as_json() for r in results]}
        print(json.dumps(doc, indent=2))
        return 1 if bad else 0
    for r in results:
        print(f"{'ok     ' if r.valid else 'INVALID'} {r.model}")
        for jpath, msg in r.errors:
            print(f"  model {r.model}: {jpath or '$'}: {msg}")
        for jpath, msg in r.warnings:
            print(f"  warning: model {r.model}: {jpath or '$'}: {msg}")
    warned = sum(len(r.warnings) for r in results)
    hint = f", {warned} warning(s) (--strict makes them errors)" if warned else ""
    print(f"{len(results) - bad} valid, {bad} invalid{hint}")
    return 1 if bad else 0


def _added_label(hook_name: str) -> str:
    """``register_log_formats`` -> ``log_formats``: the key under which an added hook is listed."""
    return hook_name.removeprefix("register_")


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
                    "config_sources": sorted(reg.config_sources),
                    **{_added_label(h): sorted(reg.registered(h)) for h in sorted(reg.extras)},
                },
                indent=2,
            )
        )
        return 0
    print("plugins:")
    for p in runtime.host.plugins():
        print(f"  {p.name:<12} {p.distribution} {p.version}  hooks: {', '.join(p.hooks)}")
    sections = sorted(reg.components)
    print(f"component sections: {', '.join(sections) or '-'}")
    print(f"config sources: {', '.join(sorted(reg.config_sources)) or '-'}")
    for hook_name in sorted(reg.extras):  # hooks plugins added, e.g. register_log_formats -> log formats
        label = _added_label(hook_name).replace("_", " ")
        print(f"{label}: {', '.join(sorted(reg.registered(hook_name))) or '-'}")
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
    p.add_argument("--strict", action="store_true", help="treat warnings (e.g. unproduced columns) as errors")
    p.add_argument("--json", action="store_true", help="print the result as one JSON document")
    p.add_argument(
        "--check-backends",
        action="store_true",
        help="also ask remote backends (KServe ModelReady/ModelMetadata) whether they match the config",
    )
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
    push.add_argument("--force", action="store_true", help="push even if a model config is invalid")
    push.add_argument("--prune", action="store_true", help="delete model configs in etcd that are not in DIR")
    push.add_argument(
        "--json", action="store_true", help="print the plan (or the refusal) as one JSON document"
    )
    push.set_defaults(func=lambda a: _optional("inferflow_core.push", "main", a, "etcd push not available"))

    p = sub.add_parser("demo", help="run the example model end to end with embedded backends")
    p.add_argument("--keep-running", action="store_true", help="leave the server up until Ctrl-C")
    p.add_argument("--port", type=int, default=0, help="gRPC port (default: a free one)")
    p.set_defaults(func=lambda a: _optional("inferflow_core.demo", "main", a, "no demo yet"))

    p = sub.add_parser("bench", help="run the standard benchmark (scenario S1)")
    p.add_argument("--quick", action="store_true", help="about a minute: 1 worker, short windows")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.add_argument("--no-check", action="store_true", help="only report; exit 0 even when a target is missed")
    p.add_argument("--modes", help="backend modes, comma-separated (default: embedded,remote)")
    p.add_argument(
        "--ranker-batch",
        type=int,
        metavar="N",
        help="the ranker scores N rows per model call (embedded only)",
    )
    p.add_argument(
        "--paced", type=float, metavar="RATE", help="also measure RATE requests a second, one at a time"
    )
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
