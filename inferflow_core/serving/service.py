"""The four RPCs as raw-bytes grpc.aio handlers, served under ``Predict``, ``PredictService`` and
``Inferflow`` (method paths of go-compatibility §1.2 plus the 1.0.0 release-notes name).

Handlers take the serialized request (so an oversized message is INVALID_ARGUMENT naming the limit,
not a transport error) and return wire bytes (see ``wire.py``). Errors map to status codes in one
place (:func:`_status_of`). The client's deadline bounds the DAG; cancellation propagates.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from .._proto import inferflow_pb2, predict_pb2
from ..components.base import RequestInfo, RunContext, ServedRequest
from ..engine.compile import CompiledModel
from ..engine.explain import EXPLAIN_METADATA, ExplainRecorder, explain_mode
from ..engine.store import ConfigSnapshot
from ..errors import InferflowError, ModelNotFoundError, RequestError, sanitize
from ..matrix import SlateMatrix
from ..observability import logs, tracing
from ..runtime import Runtime
from . import adapters, json_api, responses, retrieve
from .admission import Admission
from .auth import APIS
from .budget import Budget
from .inputs import check_inputs

log = logging.getLogger("inferflow.serving")
access_log = logging.getLogger("inferflow.access")

PREDICT_SERVICES = ("Predict", "PredictService")
INFERFLOW_SERVICE = "Inferflow"
SERVICE_NAMES = (*PREDICT_SERVICES, INFERFLOW_SERVICE)

Handler = Callable[[bytes, Any], Awaitable[bytes]]


def _metadata(pairs: Any) -> dict[str, list[str]]:
    """The call's metadata (``invocation_metadata()``, as ``_guard`` read it once) by lower-case key."""
    out: dict[str, list[str]] = {}
    for key, value in pairs or ():
        if isinstance(value, str):
            out.setdefault(key.lower(), []).append(value)
    return out


class _Served:
    """What metrics, traces and log lines need to know about a request once it is known (model, rows);
    also the request scope of log lines (``logs.REQUEST``)."""

    __slots__ = ("api", "metadata", "model_id", "rows", "tracking_id")

    def __init__(self, api: str = "", metadata: Any = ()) -> None:
        self.api = api
        self.metadata = metadata
        self.model_id = ""
        self.rows = 0
        self.tracking_id = ""


# gRPC status -> HTTP status for the HTTP API (google.rpc's mapping, as grpc-gateway and KServe use it);
# errors reach it only through :func:`_status_of`, so both transports answer from the same mapping
HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


def http_status(code: grpc.StatusCode) -> int:
    """The HTTP status answering a call that ends with gRPC status ``code`` (500 for the rest)."""
    return HTTP_STATUS.get(code, 500)


def _status_of(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The one mapping of errors to status codes; the message is bounded and carries no paths."""
    if isinstance(exc, InferflowError):
        return exc.code, sanitize(exc.message)
    if isinstance(exc, MemoryError):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, "request needs more memory than the server has free"
    if isinstance(exc, RecursionError):
        return grpc.StatusCode.INVALID_ARGUMENT, "request: nested too deeply"
    return grpc.StatusCode.INTERNAL, sanitize(f"internal server error: {type(exc).__name__}: {exc}")


def _explain_apis(settings: Any) -> frozenset[str]:
    """APIs whose callers may ask for EXPLAIN: none unless enabled; with auth configured, only the APIs
    behind auth (their callers are authenticated before a handler runs), never an anonymous caller."""
    if not settings.explain_enabled:
        return frozenset()
    auth_on = bool(settings.auth_tokens or settings.auth_tokens_file or settings.auth_allowed_identities)
    protected = {a.strip() for a in settings.auth_apis.split(",")}
    return frozenset(a for a in APIS if not auth_on or a in protected)


class InferflowService:
    """Request handling shared by every API: size check, parse, model lookup, run, build, observe."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.plans = responses.PlanCache()
        self.observers = list(runtime.registry.request_observers)
        self.admission = Admission(self.settings, runtime.metrics)
        self._access_sample = float(getattr(self.settings, "access_log_sample", 0.0) or 0.0)
        self._api_handlers: dict[str, Handler] | None = None
        self.explain_apis = _explain_apis(self.settings)
        self.deferred_tasks: set[asyncio.Task[None]] = set()  # after-response jobs still running

    def _explainer(self, api: str, meta: dict[str, list[str]]) -> ExplainRecorder | None:
        """A recorder when this request asked for EXPLAIN and may have it (else None, the usual case)."""
        if api not in self.explain_apis:
            return None
        mode = explain_mode(meta)
        if mode is None:
            return None
        s = self.settings
        return ExplainRecorder(mode == "columns", s.explain_max_bytes, s.explain_sample_rows)

    @staticmethod
    def _send_explain(
        context: Any, recorder: ExplainRecorder | None, model: CompiledModel, ctx: RunContext
    ) -> None:
        setter = getattr(context, "set_trailing_metadata", None)  # gRPC only (not the HTTP API)
        if recorder is not None and setter is not None:
            setter(((EXPLAIN_METADATA, recorder.render(model, ctx)),))

    # -- shared steps -------------------------------------------------------------------------
    def _parse(self, raw: bytes, cls: Any) -> Any:
        limit = self.settings.max_message_bytes
        if len(raw) > limit:
            raise RequestError(
                f"request: message of {len(raw)} bytes exceeds the limit of {limit} bytes "
                "(INFERFLOW_MAX_MESSAGE_BYTES)"
            )
        try:
            return cls.FromString(raw)
        except DecodeError as exc:
            raise RequestError(
                f"request: not a valid {cls.__name__} message ({sanitize(str(exc), 200)})"
            ) from None

    @staticmethod
    def _model(snap: ConfigSnapshot, model_id: str) -> CompiledModel:
        model = snap.models.get(model_id)
        if model is not None:
            return model
        exc = ModelNotFoundError(model_id)
        rejected = snap.errors.get(model_id)
        if rejected is not None:
            exc.message = f"{exc.message} (config rejected: {sanitize(rejected.message, 512)})"
            exc.args = (exc.message,)
        raise exc

    def _deadline(self, context: Any) -> float:
        left = context.time_remaining()
        if left is None:
            left = self.settings.default_deadline_ms / 1000.0
        # answer before the client gives up, keeping enough time to build and send the partial result
        # (with per-item errors) rather than DEADLINE_EXCEEDED; backends are bounded by this deadline
        margin = self.settings.deadline_margin_ms / 1000.0
        left = max(0.0, left - min(margin, 0.2 * left))
        return asyncio.get_running_loop().time() + left

    def _observe(
        self, model: CompiledModel, ctx: RunContext, snap: ConfigSnapshot, context: Any = None
    ) -> None:
        if ctx.deferred:
            self._after_response(model, ctx, snap, context)
            return
        if not self.observers:
            return
        served = ServedRequest(model, ctx, snap.service, time.time())
        for obs in self.observers:
            try:
                obs.observe(served)
            except Exception:  # an observer never fails a request
                log.exception("request observer %r failed", obs)

    def _after_response(
        self, model: CompiledModel, ctx: RunContext, snap: ConfigSnapshot, context: Any
    ) -> None:
        """Start the request's deferred jobs when its RPC is done (response sent), then observe it."""
        loop = asyncio.get_running_loop()

        def spawn(_: Any = None) -> None:
            task = loop.create_task(self._run_deferred(model, ctx, snap))
            self.deferred_tasks.add(task)
            task.add_done_callback(self.deferred_tasks.discard)

        add_done = getattr(context, "add_done_callback", None)
        if add_done is None:
            loop.call_soon(spawn)
        else:  # (spawning directly in the callback measured slower: S1 p50 x1.24 vs x1.10-1.12)
            add_done(lambda _: loop.call_soon_threadsafe(spawn))

    async def _run_deferred(self, model: CompiledModel, ctx: RunContext, snap: ConfigSnapshot) -> None:
        jobs, ctx.deferred = ctx.deferred or [], None
        if len(jobs) == 1:  # the usual case: no gather, no extra task
            results: list[Any] = [None]
            try:
                await jobs[0]()
            except Exception as exc:
                results[0] = exc
        else:
            results = await asyncio.gather(*(job() for job in jobs), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                log.error("model %s: a deferred job failed: %r", model.model_id, result)
        self._observe(model, ctx, snap)

    async def drain_deferred(self, timeout: float) -> None:
        """Shutdown: let running deferred jobs (and the logging of their requests) finish within
        ``timeout`` s; cancel the rest."""
        tasks = list(self.deferred_tasks)
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()

    async def _guard(self, api: str, context: Any, work: Callable[[_Served], Awaitable[bytes]]) -> bytes:
        """Run ``work``, record metrics, and turn errors into a status (the one mapping place)."""
        start = time.perf_counter()
        status = grpc.StatusCode.OK
        metadata = context.invocation_metadata() or ()
        served = _Served(api, metadata)
        scope = logs.REQUEST.set(served)
        in_flight = self.runtime.metrics.in_flight(api)
        in_flight.inc()
        span = tracing.start_request(api, metadata) if tracing.enabled() else None
        admitted = False
        try:
            remaining = context.time_remaining()
            if not self.admission.enter(remaining):  # no free slot now: wait in the queue, or be refused
                await self.admission.acquire(remaining)
            admitted = True
            return await work(served)
        except asyncio.CancelledError:
            status = grpc.StatusCode.CANCELLED
            raise
        except Exception as exc:
            status, message = _status_of(exc)
            if status is grpc.StatusCode.INTERNAL or isinstance(exc, MemoryError | RecursionError):
                log.exception("api %s failed", api)
            await context.abort(status, message)
            raise  # pragma: no cover - abort raises
        finally:
            if admitted:
                self.admission.release()
            in_flight.dec()
            seconds = time.perf_counter() - start
            if span is not None:
                tracing.end_request(span, status, served.model_id, served.rows)
            self.runtime.metrics.api_request(
                api,
                status.name,
                status.value[0],
                seconds,
                served.rows,
                served.model_id,
                getattr(context, "transport", "grpc"),
            )
            if self._access_sample and (self._access_sample >= 1.0 or random.random() < self._access_sample):
                access_log.info(
                    "request",
                    extra={
                        "targets": served.rows,
                        "latency_ms": round(seconds * 1000, 3),
                        "status": status.name,
                    },
                )
            logs.REQUEST.reset(scope)

    async def _offload(self, size: int, fn: Callable[..., Any], *args: Any) -> Any:
        """Run CPU work proportional to the request inline when small, in a thread when large (the
        event loop keeps serving small requests meanwhile; the GIL is switched every few ms)."""
        if size <= self.settings.offload_bytes:
            return fn(*args)
        return await asyncio.to_thread(fn, *args)

    # -- Predict --------------------------------------------------------------------------------
    def _predict(self, api: str, cls: Any, decode: Callable[..., adapters.Decoded], grouped: bool) -> Handler:
        async def handler(raw: bytes, context: Any) -> bytes:
            def parse_and_decode(
                snap: ConfigSnapshot,
            ) -> tuple[Any, CompiledModel, Any, adapters.Decoded, SlateMatrix | None]:
                request = self._parse(raw, cls)
                model = self._model(snap, request.model_config_id)
                plan = self.plans.get(model)
                budget = Budget(self.settings)
                decoded = decode(request, plan.id_column, self.settings.request_value_encoding, raw, budget)
                decoded.notes = check_inputs(plan, decoded.initial, self.settings.produced_feature_policy)
                slates = SlateMatrix(decoded.slates) if decoded.slates is not None else None
                return request, model, plan, decoded, slates

            async def work(served: _Served) -> bytes:
                meta = _metadata(served.metadata)
                explain = self._explainer(api, meta)
                snap = self.runtime.store.current
                inline = len(raw) <= self.settings.offload_bytes  # small: no thread hand-off
                request, model, plan, decoded, slates = (
                    parse_and_decode(snap) if inline else await asyncio.to_thread(parse_and_decode, snap)
                )
                served.model_id = model.model_id
                served.tracking_id = request.tracking_id
                served.rows = decoded.initial.rows
                info = RequestInfo(api, request.tracking_id, meta, (meta.get("user-id") or [""])[0])
                ctx = await self.runtime.execute(
                    request.model_config_id,
                    decoded.initial,
                    info,
                    deadline=self._deadline(context),
                    slates=slates,
                    snapshot=snap,
                    lifecycle=explain,
                )
                if getattr(context, "answer_json", False):  # HTTP/JSON: the same parts, written as JSON
                    body = await self._offload(
                        len(raw), json_api.predict_json, api, model.model_id, plan, ctx, decoded, grouped
                    )
                else:
                    build = responses.build_grouped if grouped else responses.build_pointwise
                    body = (
                        build(plan, ctx, decoded)
                        if inline
                        else await asyncio.to_thread(build, plan, ctx, decoded)
                    )
                self._send_explain(context, explain, model, ctx)
                self._observe(model, ctx, snap, context)
                return body

            return await self._guard(api, context, work)

        return handler

    # -- RetrieveModelScore ----------------------------------------------------------------------
    async def retrieve_model_score(self, raw: bytes, context: Any) -> bytes:
        async def work(served: _Served) -> bytes:
            meta = _metadata(served.metadata)
            explain = self._explainer("retrieve_model_score", meta)
            snap = self.runtime.store.current

            def parse_and_decode() -> tuple[Any, Any, CompiledModel]:
                request = self._parse(raw, inferflow_pb2.InferflowRequestProto)
                initial = retrieve.decode_retrieve(request, meta, Budget(self.settings))
                model = self._model(snap, request.model_config_id)
                check_inputs(self.plans.get(model), initial, self.settings.produced_feature_policy)
                return request, initial, model

            request, initial, model = await self._offload(len(raw), parse_and_decode)
            served.model_id, served.rows = model.model_id, initial.rows
            served.tracking_id = request.tracking_id
            user_id = (meta.get("user-id") or [""])[0]
            info = RequestInfo("retrieve_model_score", request.tracking_id, meta, user_id)
            ctx = await self.runtime.execute(
                request.model_config_id,
                initial,
                info,
                deadline=self._deadline(context),
                snapshot=snap,
                lifecycle=explain,
            )
            rows = retrieve.component_rows(ctx.matrix, retrieve.response_columns(model, user_id))
            resp = inferflow_pb2.InferflowResponseProto(
                component_data=[inferflow_pb2.InferflowResponseProto.ComponentData(data=r) for r in rows]
            )
            body = resp.SerializeToString()
            self._send_explain(context, explain, model, ctx)
            self._observe(model, ctx, snap, context)
            return body

        return await self._guard("retrieve_model_score", context, work)

    # -- registration -----------------------------------------------------------------------------
    def api_handlers(self) -> dict[str, Handler]:
        """The raw-bytes handler of each API (auth name -> handler), shared by gRPC and HTTP."""
        handlers = self._api_handlers
        if handlers is None:
            handlers = {
                "pointwise": self._predict(
                    "pointwise", predict_pb2.PointWiseRequest, adapters.decode_pointwise, grouped=False
                ),
                "pairwise": self._predict(
                    "pairwise", predict_pb2.PairWiseRequest, adapters.decode_pairwise, grouped=True
                ),
                "slatewise": self._predict(
                    "slatewise", predict_pb2.SlateWiseRequest, adapters.decode_slatewise, grouped=True
                ),
                "retrieve_model_score": self.retrieve_model_score,
            }
            self._api_handlers = handlers
        return handlers

    def generic_handlers(self) -> list[grpc.GenericRpcHandler]:
        apis = self.api_handlers()
        predict = {
            "InferPointWise": apis["pointwise"],
            "InferPairWise": apis["pairwise"],
            "InferSlateWise": apis["slatewise"],
        }
        handlers = [
            grpc.method_handlers_generic_handler(
                name, {m: grpc.unary_unary_rpc_method_handler(fn) for m, fn in predict.items()}
            )
            for name in PREDICT_SERVICES
        ]
        handlers.append(
            grpc.method_handlers_generic_handler(
                INFERFLOW_SERVICE,
                {"RetrieveModelScore": grpc.unary_unary_rpc_method_handler(apis["retrieve_model_score"])},
            )
        )
        return handlers
