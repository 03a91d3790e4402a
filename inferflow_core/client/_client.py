"""InferflowClient (blocking) and AsyncInferflowClient (grpc.aio): build requests, call, decode."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from .._proto import inferflow_pb2, inferflow_pb2_grpc, predict_pb2, predict_pb2_grpc
from . import _encode as enc
from ._result import (
    GroupedResult,
    PairwiseResult,
    PointwiseResult,
    RetrieveResult,
    RPCError,
    SlatewiseResult,
    Table,
)

Metadata = Mapping[str, str] | Sequence[tuple[str, str]] | None


@dataclass(frozen=True)
class TLS:
    """TLS for the channel. Empty fields use the system roots / no client certificate."""

    root_certificates: bytes | None = None
    private_key: bytes | None = None
    certificate_chain: bytes | None = None
    server_name: str | None = None  # overrides the name checked against the server's certificate

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(self.root_certificates, self.private_key, self.certificate_chain)

    def options(self) -> list[tuple[str, str]]:
        return [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []


def _pairs(metadata: Metadata) -> list[tuple[str, str]]:
    items = metadata.items() if isinstance(metadata, Mapping) else (metadata or [])
    return [(str(k).lower(), str(v)) for k, v in items]


class _Base:
    """Options, request building and response decoding shared by both clients."""

    def __init__(
        self,
        target: str = "127.0.0.1:8085",
        *,
        timeout: float | None = 30.0,
        metadata: Metadata = None,
        tls: bool | TLS = False,
        encoding: str = enc.TEXT,
        raise_errors: bool = False,
        max_message_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        if encoding not in (enc.TEXT, enc.BINARY):
            raise ValueError(f"encoding must be 'text' or 'binary', not {encoding!r}")
        self.target, self.timeout, self.encoding = target, timeout, encoding
        self.metadata = _pairs(metadata)
        self.tls = TLS() if tls is True else (tls or None)
        self.raise_errors = raise_errors
        self._options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            *(self.tls.options() if self.tls else []),
        ]

    def _call_args(self, timeout: float | None, metadata: Metadata) -> dict[str, Any]:
        return {
            "timeout": self.timeout if timeout is None else timeout,
            "metadata": self.metadata + _pairs(metadata),
        }

    def _common(
        self, model_id: str, targets: Any, features: Any, context: Any, types: Any, id_column: str | None
    ) -> dict[str, Any]:
        ids, frame_features = enc.target_ids(targets, id_column)
        if not ids:
            raise ValueError("targets: at least one target is required")
        typed = enc.check_types(types)
        schema, rows = enc.encode_features(
            features if features is not None else frame_features, len(ids), typed, self.encoding
        )
        return {
            "model_config_id": model_id,
            "context_features": [
                predict_pb2.ContextFeature(name=n, value=v, data_type=d.wire_name)
                for n, d, v in enc.encode_context(context, typed, self.encoding)
            ],
            "target_input_schema": [
                predict_pb2.FeatureSchema(name=n, data_type=d.wire_name) for n, d in schema
            ],
            "targets": [predict_pb2.Target(id=i, feature_values=r) for i, r in zip(ids, rows, strict=True)],
        }

    def _pointwise_request(self, model_id: str, targets: Any, **kw: Any) -> predict_pb2.PointWiseRequest:
        extra = {k: kw.pop(k) for k in ("tracking_id", "tenant_id")}
        return predict_pb2.PointWiseRequest(**self._common(model_id, targets, **kw), **extra)

    def _grouped_request(
        self, kind: str, model_id: str, targets: Any, groups: Any, group_features: Any, **kw: Any
    ) -> Any:
        extra = {k: kw.pop(k) for k in ("tracking_id", "tenant_id")}
        indices = enc.index_lists(groups, f"{kind}s")
        typed = enc.check_types(kw.get("types"))
        schema, rows = enc.encode_features(group_features, len(indices), typed, self.encoding)
        body = self._common(model_id, targets, **kw) | extra
        body[f"{kind}_input_schema"] = [
            predict_pb2.FeatureSchema(name=n, data_type=d.wire_name) for n, d in schema
        ]
        if kind == "pair":
            for i, pair in enumerate(indices):
                if len(pair) != 2:
                    raise ValueError(f"pairs[{i}]: a pair has two target indices, got {pair}")
            body["pairs"] = [
                predict_pb2.TargetPair(first_target_index=a, second_target_index=b, feature_values=r)
                for (a, b), r in zip(indices, rows, strict=True)
            ]
            return predict_pb2.PairWiseRequest(**body)
        body["slates"] = [
            predict_pb2.TargetSlate(target_indices=s, feature_values=r)
            for s, r in zip(indices, rows, strict=True)
        ]
        return predict_pb2.SlateWiseRequest(**body)

    def _retrieve_request(
        self, model_id: str, entities: Mapping[str, Any], features: Mapping[str, Any] | None, tracking_id: str
    ) -> inferflow_pb2.InferflowRequestProto:
        entity = inferflow_pb2.InferflowRequestProto.Entity
        out = []
        for k, (name, ids) in enumerate(entities.items()):
            ids = [ids] if isinstance(ids, str | int) else ids
            feats = (
                [
                    entity.Feature(name=f, ids_feature_value=[str(v) for v in vals])
                    for f, vals in (features or {}).items()
                ]
                if k == 0
                else []
            )
            out.append(entity(entity=name, ids=[str(i) for i in ids], features=feats))
        if not out:
            raise ValueError("entities: at least one entity is required")
        return inferflow_pb2.InferflowRequestProto(
            model_config_id=model_id, entities=out, tracking_id=tracking_id
        )

    def _finish(self, result: Any, raise_errors: bool | None) -> Any:
        if self.raise_errors if raise_errors is None else raise_errors:
            result.raise_for_errors()
        return result


def _pointwise(resp: predict_pb2.PointWiseResponse) -> PointwiseResult:
    t = Table.decode(resp.target_output_schema, resp.target_scores)
    return PointwiseResult(t.schema, t.values, t.valid, t.errors, resp.request_error)


def _grouped(resp: Any, kind: str) -> GroupedResult:
    groups = Table.decode(getattr(resp, f"{kind}_output_schema"), getattr(resp, f"{kind}_scores"))
    targets = Table.decode(resp.target_output_schema, resp.target_scores)
    cls = PairwiseResult if kind == "pair" else SlatewiseResult
    return cls(groups, targets, resp.request_error, kind)


def _retrieve(resp: inferflow_pb2.InferflowResponseProto) -> RetrieveResult:
    return RetrieveResult.from_rows([list(r.data) for r in resp.component_data], resp.error.message)


def _rpc_error(method: str, exc: grpc.RpcError) -> RPCError:
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = exc.details() if hasattr(exc, "details") else str(exc)
    return RPCError(method, code, details or "")


class InferflowClient(_Base):
    """A blocking client of an Inferflow server (the Predict and Inferflow gRPC services).

    ``target`` is ``host:port``; ``timeout`` (seconds) is each call's deadline; ``metadata`` is sent with
    every call; ``tls`` is ``True`` (system roots) or a :class:`TLS`; ``encoding`` must match the server's
    ``INFERFLOW_REQUEST_VALUE_ENCODING`` (``text``, the default, or ``binary``); with ``raise_errors``
    a response carrying ``request_error`` or a per-item error raises :class:`PredictionError`.
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, target: str = "127.0.0.1:8085", **options: Any) -> None:
        super().__init__(target, **options)
        if self.tls is not None:
            self.channel = grpc.secure_channel(target, self.tls.credentials(), self._options)
        else:
            self.channel = grpc.insecure_channel(target, self._options)
        self._predict = predict_pb2_grpc.PredictStub(self.channel)
        self._legacy = inferflow_pb2_grpc.InferflowStub(self.channel)

    def __enter__(self) -> InferflowClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def _invoke(
        self, method: str, stub_call: Any, request: Any, timeout: float | None, metadata: Metadata
    ) -> Any:
        try:
            return stub_call(request, **self._call_args(timeout, metadata))
        except grpc.RpcError as exc:
            raise _rpc_error(method, exc) from None

    def pointwise(
        self,
        model_id: str,
        targets: Any,
        *,
        features: Any = None,
        context: Mapping[str, Any] | None = None,
        types: Mapping[str, Any] | None = None,
        id_column: str | None = None,
        tracking_id: str = "",
        tenant_id: str = "",
        timeout: float | None = None,
        metadata: Metadata = None,
        raise_errors: bool | None = None,
    ) -> PointwiseResult:
        """Score ``targets`` (ids, a numpy array, or a DataFrame whose ``id_column`` / ``id`` column or
        index holds the ids and whose other columns are features) with model ``model_id``.

        ``features`` maps a name to one value per target (list, numpy array, Series; a 2-D array or a list
        of lists is a vector feature), or is a DataFrame; ``context`` maps a name to one value for the
        whole request. Types come from the values (numpy dtype; ``str`` -> STRING) unless ``types`` names
        one (``{"price": "fp32", "emb": "fp32_vector"}``).
        """
        req = self._pointwise_request(
            model_id, targets, features=features, context=context, types=types, id_column=id_column,
            tracking_id=tracking_id, tenant_id=tenant_id,
        )  # fmt: skip
        resp = self._invoke("InferPointWise", self._predict.InferPointWise, req, timeout, metadata)
        return self._finish(_pointwise(resp), raise_errors)

    def pairwise(
        self,
        model_id: str,
        targets: Any,
        pairs: Sequence[Sequence[int]],
        *,
        features: Any = None,
        pair_features: Any = None,
        context: Mapping[str, Any] | None = None,
        types: Mapping[str, Any] | None = None,
        id_column: str | None = None,
        tracking_id: str = "",
        tenant_id: str = "",
        timeout: float | None = None,
        metadata: Metadata = None,
        raise_errors: bool | None = None,
    ) -> PairwiseResult:
        """Score ``pairs`` (``(first, second)`` target indices) of ``targets``; see :meth:`pointwise`.
        ``pair_features`` holds one value per pair."""
        req = self._grouped_request(
            "pair", model_id, targets, pairs, pair_features, features=features, context=context, types=types,
            id_column=id_column, tracking_id=tracking_id, tenant_id=tenant_id,
        )  # fmt: skip
        resp = self._invoke("InferPairWise", self._predict.InferPairWise, req, timeout, metadata)
        return self._finish(_grouped(resp, "pair"), raise_errors)  # type: ignore[no-any-return]

    def slatewise(
        self,
        model_id: str,
        targets: Any,
        slates: Sequence[Sequence[int]],
        *,
        features: Any = None,
        slate_features: Any = None,
        context: Mapping[str, Any] | None = None,
        types: Mapping[str, Any] | None = None,
        id_column: str | None = None,
        tracking_id: str = "",
        tenant_id: str = "",
        timeout: float | None = None,
        metadata: Metadata = None,
        raise_errors: bool | None = None,
    ) -> SlatewiseResult:
        """Score ``slates`` (lists of target indices) of ``targets``; see :meth:`pointwise`.
        ``slate_features`` holds one value per slate."""
        req = self._grouped_request(
            "slate", model_id, targets, slates, slate_features, features=features, context=context,
            types=types, id_column=id_column, tracking_id=tracking_id, tenant_id=tenant_id,
        )  # fmt: skip
        resp = self._invoke("InferSlateWise", self._predict.InferSlateWise, req, timeout, metadata)
        return self._finish(_grouped(resp, "slate"), raise_errors)  # type: ignore[no-any-return]

    def retrieve_model_score(
        self,
        model_id: str,
        entities: Mapping[str, Any],
        *,
        features: Mapping[str, Sequence[Any]] | None = None,
        tracking_id: str = "",
        timeout: float | None = None,
        metadata: Metadata = None,
        raise_errors: bool | None = None,
    ) -> RetrieveResult:
        """The legacy entity API: ``entities`` maps an entity name to its ids (the first entity's ids are
        the rows; one id broadcasts), ``features`` maps a name to one text value per row. The result's
        columns are text."""
        req = self._retrieve_request(model_id, entities, features, tracking_id)
        resp = self._invoke("RetrieveModelScore", self._legacy.RetrieveModelScore, req, timeout, metadata)
        return self._finish(_retrieve(resp), raise_errors)  # type: ignore[no-any-return]


class AsyncInferflowClient(_Base):
    """The asyncio twin of :class:`InferflowClient` (grpc.aio): the same options and methods, awaited.

    Create it inside a running event loop; ``async with`` closes the channel.
    """

    def __init__(self, target: str = "127.0.0.1:8085", **options: Any) -> None:
        super().__init__(target, **options)
        if self.tls is not None:
            self.channel = grpc.aio.secure_channel(target, self.tls.credentials(), self._options)
        else:
            self.channel = grpc.aio.insecure_channel(target, self._options)
        self._predict = predict_pb2_grpc.PredictStub(self.channel)
        self._legacy = inferflow_pb2_grpc.InferflowStub(self.channel)

    async def __aenter__(self) -> AsyncInferflowClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.channel.close()

    async def _invoke(
        self, method: str, stub_call: Any, request: Any, timeout: float | None, metadata: Metadata
    ) -> Any:
        try:
            return await stub_call(request, **self._call_args(timeout, metadata))
        except grpc.RpcError as exc:
            raise _rpc_error(method, exc) from None

    async def pointwise(self, model_id: str, targets: Any, **kw: Any) -> PointwiseResult:
        """See :meth:`InferflowClient.pointwise`."""
        call, raise_errors = _call_options(kw)
        req = self._pointwise_request(model_id, targets, **_defaults(kw))
        resp = await self._invoke("InferPointWise", self._predict.InferPointWise, req, *call)
        return self._finish(_pointwise(resp), raise_errors)  # type: ignore[no-any-return]

    async def pairwise(
        self,
        model_id: str,
        targets: Any,
        pairs: Sequence[Sequence[int]],
        *,
        pair_features: Any = None,
        **kw: Any,
    ) -> PairwiseResult:
        """See :meth:`InferflowClient.pairwise`."""
        call, raise_errors = _call_options(kw)
        req = self._grouped_request("pair", model_id, targets, pairs, pair_features, **_defaults(kw))
        resp = await self._invoke("InferPairWise", self._predict.InferPairWise, req, *call)
        return self._finish(_grouped(resp, "pair"), raise_errors)  # type: ignore[no-any-return]

    async def slatewise(
        self,
        model_id: str,
        targets: Any,
        slates: Sequence[Sequence[int]],
        *,
        slate_features: Any = None,
        **kw: Any,
    ) -> SlatewiseResult:
        """See :meth:`InferflowClient.slatewise`."""
        call, raise_errors = _call_options(kw)
        req = self._grouped_request("slate", model_id, targets, slates, slate_features, **_defaults(kw))
        resp = await self._invoke("InferSlateWise", self._predict.InferSlateWise, req, *call)
        return self._finish(_grouped(resp, "slate"), raise_errors)  # type: ignore[no-any-return]

    async def retrieve_model_score(
        self,
        model_id: str,
        entities: Mapping[str, Any],
        *,
        features: Mapping[str, Sequence[Any]] | None = None,
        tracking_id: str = "",
        timeout: float | None = None,
        metadata: Metadata = None,
        raise_errors: bool | None = None,
    ) -> RetrieveResult:
        """See :meth:`InferflowClient.retrieve_model_score`."""
        req = self._retrieve_request(model_id, entities, features, tracking_id)
        resp = await self._invoke(
            "RetrieveModelScore", self._legacy.RetrieveModelScore, req, timeout, metadata
        )
        return self._finish(_retrieve(resp), raise_errors)  # type: ignore[no-any-return]


_REQUEST_KEYS = ("features", "context", "types", "id_column", "tracking_id", "tenant_id")


def _call_options(kw: dict[str, Any]) -> tuple[tuple[float | None, Metadata], bool | None]:
    """Pop the per-call options (timeout, metadata, raise_errors); reject unknown keywords."""
    call = (kw.pop("timeout", None), kw.pop("metadata", None))
    raise_errors = kw.pop("raise_errors", None)
    unknown = set(kw) - set(_REQUEST_KEYS)
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    return call, raise_errors


def _defaults(kw: dict[str, Any]) -> dict[str, Any]:
    return {"features": None, "context": None, "types": None, "id_column": None} | {
        "tracking_id": "", "tenant_id": "",
    } | kw  # fmt: skip
