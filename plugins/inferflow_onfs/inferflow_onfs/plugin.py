"""Entry point ``onfs`` (group ``inferflow``): registers the ``feature_components`` component type.

The type object owns the process-wide resources its components share: the OnFS clients (one channel per
target), the embedded stores (one per directory, loaded once) and the feature cache. Settings are read from
the environment when a model config is built, so a bad setting is a config error naming the env var.
"""

from __future__ import annotations

from inferflow_core.api import (
    BuildContext,
    Component,
    ConfigError,
    DataTypeError,
    RegisterComponent,
    features,
    hookimpl,
)

from .backends import Backend, LocalBackend
from .client import OnfsClient
from .component import FeatureComponent
from .config import FeatureComponentConfig, feature_specs
from .settings import OnfsSettings
from .store import LocalStore


class FeatureComponentType:
    config_key = "feature_components"
    config_model = FeatureComponentConfig

    def __init__(self, backend: Backend | None = None, cache: features.FeatureCache | None = None) -> None:
        self._backend_override = backend
        self._cache_override = cache
        self._backends: dict[tuple, Backend] = {}
        self._caches: dict[tuple, features.FeatureCache] = {}

    def backend(self, settings: OnfsSettings, model_id: str, component: str) -> Backend:
        """The backend for these settings; no feature store configured at all is a config error (the
        model would otherwise serve scores computed from missing features)."""
        if self._backend_override is not None:
            return self._backend_override
        if settings.remote:
            problems = [(p, f"component {component!r}: {m}") for p, m in settings.problems()]
            if problems:
                raise ConfigError(model_id, problems)
            key: tuple = (
                "onfs", settings.target, settings.fs_plaintext, settings.caller_id, settings.caller_token,
                settings.deadline_ms, settings.batch_size, settings.tls,
            )  # fmt: skip
            if key not in self._backends:
                self._backends[key] = OnfsClient(settings)
            return self._backends[key]
        if settings.local_dir:
            key = ("local", settings.local_dir)
            if key not in self._backends:
                self._backends[key] = LocalBackend(LocalStore(settings.local_dir))
            return self._backends[key]
        raise ConfigError(
            model_id,
            [
                (
                    "fs_request",
                    f"component {component!r}: no feature store configured: set "
                    "EXTERNAL_SERVICE_ONFS_FS_HOST (remote OnFS) or INFERFLOW_ONFS_LOCAL_DIR",
                )
            ],
        )

    def cache(self, settings: OnfsSettings) -> features.FeatureCache:
        if self._cache_override is not None:
            return self._cache_override
        key = (settings.cache_bytes, settings.cache_l2_path)
        if key not in self._caches:
            self._caches[key] = features.FeatureCache(settings.cache_bytes, settings.cache_l2_path)
        return self._caches[key]

    async def aclose(self) -> None:
        """Server shutdown: close OnFS channels and the caches' L2 handles."""
        backends, caches = list(self._backends.values()), list(self._caches.values())
        self._backends.clear()
        self._caches.clear()
        for backend in backends:
            close = getattr(backend, "close", None)
            if close is not None:
                await close()
        for cache in caches:
            cache.close()

    def build(self, config: FeatureComponentConfig, ctx: BuildContext) -> Component:
        name = config.component
        if config.composite_id and not config.component_id:
            raise ConfigError(
                ctx.model_id, [("component_id", f"component {name!r}: required with composite_id")]
            )
        settings = OnfsSettings()
        specs = feature_specs(config)
        backend: Backend | None = None
        if specs:
            backend = self.backend(settings, ctx.model_id, name)
            component = FeatureComponent(config, ctx.model_id, ctx.model.component_config, None, None, None)
            try:
                backend.check(component.request)
            except (LookupError, ValueError, DataTypeError) as exc:
                raise ConfigError(ctx.model_id, [("fs_request", f"component {name!r}: {exc}")]) from None
        cc = ctx.model.component_config
        # The embedded store is already an in-memory index: an L1 cache in front of it could only add
        # work (measured: partial hits cost a lookup + a fetch + an insert + a merge), so it is skipped.
        embedded = self._backend_override is None and isinstance(backend, LocalBackend)
        cached = cc.cache_enabled and config.comp_cache_enabled and not embedded
        cache = self.cache(settings) if cached else None
        return FeatureComponent(config, ctx.model_id, cc, backend, cache, ctx.metrics)


@hookimpl
def register_components(register: RegisterComponent) -> None:
    register(FeatureComponentType())
