"""A :class:`~inferflow_core.runtime.Runtime` over plugins chosen by the test, not by what is installed."""

from __future__ import annotations

from ..components import builtin_plugin
from ..config.settings import ServiceSettings
from ..observability.metrics import Metrics
from ..plugins import PluginHost
from ..runtime import Runtime

__all__ = ["make_host", "make_runtime"]


def make_runtime(
    *,
    entry_points: bool = False,
    settings: ServiceSettings | None = None,
    metrics: Metrics | None = None,
    **plugins: object,
) -> Runtime:
    """A Runtime whose plugin host holds the core's built-in components and ``plugins`` (registered under
    their keyword names, e.g. ``make_runtime(probe=ProbePlugin())``), in that order.

    ``entry_points=True`` loads the installed entry points instead of only the built-in components (the
    installed plugins and the test's own ones side by side).
    """
    return Runtime(settings=settings, host=_host(entry_points, False, plugins), metrics=metrics)


def make_host(*, entry_points: bool = False, strict: bool = False, **plugins: object) -> PluginHost:
    """The plugin host of :func:`make_runtime`, for tests of registration itself: ``collect()`` returns
    what was registered, ``failures`` what was refused (``strict=True``: refusals raise PluginError)."""
    return _host(entry_points, strict, plugins)


def _host(entry_points: bool, strict: bool, plugins: dict[str, object]) -> PluginHost:
    host = PluginHost(strict=strict)
    if entry_points:
        host.load_entrypoints()
    else:
        host.register(builtin_plugin, name="core")
    for name, plugin in plugins.items():
        host.register(plugin, name=name)
    return host
