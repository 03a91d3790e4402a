from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InferflowRequestProto(_message.Message):
    __slots__ = ("entities", "model_config_id", "tracking_id")
    class Entity(_message.Message):
        __slots__ = ("entity", "ids", "features")
        class Feature(_message.Message):
            __slots__ = ("name", "ids_feature_value")
            NAME_FIELD_NUMBER: _ClassVar[int]
            IDS_FEATURE_VALUE_FIELD_NUMBER: _ClassVar[int]
            name: str
            ids_feature_value: _containers.RepeatedScalarFieldContainer[str]
            def __init__(self, name: _Optional[str] = ..., ids_feature_value: _Optional[_Iterable[str]] = ...) -> None: ...
        ENTITY_FIELD_NUMBER: _ClassVar[int]
        IDS_FIELD_NUMBER: _ClassVar[int]
        FEATURES_FIELD_NUMBER: _ClassVar[int]
        entity: str
        ids: _containers.RepeatedScalarFieldContainer[str]
        features: _containers.RepeatedCompositeFieldContainer[InferflowRequestProto.Entity.Feature]
        def __init__(self, entity: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ..., features: _Optional[_Iterable[_Union[InferflowRequestProto.Entity.Feature, _Mapping]]] = ...) -> None: ...
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    MODEL_CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    TRACKING_ID_FIELD_NUMBER: _ClassVar[int]
    entities: _containers.RepeatedCompositeFieldContainer[InferflowRequestProto.Entity]
    model_config_id: str
    tracking_id: str
    def __init__(self, entities: _Optional[_Iterable[_Union[InferflowRequestProto.Entity, _Mapping]]] = ..., model_config_id: _Optional[str] = ..., tracking_id: _Optional[str] = ...) -> None: ...

class InferflowResponseProto(_message.Message):
    __slots__ = ("component_data", "error")
    class ComponentData(_message.Message):
        __slots__ = ("data",)
        DATA_FIELD_NUMBER: _ClassVar[int]
        data: _containers.RepeatedScalarFieldContainer[str]
        def __init__(self, data: _Optional[_Iterable[str]] = ...) -> None: ...
    class Error(_message.Message):
        __slots__ = ("message",)
        MESSAGE_FIELD_NUMBER: _ClassVar[int]
        message: str
        def __init__(self, message: _Optional[str] = ...) -> None: ...
    COMPONENT_DATA_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    component_data: _containers.RepeatedCompositeFieldContainer[InferflowResponseProto.ComponentData]
    error: InferflowResponseProto.Error
    def __init__(self, component_data: _Optional[_Iterable[_Union[InferflowResponseProto.ComponentData, _Mapping]]] = ..., error: _Optional[_Union[InferflowResponseProto.Error, _Mapping]] = ...) -> None: ...
