"""The Kafka envelope of reference 7.5.

``KafkaRequest{value: KafkaEventValue{properties: Any(InferflowLog)}}``, no key, no headers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from google.protobuf import any_pb2

from inferflow_core.api import kafka_request_pb2, log_pb2

EVENT_NAME = "inferflow_inference_logs"
SLATE_EVENT_NAME = "inferflow_inference_slate_logs"  # ours: slate / pair matrices (the anchor logged none)
PARENT_ENTITY_KEYS = ("parent_catalog_id", "search_query", "clp_id", "collection_id")


def parent_entity(metadata: Mapping[str, Sequence[str]]) -> list[str]:
    """``[first non-empty value among the parent keys]`` or ``[]``."""
    for key in PARENT_ENTITY_KEYS:
        for value in metadata.get(key, ()) or ():
            if value:
                return [value]
    return []


def wrap(
    *,
    user_id: str,
    tracking_id: str,
    model_id: str,
    entities: Sequence[str],
    features: Sequence[bytes],
    metadata: bytes,
    parents: Sequence[str],
    created_at: int,
    event_name: str = EVENT_NAME,
) -> bytes:
    """One serialized KafkaRequest: exactly the Kafka message value (no key, no headers).

    Written directly in the protobuf wire format, fields in number order and proto3 defaults omitted
    — the bytes the generated classes serialize (``wrap_with_messages``; a test holds them equal) —
    without copying each feature blob into a message object first (a parquet chunk is ~300 KB).
    """
    parts: list[bytes] = [_str(1, user_id), _str(2, tracking_id), _str(3, model_id)]
    for entity in entities:
        raw = entity.encode("utf-8")
        parts.append(_ENTITY_HEADS[len(raw)] if len(raw) < 128 else _varint(0x22) + _varint(len(raw)))
        parts.append(raw)
    heads: dict[int, bytes] = {}  # feature length -> PerEntityFeatures header (rows share lengths)
    for blob in features:
        size = len(blob)
        head = heads.get(size)
        if head is None:
            inner = b"\x0a" + _varint(size) if size else b""
            head = heads[size] = b"\x2a" + _varint(len(inner) + size) + inner
        parts.append(head)
        parts.append(blob)
    parts.append(_bytes(6, metadata))
    parts += [_field(7, p.encode("utf-8")) for p in parents]
    log_len = sum(map(len, parts))
    any_head = _str(1, ANY_TYPE_URL) + (b"\x12" + _varint(log_len) if log_len else b"")
    value_head = b"".join(
        [
            _str(1, event_name),
            _str(2, tracking_id),
            (b"\x18" + _varint(created_at & 0xFFFFFFFFFFFFFFFF)) if created_at else b"",
            b"\x22" + _varint(len(any_head) + log_len),
        ]
    )
    value_tail = _str(5, user_id)
    value_len = len(value_head) + len(any_head) + log_len + len(value_tail)
    # one copy of every feature blob, straight into the message value
    return b"".join([b"\x0a", _varint(value_len), value_head, any_head, *parts, value_tail])


ANY_TYPE_URL = "type.googleapis.com/InferflowLog"  # package-less message name
_ENTITY_HEADS = [bytes((0x22, n)) for n in range(128)]  # field 4 (entities), length n < 128


def _varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (always written: repeated elements and set sub-messages)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _bytes(number: int, payload: bytes) -> bytes:
    """A proto3 singular bytes field: omitted when empty."""
    return _field(number, payload) if payload else b""


def _str(number: int, text: str) -> bytes:
    return _bytes(number, text.encode("utf-8"))


def wrap_with_messages(
    *,
    user_id: str,
    tracking_id: str,
    model_id: str,
    entities: Sequence[str],
    features: Sequence[bytes],
    metadata: bytes,
    parents: Sequence[str],
    created_at: int,
    event_name: str = EVENT_NAME,
) -> bytes:
    """:func:`wrap` through the generated message classes (the reference the tests compare with)."""
    log = log_pb2.InferflowLog(
        user_id=user_id,
        tracking_id=tracking_id,
        model_config_id=model_id,
        entities=list(entities),
        features=[log_pb2.PerEntityFeatures(encoded_features=f) for f in features],
        metadata=metadata,
        parent_entity=list(parents),
    )
    props = any_pb2.Any()
    props.Pack(log)  # type URL type.googleapis.com/InferflowLog (package-less)
    value = kafka_request_pb2.KafkaEventValue(
        event_name=event_name, event_id=tracking_id, created_at=created_at, properties=props, user_id=user_id
    )
    return kafka_request_pb2.KafkaRequest(value=value).SerializeToString()


def unwrap(data: bytes) -> tuple[kafka_request_pb2.KafkaEventValue, log_pb2.InferflowLog]:
    """Parse a Kafka message value back into (event value, InferflowLog)."""
    req = kafka_request_pb2.KafkaRequest()
    req.ParseFromString(data)
    log = log_pb2.InferflowLog()
    if not req.value.properties.Unpack(log):
        raise ValueError(f"properties hold {req.value.properties.type_url!r}, not an InferflowLog")
    return req.value, log
