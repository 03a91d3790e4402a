"""Immutable config snapshots and the store that swaps them on every change (safe hot reload).

Each change builds a new snapshot: every model is validated on its own; a model that fails keeps its
last good version serving (the error is recorded); a deleted key removes exactly that model. Requests
hold the snapshot they started with.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from pydantic import ValidationError

from ..config.model import ServiceConfig
from ..errors import ConfigError, ModelNotFoundError
from ..observability.metrics import Metrics
from .compile import CompiledModel, ModelCompiler

log = logging.getLogger("inferflow.config")


@dataclass(frozen=True)
class ConfigSnapshot:
    """One consistent view of the config tree and the models compiled from it."""

    version: int
    tree: Mapping[str, str]
    models: Mapping[str, CompiledModel]
    errors: Mapping[str, ConfigError]
    service: ServiceConfig = field(default_factory=ServiceConfig)
    service_error: str | None = None

    def get(self, key: str) -> str | None:
        """A raw config value by key relative to ``/config/`` (the ``ConfigView`` protocol)."""
        return self.tree.get(key)

    def model(self, model_id: str) -> CompiledModel:
        try:
            return self.models[model_id]
        except KeyError:
            raise ModelNotFoundError(model_id) from None


EMPTY = ConfigSnapshot(0, MappingProxyType({}), MappingProxyType({}), MappingProxyType({}))


def parse_service_config(tree: Mapping[str, str], key: str) -> ServiceConfig:
    """The service config document, or its leaf keys (``service-config/v2-logging-type`` ...)."""
    raw = tree.get(key)
    if raw is not None:
        return ServiceConfig.model_validate(json.loads(raw))
    leaves = {k[len(key) + 1 :]: v for k, v in tree.items() if k.startswith(key + "/")}
    data: dict[str, object] = {}
    for name, value in leaves.items():
        text = value.strip()
        try:
            data[name] = json.loads(text)
        except ValueError:
            data[name] = text
    return ServiceConfig.model_validate(data)


class ConfigStore:
    """Holds the current snapshot; ``apply`` builds and swaps in the next one."""

    def __init__(
        self,
        compiler: ModelCompiler,
        model_prefix: str,
        service_key: str,
        metrics: Metrics,
        service_check: Callable[[ServiceConfig], list[str]] | None = None,
    ) -> None:
        self.compiler = compiler
        self.model_prefix = model_prefix
        self.service_key = service_key
        self.metrics = metrics
        self.service_check = service_check  # the plugins' problems with a service config
        self.current = EMPTY

    def model_entries(self, tree: Mapping[str, str]) -> dict[str, str]:
        n = len(self.model_prefix)
        return {k[n:]: v for k, v in tree.items() if k.startswith(self.model_prefix) and "/" not in k[n:]}

    def apply(self, tree: Mapping[str, str]) -> ConfigSnapshot:
        prev = self.current
        prev_entries = self.model_entries(prev.tree)
        view = _TreeView(tree)
        models: dict[str, CompiledModel] = {}
        errors: dict[str, ConfigError] = {}
        for model_id, raw in self.model_entries(tree).items():
            old = prev.models.get(model_id)
            if old is not None and prev_entries.get(model_id) == raw and model_id not in prev.errors:
                models[model_id] = old
                continue
            try:
                models[model_id] = compiled = self.compiler.compile(model_id, raw, view)
                for jpath, msg in compiled.warnings:
                    self.metrics.count("config_warnings", model_id=model_id)
                    log.warning("model %s: %s: %s", model_id, jpath, msg)
            except ConfigError as exc:
                errors[model_id] = exc
                self.metrics.count("config_rejections", model_id=model_id)
                if old is not None:
                    models[model_id] = old
                    log.error(
                        "model %s: new config rejected, last good version keeps serving: %s", model_id, exc
                    )
                else:
                    log.error("model %s: config rejected: %s", model_id, exc)
        service, service_error = prev.service, None
        try:
            parsed = parse_service_config(tree, self.service_key)
            problems = self.service_check(parsed) if self.service_check is not None else []
            if problems:
                raise ValueError("; ".join(problems))
            service = parsed
        except (ValueError, ValidationError) as exc:
            service_error = f"service-config: {exc}"
            log.error("%s (keeping the previous service config)", service_error)
        except RecursionError:
            service_error = "service-config: nested too deeply"
            log.error("%s (keeping the previous service config)", service_error)
        snap = ConfigSnapshot(
            version=prev.version + 1,
            tree=MappingProxyType(dict(tree)),
            models=MappingProxyType(models),
            errors=MappingProxyType(errors),
            service=service,
            service_error=service_error,
        )
        self.current = snap
        self.metrics.count("config_reloads")
        return snap


class _TreeView:
    def __init__(self, tree: Mapping[str, str]) -> None:
        self._tree = tree

    def get(self, key: str) -> str | None:
        return self._tree.get(key)
