"""The Kafka envelope of go-compatibility §7.5.

``KafkaRequest{value: KafkaEventValue{properties: Any(InferflowLog)}}``, no key, no headers.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from google.protobuf import any_pb2

from inferflow_core.api import codecs

from ._proto import inferflow_logging_pb2 as log_pb2
from ._proto import kafka_request_pb2
from .schema import unpack_metadata

EVENT_NAME = "inferflow_inference_logs"
SLATE_EVENT_NAME = "inferflow_inference_slate_logs"  # ours: slate / pair matrices (Go Inferflow logged none)
Buffer = bytes | bytearray | memoryview  # a wire region handed to ``wrap_framed``
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
    — the bytes the generated classes serialize (``wrap_with_messages``; a test holds them equal).
    """
    return wrap_framed(
        user_id=user_id,
        tracking_id=tracking_id,
        model_id=model_id,
        entities=frame_entities(entities),
        features=frame_features(features),
        metadata=metadata,
        parents=parents,
        created_at=created_at,
        event_name=event_name,
    )


def wrap_framed(
    *,
    user_id: str,
    tracking_id: str,
    model_id: str,
    entities: Buffer,
    features: Buffer | list[bytes],
    metadata: bytes,
    parents: Sequence[str],
    created_at: int,
    event_name: str = EVENT_NAME,
) -> bytes:
    """:func:`wrap` with ``InferflowLog``'s repeated fields already framed: ``entities`` is every
    ``entities`` element (tag 4) and ``features`` every ``PerEntityFeatures`` (tag 5) in wire form (see
    :func:`frame_entities` and the proto format's ``encode_framed``), or a list of wire pieces (see
    :func:`frame_features`). Each region is copied once.
    """
    parts: list[Buffer] = [_str(1, user_id), _str(2, tracking_id), _str(3, model_id), entities]
    parts += features if isinstance(features, list) else [features]
    parts.append(_bytes(6, metadata))
    parts += [codecs.length_delimited(7, p.encode("utf-8")) for p in parents]
    log_len = sum(memoryview(p).nbytes for p in parts)
    any_head = _str(1, ANY_TYPE_URL) + (b"\x12" + codecs.varint(log_len) if log_len else b"")
    value_head = b"".join(
        [
            _str(1, event_name),
            _str(2, tracking_id),
            (b"\x18" + codecs.varint(created_at & 0xFFFFFFFFFFFFFFFF)) if created_at else b"",
            b"\x22" + codecs.varint(len(any_head) + log_len),
        ]
    )
    value_tail = _str(5, user_id)
    value_len = len(value_head) + len(any_head) + log_len + len(value_tail)
    return b"".join([b"\x0a", codecs.varint(value_len), value_head, any_head, *parts, value_tail])


def frame_features(features: Sequence[bytes]) -> list[bytes]:
    """Every blob as a framed ``InferflowLog.features`` element (``PerEntityFeatures{encoded_features}``),
    as wire pieces: (head, blob) pairs, so a large blob is not copied before the final join."""
    parts: list[bytes] = []
    heads: dict[int, bytes] = {}  # feature length -> PerEntityFeatures header (rows share lengths)
    for blob in features:
        size = len(blob)
        head = heads.get(size)
        if head is None:
            inner = b"\x0a" + codecs.varint(size) if size else b""
            head = heads[size] = b"\x2a" + codecs.varint(len(inner) + size) + inner
        parts.append(head)
        parts.append(blob)
    return parts


def frame_entities(ids: Sequence[str]) -> bytes:
    """Every id as a framed ``InferflowLog.entities`` element (``0x22 len utf-8``), concatenated.

    C-level iteration over the ids (for ~200 short ids this beats building the heads with numpy). ASCII
    ids shorter than 128 (the usual ones) are framed as text, heads included, and encoded once."""
    text = _framed_ascii(ids)
    if text is not None:
        return text
    raws = [e.encode("utf-8") for e in ids]
    if max(map(len, raws), default=0) < 128:
        heads = map(_ENTITY_HEADS.__getitem__, map(len, raws))
        return b"".join(itertools.chain.from_iterable(zip(heads, raws, strict=True)))
    return b"".join(b"\x22" + codecs.varint(len(r)) + r for r in raws)


def _framed_ascii(ids: Sequence[str]) -> bytes | None:
    """:func:`frame_entities` of ASCII ids shorter than 128 characters (one byte each, so the head is
    ``0x22`` and the length as one character); None when some id is not such an id."""
    pieces: list[str] = [""] * (2 * len(ids))
    pieces[1::2] = ids
    try:
        pieces[::2] = map(_ENTITY_TEXT_HEADS.__getitem__, map(len, ids))
    except IndexError:  # an id of 128 characters or more
        return None
    text = "".join(pieces)
    return text.encode("ascii") if text.isascii() else None


ANY_TYPE_URL = "type.googleapis.com/InferflowLog"  # package-less message name
_ENTITY_HEADS = [bytes((0x22, n)) for n in range(128)]  # field 4 (entities), length n < 128
_ENTITY_TEXT_HEADS = ["\x22" + chr(n) for n in range(128)]  # the same as text (ASCII)


def _bytes(number: int, payload: bytes) -> bytes:
    """A proto3 singular bytes field: omitted when empty."""
    return codecs.length_delimited(number, payload) if payload else b""


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
    """:func:`wrap` through the generated message classes (what the tests compare with)."""
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


@dataclass(frozen=True)
class LoggedMessage:
    """One Kafka message value read back: the envelope's fields, the entity ids and the ``features``
    blobs (as the format encoded them), and the format named by the metadata."""

    event_name: str
    tracking_id: str
    user_id: str
    model_id: str
    created_at: int
    entities: list[str]
    features: list[bytes]
    format: str
    version: int
    compression_enabled: bool
    parent_entity: list[str]


def read_message(value: bytes) -> LoggedMessage:
    """A serialized ``KafkaRequest`` (what a sink writes) read back; raises when it is not one."""
    event, log = unwrap(value)
    compression, version, fmt = unpack_metadata(log.metadata)
    return LoggedMessage(
        event_name=event.event_name,
        tracking_id=log.tracking_id,
        user_id=log.user_id,
        model_id=log.model_config_id,
        created_at=event.created_at,
        entities=list(log.entities),
        features=[f.encoded_features for f in log.features],
        format=fmt,
        version=version,
        compression_enabled=compression,
        parent_entity=list(log.parent_entity),
    )
