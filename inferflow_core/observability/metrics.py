"""Metrics: Prometheus (per process, or aggregated across ``--workers``) plus optional DogStatsD.

Generic ``count`` / ``observe`` / ``observe_size`` / ``gauge`` create a metric per name on first use
(label names fixed by that first use), so plugins add metrics without touching the core. Labelled
children are cached per label values: a prometheus ``.labels(...)`` lookup costs microseconds, a dict
hit a fraction of one, and the request path records ~10 samples per request.

Multi-process: when ``PROMETHEUS_MULTIPROC_DIR`` is set (``inferflow serve --workers N`` sets it to a
fresh temp dir before spawning), prometheus_client keeps every value in per-process mmap files there,
and :meth:`Metrics.exposition` merges all processes' files, so any worker's ``/metrics`` shows the
totals of all of them. Without it, values live in this process's own registry.

Every generic sample is also sent to StatsD (``inferflow.<name>``, labels as tags) when a
:class:`~.statsd.StatsdClient` is attached; the request-path helpers (:meth:`api_request`,
:meth:`component_run`, :meth:`external_call`, :meth:`cache_lookup`) emit Go's names (go-compatibility §8.1).
The metric table is in ``observability/README.md``.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import sys
import threading
from bisect import bisect_left
from collections.abc import Mapping
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    values,
)

from .statsd import StatsdClient

# ``_created`` series double the series count and nobody queries them
disable_created_metrics()

# up to 10 s: above the default deadline (INFERFLOW_DEFAULT_DEADLINE_MS = 5 s), so a request that runs
# into its deadline lands in a bucket of its own instead of +Inf
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
)  # fmt: skip
SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
_NAME = re.compile(r"[^a-zA-Z0-9_]")
_STATSD_TAG = {
    "model_id": "model-id",
    "component": "component-name",
    "error_type": "error-type",
    "kind": "error-type",
}
_PREDICT_APIS = {"pointwise", "pairwise", "slatewise"}
# gRPC method paths for the router metric's ``api`` tag
API_METHODS = {
    "pointwise": "/Predict/InferPointWise",
    "pairwise": "/Predict/InferPairWise",
    "slatewise": "/Predict/InferSlateWise",
    "retrieve_model_score": "/Inferflow/RetrieveModelScore",
}


HELP = {
    "api_requests": "Calls answered, by API, gRPC status code name and transport (grpc / http)",
    "api_errors": "RPCs answered with a status other than OK, by API and status",
    "api_latency_seconds": "Time from receiving an RPC to its answer (all models), by API",
    "api_batch_size": "Targets (rows) per request, by API",
    "api_in_flight": "RPCs being handled right now (summed over workers)",
    "model_requests": "RPCs for a model found in the current config, by API and model",
    "model_latency_seconds": "Time to answer an RPC for a model, by API and model",
    "model_batch_size": "Targets (rows) per request for a model",
    "models": "Model configs in the current snapshot: state=loaded (serving) or rejected (failed validation)",
    "component_runs": "DAG node runs, by model and component",
    "component_errors": "Component failures (cells left missing, request still answered), by kind",
    "component_latency_seconds": "Time a component took, from its start (prerequisites done) to its end",
    "component_output_columns": "Output columns a component writes, per model config (from the config)",
    "component_features": "Feature values fetched by a component (unique entities x features), per request",
    "external_requests": "Calls to an external service (featurestore, predator, numerix ...)",
    "external_errors": "Failed calls to an external service, by kind",
    "external_latency_seconds": "Latency of one call to an external service, as seen by inferflow",
    "external_batch_size": "Rows or keys sent in one call to an external service",
    "cache_hits": "Cache lookups answered from the cache (e.g. the feature cache), by cache",
    "cache_misses": "Cache lookups not in the cache, fetched from the backend",
    "config_reloads": "Config snapshots applied (start-up load plus every change)",
    "config_rejections": "Model configs that failed validation (the last good version keeps serving)",
    "config_version": "Version of the config snapshot serving now (counts applied snapshots)",
    "worker_restarts": "Worker processes restarted by the supervisor after dying, by exit code",
    "build_info": "Always 1; labels carry the inferflow-core version and the Python version",
    "requests_shed": "Requests refused by admission control before any work (overload), by reason",
    "auth_rejected": "Calls refused by caller authentication, by API and status code",
    "logging.dropped": "Inference-log records dropped (queue full, shutdown, worker crash), by reason",
}

# families a dashboard or alert queries: declared at start so they exist before the first sample
_DECLARED: tuple[tuple[type, str, tuple[str, ...], Any], ...] = (
    (Counter, "api_requests", ("api", "status", "transport"), None),
    (Counter, "api_errors", ("api", "status"), None),
    (Histogram, "api_latency_seconds", ("api",), None),
    (Gauge, "api_in_flight", ("api",), "livesum"),
    (Counter, "model_requests", ("api", "model_id"), None),
    (Histogram, "model_latency_seconds", ("api", "model_id"), None),
    (Counter, "component_runs", ("component", "model_id"), None),
    (Counter, "component_errors", ("component", "kind", "model_id"), None),
    (Histogram, "component_latency_seconds", ("component", "model_id"), None),
    (Gauge, "component_output_columns", ("component", "model_id"), "livemax"),
    (Counter, "component_features", ("component", "model_id"), None),
    (Counter, "external_requests", ("component", "endpoint", "model_id", "service"), None),
    (Counter, "external_errors", ("component", "endpoint", "kind", "model_id", "service"), None),
    (Histogram, "external_latency_seconds", ("component", "endpoint", "model_id", "service"), None),
    (Counter, "cache_hits", ("cache", "component", "model_id"), None),
    (Counter, "cache_misses", ("cache", "component", "model_id"), None),
    (Gauge, "models", ("state",), "livemax"),
    (Counter, "config_reloads", (), None),
    (Counter, "config_rejections", ("model_id",), None),
    (Counter, "worker_restarts", ("exit_code",), None),
)


_KINDS: dict[str, type] = {"counter": Counter, "gauge": Gauge, "histogram": Histogram}


class _FastCounter(Counter):
    """A Counter whose ``inc`` adds to its value without taking the value's lock (see :data:`_FAST`)."""

    def inc(self, amount: float = 1, exemplar: dict[str, str] | None = None) -> None:
        if amount < 0 or exemplar:
            super().inc(amount, exemplar)
        else:
            self._value._value += amount


class _FastHistogram(Histogram):
    """A Histogram whose ``observe`` finds the bucket by bisection and adds without the values' locks."""

    def observe(self, amount: float, exemplar: dict[str, str] | None = None) -> None:
        if exemplar:
            super().observe(amount, exemplar)
            return
        self._sum._value += amount
        bounds = self._upper_bounds
        i = bisect_left(bounds, amount)
        if i < len(bounds) and amount <= bounds[i]:  # NaN falls in no bucket, as in Histogram.observe
            self._buckets[i]._value += 1


class _FastGauge(Gauge):
    """A Gauge whose ``inc`` / ``dec`` / ``set`` write its value without the value's lock (the
    ``mostrecent`` modes, which keep a timestamp, go the stock way)."""

    def inc(self, amount: float = 1) -> None:
        if self._is_most_recent:
            super().inc(amount)
        else:
            self._value._value += amount

    def dec(self, amount: float = 1) -> None:
        if self._is_most_recent:
            super().dec(amount)
        else:
            self._value._value -= amount

    def set(self, value: float) -> None:
        if self._is_most_recent:
            super().set(value)
        else:
            self._value._value = float(value)


def _fast_classes() -> dict[type, type]:
    """The lock-free classes, used when prometheus_client keeps values in process memory
    (``values.MutexValue``: not multiprocess mode) under the GIL.

    prometheus_client's own ``inc`` / ``observe`` take a lock per value (a histogram observation: the sum
    and one bucket) and walk the buckets in Python: ~0.25 µs per ``inc`` and 0.6-0.8 µs per ``observe``,
    ~50 locked updates per served request. Here one update is one ``+=`` on the value's float, which the
    GIL does not interrupt halfway (no call or backward jump in it); reads (the scrape) still take the
    lock and see whole floats. Exposition is prometheus_client's, unchanged: the same values objects,
    the same ``_child_samples``. Multiprocess mode (mmap values) and free-threaded builds keep the stock
    classes.
    """
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    if values.ValueClass is not values.MutexValue or not gil:
        return {}
    return {Counter: _FastCounter, Histogram: _FastHistogram, Gauge: _FastGauge}


def prom_name(name: str) -> str:
    return "inferflow_" + _NAME.sub("_", name).strip("_")


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def _tag_key(label: str) -> str:
    return _STATSD_TAG.get(label) or label.replace("_", "-")


class Metrics:
    """Process-wide metrics. Thread-safe; label values are converted to str."""

    def __init__(
        self, registry: CollectorRegistry | None = None, statsd: StatsdClient | None = None, core: bool = True
    ) -> None:
        """``core=False``: no inferflow serving families declared up front (a plugin's own server)."""
        self.registry = registry or CollectorRegistry()
        self.statsd = statsd
        self._lock = threading.Lock()
        self._metrics: dict[str, Any] = {}
        self._children: dict[tuple, Any] = {}
        self._api: dict[tuple[str, str, str, str], tuple] = {}
        self._comp: dict[tuple[str, str], ComponentMetrics] = {}
        self._cache: dict[tuple[str, str, str], tuple] = {}
        self._in_flight: dict[str, Any] = {}
        self._fast = _fast_classes()
        if registry is None:  # our own registry: the process, GC and platform collectors go in it too
            for collector in (PROCESS_COLLECTOR, GC_COLLECTOR, PLATFORM_COLLECTOR):
                self.registry.register(_Forward(collector))
        if core:
            for cls, name, labels, extra in _DECLARED:
                self.declare(cls, name, labels, extra)
        self.gauge("build_info", 1, aggregate="max", version=_version(), python=platform.python_version())

    def describe(self, name: str, help: str) -> None:
        """Set the HELP text of metric ``name`` (before its first use); for plugins' own metrics."""
        HELP.setdefault(name, help)

    def declare(
        self,
        kind: str | type,
        name: str,
        labels: tuple[str, ...] = (),
        extra: Any = None,
        help: str | None = None,
    ) -> None:
        """Create metric family ``name`` (``kind`` ``counter`` / ``gauge`` / ``histogram``) now, so it is
        scraped (HELP and TYPE) before its first sample; ``help`` explains it (else :data:`HELP`)."""
        if help:
            HELP.setdefault(name, help)
        cls = _KINDS[kind] if isinstance(kind, str) else kind
        with self._lock:
            if name not in self._metrics:
                self._metrics[name] = self._make(cls, name, labels, extra)

    def _make(self, cls: type, name: str, labels: Any, extra: Any) -> Any:
        kwargs: dict[str, Any] = {}
        if cls is Histogram:
            kwargs["buckets"] = extra or LATENCY_BUCKETS
        elif cls is Gauge:
            kwargs["multiprocess_mode"] = extra or "livesum"
        cls = self._fast.get(cls, cls)
        return cls(
            prom_name(name), HELP.get(name, name), labelnames=sorted(labels), registry=self.registry, **kwargs
        )

    def in_flight(self, api: str) -> Any:
        """The in-flight gauge of ``api`` (``inc()`` on arrival, ``dec()`` when answered)."""
        got = self._in_flight.get(api)
        if got is None:
            got = self._in_flight[api] = self._child(Gauge, "api_in_flight", {"api": api})
        return got

    # -- generic, for plugins ---------------------------------------------------------------------
    def count(self, name: str, amount: float = 1.0, **labels: object) -> None:
        """Add ``amount`` to counter ``name`` with ``labels``."""
        self._child(Counter, name, labels).inc(amount)
        if self.statsd is not None:
            self.statsd.count("inferflow." + name, amount, self._tags(labels))

    def observe(self, name: str, seconds: float, **labels: object) -> None:
        """Record a latency (seconds) in histogram ``name``."""
        self._child(Histogram, name, labels).observe(seconds)
        if self.statsd is not None:
            self.statsd.timing("inferflow." + name, seconds * 1000.0, self._tags(labels))

    def observe_size(self, name: str, value: float, **labels: object) -> None:
        """Record a size (rows, keys, bytes ...) in histogram ``name`` (size buckets)."""
        self._child(Histogram, name, labels, SIZE_BUCKETS).observe(value)
        if self.statsd is not None:
            self.statsd.histogram("inferflow." + name, value, self._tags(labels))

    def gauge(self, name: str, value: float, *, aggregate: str = "livesum", **labels: object) -> None:
        """Set gauge ``name``. ``aggregate`` says how workers combine (prometheus multiprocess_mode:
        ``livesum`` for queue depths, ``max`` for versions ...)."""
        self._child(Gauge, name, labels, aggregate).set(value)
        if self.statsd is not None:
            self.statsd.gauge("inferflow." + name, value, self._tags(labels))

    def value(self, name: str, **labels: object) -> float:
        """Sum of the samples of counter/gauge ``name`` whose labels include ``labels`` (this process;
        0 if never recorded). For tests and health details."""
        full = prom_name(name)
        want = {k: str(v) for k, v in labels.items()}
        total = 0.0
        for family in self.registry.collect():
            if family.name not in (full, full.removesuffix("_total")):
                continue
            for sample in family.samples:
                if sample.name in (full, full + "_total") and all(
                    sample.labels.get(k) == v for k, v in want.items()
                ):
                    total += sample.value
        return total

    # -- request path -----------------------------------------------------------------------------
    def api_request(
        self,
        api: str,
        status: str,
        code: int,
        seconds: float,
        rows: int,
        model_id: str,
        transport: str = "grpc",
    ) -> None:
        """One served call: router metrics (api, status, transport) and per-model metrics (api, model_id)."""
        key = (api, status, model_id, transport)
        got = self._api.get(key)
        if got is None:
            got = self._api_children(api, status, code, model_id, transport)
        requests, errors, latency, batch, m_requests, m_latency, m_batch = got[0]
        requests.inc()
        latency.observe(seconds)
        if errors is not None:
            errors.inc()
        if m_requests is not None:
            m_requests.inc()
            m_latency.observe(seconds)
            if rows:
                batch.observe(rows)
                m_batch.observe(rows)
        if self.statsd is not None:
            self._statsd_api(api, got[1], got[2], seconds, rows, model_id)

    def _api_children(self, api: str, status: str, code: int, model_id: str, transport: str) -> tuple:
        ok = status == "OK"
        children = (
            self._child(Counter, "api_requests", {"api": api, "status": status, "transport": transport}),
            None if ok else self._child(Counter, "api_errors", {"api": api, "status": status}),
            self._child(Histogram, "api_latency_seconds", {"api": api}),
            self._child(Histogram, "api_batch_size", {"api": api}, SIZE_BUCKETS),
            self._child(Counter, "model_requests", {"api": api, "model_id": model_id}) if model_id else None,
            self._child(Histogram, "model_latency_seconds", {"api": api, "model_id": model_id})
            if model_id
            else None,
            self._child(Histogram, "model_batch_size", {"api": api, "model_id": model_id}, SIZE_BUCKETS)
            if model_id
            else None,
        )
        router_tags = (f"api:{API_METHODS.get(api, api)}", f"status:{code}")
        model_tags = (f"model-id:{model_id}",) + ((f"inference-mode:{api}",) if api in _PREDICT_APIS else ())
        got = (children, router_tags, model_tags)
        self._api[(api, status, model_id, transport)] = got
        return got

    def _statsd_api(
        self, api: str, router_tags: tuple, model_tags: tuple, seconds: float, rows: int, model_id: str
    ) -> None:
        sd = self.statsd
        assert sd is not None
        ms = seconds * 1000.0
        sd.count("inferflow.router.api.request.total", 1, router_tags)
        sd.timing("inferflow.router.api.request.latency", ms, router_tags)
        if not model_id:
            return
        prefix = "predict.infer.request" if api in _PREDICT_APIS else "inferflow.retrievemodelscore.request"
        sd.count(prefix + ".total", 1, model_tags)
        sd.timing(prefix + ".latency", ms, model_tags)
        sd.count(prefix + ".batch.size", rows, model_tags)

    def component_metrics(self, model_id: str, component: str) -> ComponentMetrics:
        """The metric calls of one (model, component), bound: its labelled children are resolved once
        (on first use of each), so a call only adds. The same series, names and StatsD lines as
        :meth:`component_run`, :meth:`feature_count`, :meth:`external_call` and :meth:`count` with
        ``model_id`` and ``component`` labels. One object per (model, component), for plugins."""
        key = (model_id, component)
        got = self._comp.get(key)
        if got is None:
            with self._lock:
                got = self._comp.setdefault(key, ComponentMetrics(self, model_id, component))
        return got

    def component_run(self, model_id: str, component: str, seconds: float, error_kind: str | None) -> None:
        """One DAG node run (the engine calls this for every node)."""
        got = self._comp.get((model_id, component))
        if got is None:
            got = self.component_metrics(model_id, component)
        got.run(seconds, error_kind)

    def external_call(
        self,
        service: str,
        endpoint: str,
        model_id: str,
        component: str,
        seconds: float,
        batch: int,
        error_kind: str | None = None,
    ) -> None:
        """One call to an external service (OnFS, Predator, Numerix ...), for plugins."""
        got = self._comp.get((model_id, component))
        if got is None:
            got = self.component_metrics(model_id, component)
        got.external(service, endpoint).call(seconds, batch, error_kind)

    def feature_count(self, model_id: str, component: str, count: int) -> None:
        """Feature values a component fetched for one request (unique entities x features), for plugins:
        Prometheus ``inferflow_component_features_total``, StatsD ``inferflow.component.feature.count``."""
        got = self._comp.get((model_id, component))
        if got is None:
            got = self.component_metrics(model_id, component)
        got.features(count)

    def cache_lookup(self, cache: str, model_id: str, component: str, hits: int, misses: int) -> None:
        """Hits and misses of a cache lookup batch (e.g. the feature cache), for plugins."""
        key = (cache, model_id, component)
        got = self._cache.get(key)
        if got is None:
            labels = {"cache": cache, "model_id": model_id, "component": component}
            got = self._cache[key] = (
                self._child(Counter, "cache_hits", labels),
                self._child(Counter, "cache_misses", labels),
                (f"model-id:{model_id}", f"component-name:{component}"),
            )
        if hits:
            got[0].inc(hits)
        if misses:
            got[1].inc(misses)
        sd = self.statsd
        if sd is not None:
            tags = got[2]
            sd.count("inferflow.component.inmemorycache.request.total", hits + misses, tags)
            if misses:
                sd.count("inferflow.component.inmemorycache.request.miss.total", misses, tags)

    # -- exposition ---------------------------------------------------------------------------------
    def exposition(self) -> bytes:
        """The Prometheus text: every worker's values when multiprocess mode is on, else ours.
        (Multiprocess: the process and GC collectors show the worker that answers the scrape.)"""
        path = multiprocess_dir()
        if path:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path)
            for collector in (PROCESS_COLLECTOR, GC_COLLECTOR, PLATFORM_COLLECTOR):
                registry.register(_Forward(collector))
            return generate_latest(registry)
        return generate_latest(self.registry)

    def flush_statsd(self) -> None:
        """Send buffered StatsD lines now (they are otherwise sent when a datagram fills or by timer)."""
        if self.statsd is not None:
            self.statsd.flush()

    def close(self) -> None:
        if self.statsd is not None:
            self.statsd.close()

    # -- internals ----------------------------------------------------------------------------------
    @staticmethod
    def _tags(labels: Mapping[str, object]) -> tuple[str, ...]:
        return tuple(f"{_tag_key(k)}:{v}" for k, v in labels.items())

    def _child(self, cls: type, name: str, labels: Mapping[str, object], extra: Any = None) -> Any:
        key = (name, *labels.items())
        child = self._children.get(key)
        if child is not None:
            return child
        with self._lock:
            metric: Any = self._metrics.get(name)
            if metric is None:
                metric = self._metrics[name] = self._make(cls, name, labels, extra)
            elif not isinstance(metric, cls):
                raise ValueError(f"metric {name!r} is a {type(metric).__name__}, not a {cls.__name__}")
            child = metric.labels(**{k: str(v) for k, v in labels.items()}) if labels else metric
            self._children[key] = child
        return child


class ExternalCallMetrics:
    """The metrics of one (model, component, service, endpoint)'s calls to an external service, bound
    (see :meth:`Metrics.component_metrics`; its series appear when it is made): :meth:`call` records
    one call."""

    __slots__ = ("_batches", "_errors", "_labels", "_latency", "_metrics", "_requests", "_tags")

    def __init__(self, metrics: Metrics, labels: dict[str, str]) -> None:
        self._metrics = metrics
        self._labels = labels
        self._requests = metrics._child(Counter, "external_requests", labels)
        self._latency = metrics._child(Histogram, "external_latency_seconds", labels)
        self._batches = metrics._child(Histogram, "external_batch_size", labels, SIZE_BUCKETS)
        self._errors: dict[str, Any] = {}
        self._tags = (
            f"model-id:{labels['model_id']}",
            f"component-name:{labels['component']}",
            f"ext-service:{labels['service']}",
            f"endpoint:{labels['endpoint']}",
        )

    def call(self, seconds: float, batch: int, error_kind: str | None = None) -> None:
        """One call of ``seconds`` carrying ``batch`` rows or keys; ``error_kind`` when it failed."""
        self._requests.inc()
        self._latency.observe(seconds)
        self._batches.observe(batch)
        if error_kind:
            _error_counter(self._metrics, self._errors, "external_errors", self._labels, error_kind).inc()
        sd = self._metrics.statsd
        if sd is not None:
            tags = self._tags
            sd.count("inferflow.external.api.request.total", 1, tags)
            sd.timing("inferflow.external.api.request.latency", seconds * 1000.0, tags)
            sd.count("inferflow.external.api.request.batch", batch, tags)
            if error_kind:
                sd.count("inferflow.external.api.request.error", 1, (*tags, f"error-type:{error_kind}"))


def _error_counter(
    metrics: Metrics, bound: dict[str, Any], name: str, labels: dict[str, str], kind: str
) -> Any:
    """The ``name`` counter child for ``labels`` + ``kind``, resolved once into ``bound``."""
    errors = bound.get(kind)
    if errors is None:
        errors = bound[kind] = metrics._child(Counter, name, {**labels, "kind": kind})
    return errors


class ComponentMetrics:
    """The metric calls of one (model, component) with their labelled children bound, from
    :meth:`Metrics.component_metrics`. Each child is resolved on its first use (a series appears when
    first recorded, as with the unbound calls); later calls only add."""

    __slots__ = (
        "_counts",
        "_errors",
        "_external",
        "_features",
        "_labels",
        "_metrics",
        "_run",
        "_tags",
        "component",
        "model_id",
    )

    def __init__(self, metrics: Metrics, model_id: str, component: str) -> None:
        self._metrics = metrics
        self.model_id = model_id
        self.component = component
        self._labels = {"model_id": model_id, "component": component}
        self._tags = (f"model-id:{model_id}", f"component-name:{component}")
        self._run: tuple[Any, Any] | None = None
        self._errors: dict[str, Any] = {}
        self._features: Any = None
        self._counts: dict[str, Any] = {}
        self._external: dict[tuple[str, str], ExternalCallMetrics] = {}

    def run(self, seconds: float, error_kind: str | None = None) -> None:
        """One run of the component (the engine records every node's)."""
        got = self._run
        if got is None:
            m = self._metrics
            got = self._run = (
                m._child(Counter, "component_runs", self._labels),
                m._child(Histogram, "component_latency_seconds", self._labels),
            )
        got[0].inc()
        got[1].observe(seconds)
        if error_kind:
            _error_counter(self._metrics, self._errors, "component_errors", self._labels, error_kind).inc()
        sd = self._metrics.statsd
        if sd is not None:
            tags = self._tags
            sd.count("inferflow.component.execution.total", 1, tags)
            sd.timing("inferflow.component.execution.latency", seconds * 1000.0, tags)
            if error_kind:
                sd.count("inferflow.component.execution.error", 1, (*tags, f"error-type:{error_kind}"))

    def features(self, count: int) -> None:
        """Feature values fetched for one request (as :meth:`Metrics.feature_count`)."""
        child = self._features
        if child is None:
            child = self._features = self._metrics._child(Counter, "component_features", self._labels)
        child.inc(count)
        sd = self._metrics.statsd
        if sd is not None:
            sd.count("inferflow.component.feature.count", count, self._tags)

    def count(self, name: str, amount: float = 1.0) -> None:
        """Add ``amount`` to counter ``name`` labelled with the model and component (as
        ``Metrics.count(name, amount, model_id=..., component=...)``)."""
        child = self._counts.get(name)
        if child is None:
            child = self._counts[name] = self._metrics._child(Counter, name, self._labels)
        child.inc(amount)
        sd = self._metrics.statsd
        if sd is not None:
            sd.count("inferflow." + name, amount, self._tags)

    def external(self, service: str, endpoint: str) -> ExternalCallMetrics:
        """The bound metrics of this component's calls to ``service`` at ``endpoint``."""
        got = self._external.get((service, endpoint))
        if got is None:
            labels = {"service": service, "endpoint": endpoint, "model_id": self.model_id}
            labels["component"] = self.component
            got = self._external[(service, endpoint)] = ExternalCallMetrics(self._metrics, labels)
        return got

    def external_call(
        self, service: str, endpoint: str, seconds: float, batch: int, error_kind: str | None = None
    ) -> None:
        """One call to an external service (as :meth:`Metrics.external_call`)."""
        got = self._external.get((service, endpoint))
        if got is None:
            got = self.external(service, endpoint)
        got.call(seconds, batch, error_kind)


class _Forward:
    """Puts one of prometheus_client's default collectors into another registry."""

    def __init__(self, collector: Any) -> None:
        self.collector = collector

    def collect(self) -> Any:
        return self.collector.collect()


def _version() -> str:
    try:
        return importlib.metadata.version("inferflow-core")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
