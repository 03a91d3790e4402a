"""The runtime: plugin host + registry + compiler + config store + metrics, wired once per process.

Serving, the CLI, tests and the benchmark all build one of these; nothing here is module-global.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .components.base import Executing, RequestInfo, RunContext
from .components.feature_init import InitialData
from .config.settings import ServiceSettings
from .engine.compile import CompiledModel, ModelCompiler
from .engine.executor import run_dag
from .engine.explain import NodeLifecycle
from .engine.store import ConfigSnapshot, ConfigStore
from .matrix import ComponentMatrix, SlateMatrix
from .observability.metrics import Metrics
from .plugins import PluginHost


class Runtime:
    def __init__(
        self,
        settings: ServiceSettings | None = None,
        host: PluginHost | None = None,
        metrics: Metrics | None = None,
        load_entrypoints: bool = True,
    ) -> None:
        self.settings = settings or ServiceSettings()
        self.metrics = metrics or Metrics()
        self.host = host or PluginHost(strict=self.settings.strict_plugins)
        if load_entrypoints and host is None:
            self.host.load_entrypoints()
        self.registry = self.host.collect()
        self.compiler = ModelCompiler(
            self.registry.components,
            self.metrics,
            self.settings.dag_cache_size,
            strict=self.settings.strict_validation,
        )
        self.compiler.missing_plugins = self.host.missing_reason()
        self.store = ConfigStore(
            self.compiler,
            self.settings.config_map_prefix,
            self.settings.service_config_key,
            self.metrics,
            self.host.validate_service_config,
        )
        self.executing = Executing()  # requests inside ``execute`` now (RunContext.concurrent_requests)

    @property
    def prefixes(self) -> list[str]:
        """Config-tree prefixes to load and watch: this service's model configs plus plugins' extras."""
        return [self.settings.model_config_prefix, *self.registry.config_prefixes]

    def apply_tree(self, tree: Mapping[str, str]) -> ConfigSnapshot:
        return self.store.apply(tree)

    async def execute(
        self,
        model_id: str,
        initial: InitialData,
        request: RequestInfo,
        deadline: float | None = None,
        slates: Sequence[np.ndarray] | SlateMatrix | None = None,
        snapshot: ConfigSnapshot | None = None,
        lifecycle: NodeLifecycle | None = None,
        model: CompiledModel | None = None,
    ) -> RunContext:
        """Run ``model_id``'s DAG over ``initial``; returns the context (matrix, failures).

        ``slates`` may be a ready :class:`SlateMatrix` (built off the event loop for large requests);
        ``lifecycle`` a node-lifecycle adapter (e.g. EXPLAIN's recorder) called around each node;
        ``model`` a compiled model to run instead of the snapshot's (``inferflow replay`` runs a variant).
        """
        snap = snapshot or self.store.current
        if model is None:
            model = snap.model(model_id)
        ctx = RunContext(
            model_id=model_id,
            matrix=ComponentMatrix(initial.rows),
            request=request,
            config=snap,
            slate_matrix=slates if isinstance(slates, SlateMatrix) or slates is None else SlateMatrix(slates),
            deadline=deadline,
            initial=initial,
            lifecycle=lifecycle,
            executing=self.executing,
        )
        self.executing.count += 1
        try:
            await run_dag(model, ctx, self.metrics)
        finally:
            self.executing.count -= 1
        return ctx
