from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InferflowLog(_message.Message):
    __slots__ = ("user_id", "tracking_id", "model_config_id", "entities", "features", "metadata", "parent_entity")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TRACKING_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    PARENT_ENTITY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    tracking_id: str
    model_config_id: str
    entities: _containers.RepeatedScalarFieldContainer[str]
    features: _containers.RepeatedCompositeFieldContainer[PerEntityFeatures]
    metadata: bytes
    parent_entity: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_id: _Optional[str] = ..., tracking_id: _Optional[str] = ..., model_config_id: _Optional[str] = ..., entities: _Optional[_Iterable[str]] = ..., features: _Optional[_Iterable[_Union[PerEntityFeatures, _Mapping]]] = ..., metadata: _Optional[bytes] = ..., parent_entity: _Optional[_Iterable[str]] = ...) -> None: ...

class PerEntityFeatures(_message.Message):
    __slots__ = ("encoded_features",)
    ENCODED_FEATURES_FIELD_NUMBER: _ClassVar[int]
    encoded_features: bytes
    def __init__(self, encoded_features: _Optional[bytes] = ...) -> None: ...
