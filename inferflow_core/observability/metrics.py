"""Metrics: one Prometheus registry per process, with a small typed facade plugins use via the api.

Generic ``count`` / ``observe`` create a counter / histogram per metric name on first use (label names
fixed by that first use), so plugins add metrics without touching the core.
"""

from __future__ import annotations

import re
import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
_NAME = re.compile(r"[^a-zA-Z0-9_]")


def _prom_name(name: str) -> str:
    return "inferflow_" + _NAME.sub("_", name).strip("_")


class Metrics:
    """Process-wide metrics. Thread-safe creation; label values are converted to str."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._lock = threading.Lock()
        self._counters: dict[str, Counter] = {}
        self._histograms: dict[str, Histogram] = {}
        self._gauges: dict[str, Gauge] = {}

    def count(self, name: str, amount: float = 1.0, **labels: object) -> None:
        """Add ``amount`` to counter ``name`` with ``labels``."""
        metric = self._get(self._counters, Counter, name, labels)
        (metric.labels(**_str(labels)) if labels else metric).inc(amount)

    def observe(self, name: str, seconds: float, **labels: object) -> None:
        """Record a latency (seconds) in histogram ``name``."""
        metric = self._get(self._histograms, Histogram, name, labels)
        (metric.labels(**_str(labels)) if labels else metric).observe(seconds)

    def gauge(self, name: str, value: float, **labels: object) -> None:
        metric = self._get(self._gauges, Gauge, name, labels)
        (metric.labels(**_str(labels)) if labels else metric).set(value)

    def value(self, name: str, **labels: object) -> float:
        """Current value of a counter or gauge sample (0 if never recorded); for tests and health."""
        full = _prom_name(name)
        for suffix in ("_total", ""):
            got = self.registry.get_sample_value(full + suffix, _str(labels) or None)
            if got is not None:
                return got
        return 0.0

    def component_run(self, model_id: str, component: str, seconds: float, error_kind: str | None) -> None:
        self.observe("component_latency_seconds", seconds, model_id=model_id, component=component)
        self.count("component_runs", model_id=model_id, component=component)
        if error_kind:
            self.count("component_errors", model_id=model_id, component=component, kind=error_kind)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def _get(self, store: dict, cls: type, name: str, labels: dict[str, object]):  # type: ignore[no-untyped-def]
        metric = store.get(name)
        if metric is None:
            with self._lock:
                metric = store.get(name)
                if metric is None:
                    kwargs = {"buckets": _LATENCY_BUCKETS} if cls is Histogram else {}
                    metric = cls(
                        _prom_name(name), name, labelnames=sorted(labels), registry=self.registry, **kwargs
                    )
                    store[name] = metric
        return metric


def _str(labels: dict[str, object]) -> dict[str, str]:
    return {k: str(v) for k, v in labels.items()}
