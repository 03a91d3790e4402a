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
    """One serialized KafkaRequest: exactly the Kafka message value (no key, no headers)."""
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
