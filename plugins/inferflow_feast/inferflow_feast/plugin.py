"""Entry point ``feast`` (group ``inferflow``): registers the ``feast_components`` component type.

The type owns what its components share: one Feast ``FeatureStore`` (and worker pool) per repository and
settings, and the feature caches. Settings are read when a model config is built, so a wrong repository or
feature reference is a config error naming the component, not a request failure.
"""

from __future__ import annotations

from inferflow_core.api import BuildContext, Component, ConfigError, RegisterComponent, features, hookimpl

from .backend import FeastBackend
from .component import FeastComponent
from .config import FeastComponentConfig
from .settings import FeastSettings


class FeastComponentType:
    config_key = "feast_components"
    config_model = FeastComponentConfig

    def __init__(self, backend: FeastBackend | None = None) -> None:
        self._backend_override = backend
        self._backends: dict[tuple, FeastBackend] = {}
        self._caches: dict[tuple, features.FeatureCache] = {}

    def backend(self, settings: FeastSettings, model_id: str, component: str) -> FeastBackend | None:
        """The store for these settings, or None when INFERFLOW_FEAST_REPO is unset (the config still
        validates offline; its requests fail the component saying what to set)."""
        if self._backend_override is not None:
            return self._backend_override
        if not settings.repo:
            return None
        key = (settings.repo, settings.batch_size, settings.deadline_ms, settings.workers)
        if key not in self._backends:
            try:
                self._backends[key] = FeastBackend(*key)
            except Exception as exc:  # the SDK's own errors: a bad feature_store.yaml, a missing registry
                problem = f"component {component!r}: cannot open Feast repo {settings.repo!r}: {exc}"
                raise ConfigError(model_id, [("INFERFLOW_FEAST_REPO", problem)]) from None
        return self._backends[key]

    def cache(self, settings: FeastSettings) -> features.FeatureCache:
        key = (settings.cache_bytes, settings.cache_l2_path)
        if key not in self._caches:
            self._caches[key] = features.FeatureCache(settings.cache_bytes, settings.cache_l2_path)
        return self._caches[key]

    async def aclose(self) -> None:
        backends, caches = list(self._backends.values()), list(self._caches.values())
        self._backends.clear()
        self._caches.clear()
        for backend in backends:
            backend.close()
        for cache in caches:
            cache.close()

    def build(self, config: FeastComponentConfig, ctx: BuildContext) -> Component:
        name = config.component
        if config.composite_id and not config.component_id:
            raise ConfigError(
                ctx.model_id, [("component_id", f"component {name!r}: required with composite_id")]
            )
        settings = FeastSettings()
        backend = self.backend(settings, ctx.model_id, name)
        component = FeastComponent(config, ctx.model_id, ctx.model.component_config, backend, None, None)
        if backend is not None:
            try:
                backend.check(component.request)
            except (LookupError, ValueError) as exc:
                raise ConfigError(ctx.model_id, [("fs_request", f"component {name!r}: {exc}")]) from None
        cc = ctx.model.component_config
        cache = self.cache(settings) if cc.cache_enabled and config.comp_cache_enabled else None
        return FeastComponent(config, ctx.model_id, cc, backend, cache, ctx.metrics)


@hookimpl
def register_components(register: RegisterComponent) -> None:
    register(FeastComponentType())
