"""The Component protocol: what a plugin's component type builds and what the engine runs."""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel

from ..dtypes import DataType
from ..matrix import ComponentMatrix, SlateMatrix

if TYPE_CHECKING:
    from ..config.model import ModelConfig, ServiceConfig
    from ..engine.compile import CompiledModel
    from ..engine.explain import NodeLifecycle
    from ..observability.metrics import Metrics
    from .feature_init import InitialData


@dataclass(frozen=True)
class ColumnSpec:
    """A column a component produces (or needs). ``slate`` columns live in the slate matrix.

    ``constant`` columns are filled with that text for every row by the feature initializer.
    """

    name: str
    dtype: DataType
    slate: bool = False
    constant: str | None = None


@dataclass(frozen=True)
class ColumnRead:
    """A column a component reads, for load-time validation: ``path`` is the JSON path of the config
    field naming it, below the component's entry (e.g. ``inputs[0].features[2]``)."""

    name: str
    path: str = ""
    slate: bool = False  # read from the slate matrix
    slate_ok: bool = False  # a slate component's target read: a pair/slate column is broadcast over the slate
    # the column is an input feature of an ML model the component calls: RetrieveModelScore lists these
    # columns first for users sampled by ``response_config.model_schema_features_perc``
    model_input: bool = False


@dataclass(frozen=True)
class ComponentFailure:
    """A contained failure: which model, which component, what kind, what happened."""

    model_id: str
    component: str
    kind: str  # "error" | "timeout" | "deadline" | "cancelled" | a plugin-specific kind
    message: str


@dataclass
class RequestInfo:
    """What the serving layer knows about the request, for components that need it."""

    api: str  # "pointwise" | "pairwise" | "slatewise" | "retrieve_model_score"
    tracking_id: str = ""
    metadata: Mapping[str, Sequence[str]] = field(default_factory=dict)
    user_id: str = ""


class ConfigView(Protocol):
    """Read access to the current config tree (keys relative to ``/config/``)."""

    def get(self, key: str) -> str | None: ...


class Executing:
    """How many requests a process is executing (running a DAG) now; the runtime counts them."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


@dataclass
class RunContext:
    """Everything a component's ``run`` gets. Components write disjoint columns of ``matrix``."""

    model_id: str
    matrix: ComponentMatrix
    request: RequestInfo
    config: ConfigView
    slate_matrix: SlateMatrix | None = None
    deadline: float | None = None  # event-loop time (asyncio loop.time()) by which all work must end
    failures: list[ComponentFailure] = field(default_factory=list)
    initial: InitialData | None = None  # the serving adapter's decoded request (the feature initializer's)
    notes: list[str] = field(default_factory=list)  # request-level problems reported in request_error
    target_errors: dict[int, str] = field(default_factory=dict)  # target row -> per-target error
    # a node-lifecycle adapter (engine/explain.py) when the request asked for EXPLAIN; None costs nothing
    lifecycle: NodeLifecycle | None = None
    deferred: list[Callable[[], Awaitable[None]]] | None = None  # see ``after_response``
    executing: Executing | None = None  # the runtime's count, see ``concurrent_requests``

    def after_response(self, job: Callable[[], Awaitable[None]]) -> None:
        """Run ``job()`` once the response has been sent, never on the request's critical path (e.g. a
        shadow model call). The request observers (inference logging) see the request after every
        deferred job ended, so columns a job writes are logged with the request. A job must bound its own
        time and concurrency; an exception it raises is logged and ignored."""
        if self.deferred is None:
            self.deferred = []
        self.deferred.append(job)

    def concurrent_requests(self) -> int:
        """Requests this process is executing now, this one included: 1 when it serves nothing else. A
        component may then do on the event loop work it hands to a thread under load (nothing else is
        waiting for the loop, and the hand-off's two thread wake-ups are saved)."""
        executing = self.executing
        return 1 if executing is None else max(1, executing.count)

    def remaining(self) -> float | None:
        """Seconds left of the request's budget (None = unbounded). Never negative."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - asyncio.get_running_loop().time())

    def bound(self, seconds: float | None) -> float | None:
        """``min(seconds, remaining())`` treating None as unbounded: a timeout for a downstream call."""
        left = self.remaining()
        if seconds is None:
            return left
        return seconds if left is None else min(seconds, left)

    def target_error(self, row: int, message: str) -> None:
        """Give target ``row`` a per-target ``error`` (the first message for a row wins)."""
        self.target_errors.setdefault(row, message)

    def note(self, component: str, key: str, n: int = 1) -> None:
        """Count ``n`` of ``key`` (``cache_hits``, ``cache_misses`` ...) for EXPLAIN; a no-op otherwise."""
        lifecycle = self.lifecycle
        if lifecycle is not None:
            lifecycle.note(component, key, n)

    def external_call(
        self, component: str, endpoint: str, batches: int, rows: int, seconds: float | None = None
    ) -> None:
        """Record a call to an external service (its batches and rows) for EXPLAIN; a no-op otherwise."""
        lifecycle = self.lifecycle
        if lifecycle is not None:
            lifecycle.external_call(component, endpoint, batches, rows, seconds)

    def fail(self, component: str, kind: str, message: str) -> None:
        """Record a contained failure (the engine also calls this for exceptions and timeouts)."""
        self.failures.append(ComponentFailure(self.model_id, component, kind, message))


class Component(abc.ABC):
    """One DAG node. Built once per model-config version; ``run`` is called once per request."""

    kind: ClassVar[str] = "component"

    def __init__(self, name: str, model_id: str) -> None:
        self.name = name
        self.model_id = model_id

    timeout: float | None = None  # seconds; None = only the request deadline bounds it

    def outputs(self) -> Sequence[ColumnSpec]:
        """Columns this component writes (declared by the feature initializer, checked for collisions)."""
        return ()

    def required_columns(self) -> Sequence[ColumnSpec]:
        """Columns this component reads that must exist (created empty when the request lacks them)."""
        return ()

    def log_columns(self) -> Sequence[ColumnSpec]:
        """Outputs logged whatever ``response_config.log_features`` selects (e.g. shadow scores written
        after the response); they must be among :meth:`outputs`. Default: none."""
        return ()

    def reads(self) -> Sequence[ColumnRead]:
        """Every column this component reads, with the config field naming it (checked at load: each
        must be produced by an upstream component or come from the request). Default: the
        ``required_columns``; override to name config paths or add columns read without requiring them."""
        return tuple(ColumnRead(s.name, "", s.slate) for s in self.required_columns())

    @abc.abstractmethod
    async def run(self, ctx: RunContext) -> None:
        """Do the work. Raise (or call ``ctx.fail``) on failure: the engine contains it."""


@dataclass(frozen=True)
class BuildContext:
    """What a component type gets when it builds a component for one model-config version."""

    model_id: str
    model: ModelConfig
    config: ConfigView
    metrics: Metrics


@runtime_checkable
class ComponentType(Protocol):
    """A component type a plugin registers, keyed by the config section it consumes.

    ``config_model`` validates one entry of ``component_config.<config_key>`` (errors name the
    JSON path); ``build`` turns a validated entry into a :class:`Component`.

    A type that holds long-lived resources (channels, sessions, caches) may also define
    ``async def aclose(self) -> None``: the server awaits it once at shutdown, after in-flight requests
    have finished (see :func:`close_component_types`).
    """

    config_key: str

    @property
    def config_model(self) -> type[BaseModel]: ...  # a class attribute in implementations

    def build(self, config: Any, ctx: BuildContext) -> Component: ...


class Stopwatch:
    """Tiny helper for latency metrics."""

    __slots__ = ("start",)

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


@dataclass
class ServedRequest:
    """Handed to request observers after the response was built (never on the critical path).

    ``model`` is the CompiledModel that served it, ``ctx`` the finished run (matrix, slate matrix,
    failures), ``service`` the snapshot's ServiceConfig (``v2_logging_type``, ``compression_enabled``).
    """

    model: CompiledModel
    ctx: RunContext
    service: ServiceConfig
    received_at: float  # unix seconds


@dataclass(frozen=True)
class ObserverHost:
    """What the server hands a request observer at start: the process's metrics registry and
    ``registered(hook_name)``, what the plugins registered through a hook some plugin added (name ->
    object; e.g. the logging plugin's ``register_log_formats``)."""

    metrics: Any
    registered: Callable[[str], Mapping[str, Any]]


@runtime_checkable
class RequestObserver(Protocol):
    """Registered through ``register_request_observers``. ``observe`` must not block: queue and return."""

    def observe(self, served: ServedRequest) -> None: ...

    async def start(self, host: ObserverHost) -> None: ...

    async def stop(self, grace_s: float) -> None: ...


async def close_component_types(types: Mapping[str, ComponentType], timeout_s: float) -> list[str]:
    """Await ``aclose()`` of every registered component type that has one, each bounded by
    ``timeout_s``; returns the config keys whose close failed or timed out (logged, never raised)."""
    import logging

    failed: list[str] = []
    for key, ctype in types.items():
        close = getattr(ctype, "aclose", None)
        if close is None:
            continue
        try:
            await asyncio.wait_for(close(), timeout_s)
        except Exception as exc:  # shutdown goes on: one plugin must not keep the process alive
            logging.getLogger("inferflow.plugins").error("closing component type %r failed: %r", key, exc)
            failed.append(key)
    return failed
