"""Turn one model config (raw JSON) into a validated, compiled model — once per config version."""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import mmh3
from pydantic import BaseModel, ValidationError

from ..components.base import BuildContext, ColumnSpec, Component, ComponentType, ConfigView
from ..components.feature_init import FeatureInitComponent
from ..config.model import (
    FEATURE_INITIALIZER,
    KNOWN_EXTRA_COMPONENT_SECTIONS,
    RESERVED_SECTION_KEYS,
    ModelConfig,
)
from ..config.sources import UNREADABLE
from ..errors import ConfigError
from .columns import RequestColumn, check_columns, did_you_mean
from .graph import Graph, build_graph, dag_digest

if TYPE_CHECKING:
    from ..observability.metrics import Metrics

log = logging.getLogger("inferflow.config")


@dataclass(frozen=True)
class CompiledModel:
    """A model ready to serve: its config, its DAG, its component objects and its column layout."""

    model_id: str
    config: ModelConfig
    digest: str
    graph: Graph
    nodes: Mapping[str, Component]  # every DAG node, incl. the feature initializer
    components: Mapping[str, Component]  # every configured component (keyed by name)
    target_columns: tuple[ColumnSpec, ...]
    slate_columns: tuple[ColumnSpec, ...]
    # load-time warnings (json path, message): columns nothing produces, ... (errors in strict mode)
    warnings: tuple[tuple[str, str], ...] = ()
    # columns read that no component produces: a request lacking one is told so in request_error
    request_columns: tuple[RequestColumn, ...] = ()
    component_paths: Mapping[str, str] = field(default_factory=dict)  # name -> its config JSON path
    # columns the components feed to ML models (``ColumnRead.model_input``), config order, deduplicated
    model_inputs: tuple[str, ...] = ()

    def column_spec(self, name: str, slate: bool = False) -> ColumnSpec | None:
        for spec in self.slate_columns if slate else self.target_columns:
            if spec.name == name:
                return spec
        return None


def _pydantic_problems(err: ValidationError, prefix: str) -> list[tuple[str, str]]:
    out = []
    for e in err.errors():
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e["loc"])
        path = (prefix + loc).lstrip(".") or "$"
        out.append((path, e["msg"]))
    return out


def _names(entries: list[Any]) -> list[str]:
    """The ``component`` names of section entries (for entries that could not be built)."""
    return [e["component"] for e in entries if isinstance(e, dict) and isinstance(e.get("component"), str)]


class ModelCompiler:
    """Compiles model configs with the registered component types; caches by config digest."""

    def __init__(
        self,
        component_types: Mapping[str, ComponentType],
        metrics: Metrics,
        cache_size: int = 500,
        strict: bool = False,
    ):
        self.component_types = component_types
        self.strict = strict  # warnings (e.g. a column nothing produces) reject the model
        self.metrics = metrics
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str], CompiledModel] = OrderedDict()
        self.missing_plugins: dict[str, str] = {}  # config key -> why its plugin is absent

    def compile(
        self, model_id: str, raw: str | bytes | Mapping[str, Any], config: ConfigView
    ) -> CompiledModel:
        """Validate and compile; raises :class:`ConfigError` listing every problem with its JSON path.

        Any other exception while reading or compiling this one model (``RecursionError`` from JSON
        nested 1,000 deep, a plugin's unexpected error) is also a :class:`ConfigError` of this model
        only: one bad file never stops the others from loading.
        """
        try:
            return self._compile_cached(model_id, raw, config)
        except ConfigError:
            raise
        except RecursionError:
            raise ConfigError(model_id, [("$", "nested too deeply")]) from None
        except Exception as exc:
            log.error("model %s: compiling the config raised", model_id, exc_info=True)
            raise ConfigError(model_id, [("$", f"cannot compile: {type(exc).__name__}: {exc}")]) from None

    def _compile_cached(
        self, model_id: str, raw: str | bytes | Mapping[str, Any], config: ConfigView
    ) -> CompiledModel:
        data = self._parse(model_id, raw)
        digest = mmh3.hash_bytes(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hex()
        cached = self._cache.get((model_id, digest))
        if cached is not None:
            self._cache.move_to_end((model_id, digest))
            return cached
        compiled = self._compile(model_id, data, digest, config)
        self._cache[(model_id, digest)] = compiled
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return compiled

    @staticmethod
    def _parse(model_id: str, raw: str | bytes | Mapping[str, Any]) -> dict[str, Any]:
        if isinstance(raw, Mapping):
            return dict(raw)
        if isinstance(raw, str) and raw.startswith(UNREADABLE):
            raise ConfigError(model_id, [("$", f"cannot read the config: {raw[len(UNREADABLE) :]}")])
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(model_id, [("$", f"not valid JSON: {exc}")]) from None
        if not isinstance(data, dict):
            raise ConfigError(model_id, [("$", "a model config must be a JSON object")])
        return data

    def _compile(self, model_id: str, data: dict[str, Any], digest: str, config: ConfigView) -> CompiledModel:
        try:
            model = ModelConfig.model_validate(data)
        except ValidationError as err:
            raise ConfigError(model_id, _pydantic_problems(err, "")) from None
        problems: list[tuple[str, str]] = []
        ctx = BuildContext(model_id=model_id, model=model, config=config, metrics=self.metrics)
        components: dict[str, Component] = {}
        paths: dict[str, str] = {}
        unbuilt: set[str] = set()
        sections = model.component_config.sections(self.component_types)
        for key in model.component_config.model_extra or {}:
            if key == FEATURE_INITIALIZER:
                problems.append(
                    (f"component_config.{key}", "the feature initializer is built in: it has no section")
                )
            elif key not in sections and key not in KNOWN_EXTRA_COMPONENT_SECTIONS:
                problems.append(
                    (
                        f"component_config.{key}",
                        "unknown key: not a switch and no installed plugin registers a section of that name"
                        + did_you_mean(key, [*self.component_types, *RESERVED_SECTION_KEYS]),
                    )
                )
        for key, entries in sections.items():
            if not isinstance(entries, list):
                problems.append(
                    (f"component_config.{key}", "a component section must be a list of components")
                )
                unbuilt.update(_names([entries]))
                continue
            if not entries:
                continue
            ctype = self.component_types.get(key)
            if ctype is None:
                if key in KNOWN_EXTRA_COMPONENT_SECTIONS:
                    continue
                why = self.missing_plugins.get(key) or self.missing_plugins.get(
                    "*", "no installed plugin registers this section"
                )
                problems.append((f"component_config.{key}", why))
                unbuilt.update(_names(entries))
                continue
            for i, entry in enumerate(entries):
                path = f"component_config.{key}[{i}]"
                comp = self._build_one(ctype, entry, path, ctx, problems)
                if comp is None:
                    unbuilt.update(_names([entry]))  # reported above; not "unknown" in the DAG too
                    continue
                if comp.name in components or comp.name == FEATURE_INITIALIZER:
                    problems.append((f"{path}.component", f"component name {comp.name!r} is used twice"))
                    continue
                components[comp.name] = comp
                paths[comp.name] = path

        target_cols, slate_cols = self._columns(model, components, problems)
        dependency = model.dag_execution_config.component_dependency
        graph, dag_problems = build_graph(dependency, set(components) | unbuilt)
        problems += [("dag_execution_config.component_dependency", p) for p in dag_problems]
        warnings: list[tuple[str, str]] = []
        request_columns: list[RequestColumn] = []
        if graph is not None and not unbuilt:  # with a component missing, "unproduced" would be noise
            idle = [name for name in components if name not in graph.prerequisites]
            warnings += [
                (
                    paths[name],
                    f"component {name!r} is not in dag_execution_config.component_dependency: it never runs",
                )
                for name in idle
            ]
            running = {name: c for name, c in components.items() if name not in idle}
            report = check_columns(model, running, paths, graph)
            problems += report.errors
            warnings += report.warnings
            request_columns = report.request_columns
        if self.strict:
            problems += warnings
        if problems or graph is None:
            raise ConfigError(model_id, problems)
        init = FeatureInitComponent(model_id, tuple(target_cols), tuple(slate_cols))
        nodes: dict[str, Component] = {FEATURE_INITIALIZER: init}
        nodes.update({n: components[n] for n in graph.order if n != FEATURE_INITIALIZER})
        return CompiledModel(
            model_id=model_id,
            config=model,
            digest=digest + ":" + dag_digest(dependency),
            graph=graph,
            nodes=nodes,
            components=components,
            target_columns=tuple(target_cols),
            slate_columns=tuple(slate_cols),
            warnings=tuple(warnings),
            request_columns=tuple(request_columns),
            component_paths=paths,
            model_inputs=tuple(
                dict.fromkeys(r.name for c in components.values() for r in c.reads() if r.model_input)
            ),
        )

    @staticmethod
    def _build_one(
        ctype: ComponentType, entry: Any, path: str, ctx: BuildContext, problems: list[tuple[str, str]]
    ) -> Component | None:
        if not isinstance(entry, dict):
            problems.append((path, "each component must be a JSON object"))
            return None
        try:
            cfg: BaseModel = ctype.config_model.model_validate(entry)
        except ValidationError as err:
            problems.extend(_pydantic_problems(err, path))
            return None
        except Exception as exc:  # a plugin's broken config model: a config problem, never a crash
            problems.append((path, f"the component type's config model failed: {type(exc).__name__}: {exc}"))
            return None
        try:
            return ctype.build(cfg, ctx)
        except ConfigError as exc:
            problems.extend((f"{path}.{p}" if p and p != "$" else path, m) for p, m in exc.problems)
        except (ValueError, KeyError) as exc:
            problems.append((path, str(exc)))
        except Exception as exc:  # a plugin bug while building: named, and the model is rejected
            problems.append((path, f"building the component failed: {type(exc).__name__}: {exc}"))
        return None

    @staticmethod
    def _columns(
        model: ModelConfig, components: Mapping[str, Component], problems: list[tuple[str, str]]
    ) -> tuple[list[ColumnSpec], list[ColumnSpec]]:
        """Collect produced columns; two producers of one column name is a config error."""
        target: dict[str, tuple[ColumnSpec, str]] = {}
        slate: dict[str, tuple[ColumnSpec, str]] = {}
        for comp in components.values():
            for spec in comp.outputs():
                store = slate if spec.slate else target
                prev = store.get(spec.name)
                if prev is not None and spec.constant is not None and prev[0] == spec:
                    continue  # the same constant column (e.g. inferflow_config_id) from two components
                if prev is not None and prev[1] != comp.name:
                    problems.append(
                        (
                            "component_config",
                            f"column {spec.name!r} is produced by both {prev[1]!r} and {comp.name!r}",
                        )
                    )
                    continue
                store[spec.name] = (spec, comp.name)
        id_col = model.response_config.id_column
        if id_col in target and target[id_col][0].constant is None:
            problems.append(
                (
                    "response_config.features[0]",
                    f"id column {id_col!r} is also produced by {target[id_col][1]!r}",
                )
            )
        for comp in components.values():
            for spec in comp.required_columns():
                if spec.name not in target:
                    target[spec.name] = (spec, "")
        return [s for s, _ in target.values()], [s for s, _ in slate.values()]
