"""InferflowClient (blocking) and AsyncInferflowClient (grpc.aio): the public methods; see ``_base``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import grpc

from .._proto import inferflow_pb2_grpc, predict_pb2_grpc
from ._base import Metadata, _Base, _explain_meta, _grouped, _pointwise, _retrieve, _rpc_error
from ._http import AsyncHttpStub, HttpStub, HttpTransport
from ._result import PairwiseResult, PointwiseResult, RetrieveResult, SlatewiseResult


class InferflowClient(_Base):
    """A blocking client of an Inferflow server (the Predict and Inferflow gRPC services).

    ``target`` is ``host:port``; ``timeout`` (seconds) is each call's deadline; ``metadata`` is sent with
    every call; ``tls`` is ``True`` (system roots) or a :class:`TLS`; ``encoding`` must match the server's
    ``INFERFLOW_REQUEST_VALUE_ENCODING`` (``text``, the default, or ``binary``); with ``raise_errors``
    a response carrying ``request_error`` or a per-item error raises :class:`PredictionError`.
    ``transport="http"`` sends the same protobuf messages to the server's HTTP API (``target`` is then
    the HTTP port, ``INFERFLOW_HTTP_PORT``). Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, target: str = "127.0.0.1:8085", **options: Any) -> None:
        super().__init__(target, **options)
        self._http: HttpTransport | None = None
        self._predict: Any
        self._legacy: Any
        if self.transport == "http":
            self._http = HttpTransport(target, self.tls, self.max_message_bytes)
            self._predict = self._legacy = HttpStub(self._http)
            return
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
        if self._http is not None:
            self._http.close()
        else:
            self.channel.close()

    def _invoke(
        self,
        method: str,
        stub_call: Any,
        request: Any,
        timeout: float | None,
        metadata: Metadata,
        explain: Any,
    ) -> tuple[Any, Any]:
        try:
            if not explain:
                return stub_call(request, **self._call_args(timeout, metadata)), None
            if self._http is not None:
                raise ValueError("explain: the EXPLAIN trailer needs the gRPC transport")
            resp, call = stub_call.with_call(
                request, **self._call_args(timeout, _explain_meta(metadata, explain))
            )
            return resp, call.trailing_metadata()
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
        explain: bool | str = False,
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
        resp, trailer = self._invoke(
            "InferPointWise", self._predict.InferPointWise, req, timeout, metadata, explain
        )
        return self._finish(_pointwise(resp), raise_errors, trailer)

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
        explain: bool | str = False,
    ) -> PairwiseResult:
        """Score ``pairs`` (``(first, second)`` target indices) of ``targets``; see :meth:`pointwise`.
        ``pair_features`` holds one value per pair."""
        req = self._grouped_request(
            "pair", model_id, targets, pairs, pair_features, features=features, context=context, types=types,
            id_column=id_column, tracking_id=tracking_id, tenant_id=tenant_id,
        )  # fmt: skip
        resp, trailer = self._invoke(
            "InferPairWise", self._predict.InferPairWise, req, timeout, metadata, explain
        )
        return self._finish(_grouped(resp, "pair"), raise_errors, trailer)

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
        explain: bool | str = False,
    ) -> SlatewiseResult:
        """Score ``slates`` (lists of target indices) of ``targets``; see :meth:`pointwise`.
        ``slate_features`` holds one value per slate."""
        req = self._grouped_request(
            "slate", model_id, targets, slates, slate_features, features=features, context=context,
            types=types, id_column=id_column, tracking_id=tracking_id, tenant_id=tenant_id,
        )  # fmt: skip
        resp, trailer = self._invoke(
            "InferSlateWise", self._predict.InferSlateWise, req, timeout, metadata, explain
        )
        return self._finish(_grouped(resp, "slate"), raise_errors, trailer)

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
        explain: bool | str = False,
    ) -> RetrieveResult:
        """The legacy entity API: ``entities`` maps an entity name to its ids (the first entity's ids are
        the rows; one id broadcasts), ``features`` maps a name to one text value per row. The result's
        columns are text."""
        req = self._retrieve_request(model_id, entities, features, tracking_id)
        resp, trailer = self._invoke(
            "RetrieveModelScore", self._legacy.RetrieveModelScore, req, timeout, metadata, explain
        )
        return self._finish(_retrieve(resp), raise_errors, trailer)


class AsyncInferflowClient(_Base):
    """The asyncio twin of :class:`InferflowClient` (grpc.aio): the same options and methods, awaited.

    Create it inside a running event loop; ``async with`` closes the channel.
    """

    def __init__(self, target: str = "127.0.0.1:8085", **options: Any) -> None:
        super().__init__(target, **options)
        self._http: HttpTransport | None = None
        self._predict: Any
        self._legacy: Any
        if self.transport == "http":  # blocking HTTP calls in worker threads, one connection each
            self._http = HttpTransport(target, self.tls, self.max_message_bytes)
            self._predict = self._legacy = AsyncHttpStub(self._http)
            return
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
        if self._http is not None:
            self._http.close()
        else:
            await self.channel.close()

    async def _invoke(
        self,
        method: str,
        stub_call: Any,
        request: Any,
        timeout: float | None,
        metadata: Metadata,
        explain: Any,
    ) -> tuple[Any, Any]:
        try:
            if not explain:
                return await stub_call(request, **self._call_args(timeout, metadata)), None
            if self._http is not None:
                raise ValueError("explain: the EXPLAIN trailer needs the gRPC transport")
            call = stub_call(request, **self._call_args(timeout, _explain_meta(metadata, explain)))
            return await call, await call.trailing_metadata()
        except grpc.RpcError as exc:
            raise _rpc_error(method, exc) from None

    async def pointwise(
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
        explain: bool | str = False,
    ) -> PointwiseResult:
        """See :meth:`InferflowClient.pointwise`."""
        req = self._pointwise_request(
            model_id, targets, features=features, context=context, types=types, id_column=id_column,
            tracking_id=tracking_id, tenant_id=tenant_id,
        )  # fmt: skip
        resp, trailer = await self._invoke(
            "InferPointWise", self._predict.InferPointWise, req, timeout, metadata, explain
        )
        return self._finish(_pointwise(resp), raise_errors, trailer)

    async def pairwise(
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
        explain: bool | str = False,
    ) -> PairwiseResult:
        """See :meth:`InferflowClient.pairwise`."""
        req = self._grouped_request(
            "pair", model_id, targets, pairs, pair_features, features=features, context=context, types=types,
            id_column=id_column, tracking_id=tracking_id, tenant_id=tenant_id,
        )  # fmt: skip
        resp, trailer = await self._invoke(
            "InferPairWise", self._predict.InferPairWise, req, timeout, metadata, explain
        )
        return self._finish(_grouped(resp, "pair"), raise_errors, trailer)

    async def slatewise(
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
        explain: bool | str = False,
    ) -> SlatewiseResult:
        """See :meth:`InferflowClient.slatewise`."""
        req = self._grouped_request(
            "slate", model_id, targets, slates, slate_features, features=features, context=context,
            types=types, id_column=id_column, tracking_id=tracking_id, tenant_id=tenant_id,
        )  # fmt: skip
        resp, trailer = await self._invoke(
            "InferSlateWise", self._predict.InferSlateWise, req, timeout, metadata, explain
        )
        return self._finish(_grouped(resp, "slate"), raise_errors, trailer)

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
        explain: bool | str = False,
    ) -> RetrieveResult:
        """See :meth:`InferflowClient.retrieve_model_score`."""
        req = self._retrieve_request(model_id, entities, features, tracking_id)
        resp, trailer = await self._invoke(
            "RetrieveModelScore", self._legacy.RetrieveModelScore, req, timeout, metadata, explain
        )
        return self._finish(_retrieve(resp), raise_errors, trailer)
