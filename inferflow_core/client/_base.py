"""What both clients share: options (TLS, metadata, encoding), request building, response decoding."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from .._proto import inferflow_pb2, predict_pb2
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
        transport: str = "grpc",
    ) -> None:
        if encoding not in (enc.TEXT, enc.BINARY):
            raise ValueError(f"encoding must be 'text' or 'binary', not {encoding!r}")
        if transport not in ("grpc", "http"):
            raise ValueError(f"transport must be 'grpc' or 'http', not {transport!r}")
        self.transport = transport
        self.max_message_bytes = max_message_bytes
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
        """Per-call options; a per-call metadata key replaces the client's."""
        extra = _pairs(metadata)
        keys = {k for k, _ in extra}
        return {
            "timeout": self.timeout if timeout is None else timeout,
            "metadata": [p for p in self.metadata if p[0] not in keys] + extra,
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

    def _finish(self, result: Any, raise_errors: bool | None, trailer: Any = None) -> Any:
        if trailer is not None:
            result.explain = _explain_of(trailer)
        if self.raise_errors if raise_errors is None else raise_errors:
            result.raise_for_errors()
        return result


def _explain_meta(metadata: Metadata, explain: bool | str) -> list[tuple[str, str]]:
    """The call's metadata plus ``inferflow-explain`` (``1``, or ``columns`` to sample written columns)."""
    value = explain if isinstance(explain, str) else "1"
    return [*_pairs(metadata), ("inferflow-explain", value)]


def _explain_of(trailer: Any) -> dict[str, Any] | None:
    """The server's EXPLAIN report from the trailing metadata (None when the server sent none: explain is
    off there, or the caller may not have it)."""
    for key, value in trailer or ():
        if key == "inferflow-explain":
            text = value.decode() if isinstance(value, bytes) else value
            report: dict[str, Any] = json.loads(text)
            return report
    return None


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
