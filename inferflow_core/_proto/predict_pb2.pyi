from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DataType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DataTypeUnknown: _ClassVar[DataType]
    DataTypeFP8E5M2: _ClassVar[DataType]
    DataTypeFP8E4M3: _ClassVar[DataType]
    DataTypeFP16: _ClassVar[DataType]
    DataTypeFP32: _ClassVar[DataType]
    DataTypeFP64: _ClassVar[DataType]
    DataTypeInt8: _ClassVar[DataType]
    DataTypeInt16: _ClassVar[DataType]
    DataTypeInt32: _ClassVar[DataType]
    DataTypeInt64: _ClassVar[DataType]
    DataTypeUint8: _ClassVar[DataType]
    DataTypeUint16: _ClassVar[DataType]
    DataTypeUint32: _ClassVar[DataType]
    DataTypeUint64: _ClassVar[DataType]
    DataTypeString: _ClassVar[DataType]
    DataTypeBool: _ClassVar[DataType]
    DataTypeFP8E5M2Vector: _ClassVar[DataType]
    DataTypeFP8E4M3Vector: _ClassVar[DataType]
    DataTypeFP16Vector: _ClassVar[DataType]
    DataTypeFP32Vector: _ClassVar[DataType]
    DataTypeFP64Vector: _ClassVar[DataType]
    DataTypeInt8Vector: _ClassVar[DataType]
    DataTypeInt16Vector: _ClassVar[DataType]
    DataTypeInt32Vector: _ClassVar[DataType]
    DataTypeInt64Vector: _ClassVar[DataType]
    DataTypeUint8Vector: _ClassVar[DataType]
    DataTypeUint16Vector: _ClassVar[DataType]
    DataTypeUint32Vector: _ClassVar[DataType]
    DataTypeUint64Vector: _ClassVar[DataType]
    DataTypeStringVector: _ClassVar[DataType]
    DataTypeBoolVector: _ClassVar[DataType]
DataTypeUnknown: DataType
DataTypeFP8E5M2: DataType
DataTypeFP8E4M3: DataType
DataTypeFP16: DataType
DataTypeFP32: DataType
DataTypeFP64: DataType
DataTypeInt8: DataType
DataTypeInt16: DataType
DataTypeInt32: DataType
DataTypeInt64: DataType
DataTypeUint8: DataType
DataTypeUint16: DataType
DataTypeUint32: DataType
DataTypeUint64: DataType
DataTypeString: DataType
DataTypeBool: DataType
DataTypeFP8E5M2Vector: DataType
DataTypeFP8E4M3Vector: DataType
DataTypeFP16Vector: DataType
DataTypeFP32Vector: DataType
DataTypeFP64Vector: DataType
DataTypeInt8Vector: DataType
DataTypeInt16Vector: DataType
DataTypeInt32Vector: DataType
DataTypeInt64Vector: DataType
DataTypeUint8Vector: DataType
DataTypeUint16Vector: DataType
DataTypeUint32Vector: DataType
DataTypeUint64Vector: DataType
DataTypeStringVector: DataType
DataTypeBoolVector: DataType

class FeatureSchema(_message.Message):
    __slots__ = ("name", "data_type", "vector_dim")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    VECTOR_DIM_FIELD_NUMBER: _ClassVar[int]
    name: str
    data_type: DataType
    vector_dim: int
    def __init__(self, name: _Optional[str] = ..., data_type: _Optional[_Union[DataType, str]] = ..., vector_dim: _Optional[int] = ...) -> None: ...

class ContextFeature(_message.Message):
    __slots__ = ("name", "value", "data_type", "vector_dim")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    VECTOR_DIM_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: bytes
    data_type: DataType
    vector_dim: int
    def __init__(self, name: _Optional[str] = ..., value: _Optional[bytes] = ..., data_type: _Optional[_Union[DataType, str]] = ..., vector_dim: _Optional[int] = ...) -> None: ...

class Target(_message.Message):
    __slots__ = ("id", "feature_values")
    ID_FIELD_NUMBER: _ClassVar[int]
    FEATURE_VALUES_FIELD_NUMBER: _ClassVar[int]
    id: str
    feature_values: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, id: _Optional[str] = ..., feature_values: _Optional[_Iterable[bytes]] = ...) -> None: ...

class TargetScore(_message.Message):
    __slots__ = ("error", "output_values")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_VALUES_FIELD_NUMBER: _ClassVar[int]
    error: str
    output_values: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, error: _Optional[str] = ..., output_values: _Optional[_Iterable[bytes]] = ...) -> None: ...

class PointWiseRequest(_message.Message):
    __slots__ = ("model_config_id", "tracking_id", "context_features", "target_input_schema", "targets", "tenant_id")
    MODEL_CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    TRACKING_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FEATURES_FIELD_NUMBER: _ClassVar[int]
    TARGET_INPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    model_config_id: str
    tracking_id: str
    context_features: _containers.RepeatedCompositeFieldContainer[ContextFeature]
    target_input_schema: _containers.RepeatedCompositeFieldContainer[FeatureSchema]
    targets: _containers.RepeatedCompositeFieldContainer[Target]
    tenant_id: str
    def __init__(self, model_config_id: _Optional[str] = ..., tracking_id: _Optional[str] = ..., context_features: _Optional[_Iterable[_Union[ContextFeature, _Mapping]]] = ..., target_input_schema: _Optional[_Iterable[_Union[FeatureSchema, _Mapping]]] = ..., targets: _Optional[_Iterable[_Union[Target, _Mapping]]] = ..., tenant_id: _Optional[str] = ...) -> None: ...

class PointWiseResponse(_message.Message):
    __slots__ = ("target_output_schema", "target_scores", "request_error")
    TARGET_OUTPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    TARGET_SCORES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ERROR_FIELD_NUMBER: _ClassVar[int]
    target_output_schema: _containers.RepeatedCompositeFieldContainer[FeatureSchema]
    target_scores: _containers.RepeatedCompositeFieldContainer[TargetScore]
    request_error: str
    def __init__(self, target_output_schema: _Optional[_Iterable[_Union[FeatureSchema, _Mapping]]] = ..., target_scores: _Optional[_Iterable[_Union[TargetScore, _Mapping]]] = ..., request_error: _Optional[str] = ...) -> None: ...

class TargetPair(_message.Message):
    __slots__ = ("first_target_index", "second_target_index", "feature_values")
    FIRST_TARGET_INDEX_FIELD_NUMBER: _ClassVar[int]
    SECOND_TARGET_INDEX_FIELD_NUMBER: _ClassVar[int]
    FEATURE_VALUES_FIELD_NUMBER: _ClassVar[int]
    first_target_index: int
    second_target_index: int
    feature_values: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, first_target_index: _Optional[int] = ..., second_target_index: _Optional[int] = ..., feature_values: _Optional[_Iterable[bytes]] = ...) -> None: ...

class PairWiseRequest(_message.Message):
    __slots__ = ("model_config_id", "tracking_id", "context_features", "target_input_schema", "pair_input_schema", "pairs", "targets", "tenant_id")
    MODEL_CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    TRACKING_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FEATURES_FIELD_NUMBER: _ClassVar[int]
    TARGET_INPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    PAIR_INPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    PAIRS_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    model_config_id: str
    tracking_id: str
    context_features: _containers.RepeatedCompositeFieldContainer[ContextFeature]
    target_input_schema: _containers.RepeatedCompositeFieldContainer[FeatureSchema]
    pair_input_schema: _containers.RepeatedCompositeFieldContainer[FeatureSchema]
    pairs: _containers.RepeatedCompositeFieldContainer[TargetPair]
    targets: _containers.RepeatedCompositeFieldContainer[Target]
    tenant_id: str
    def __init__(self, model_config_id: _Optional[str] = ..., tracking_id: _Optional[str] = ..., context_features: _Optional[_Iterable[_Union[ContextFeature, _Mapping]]] = ..., target_input_schema: _Optional[_Iterable[_Union[FeatureSchema, _Mapping]]] = ..., pair_input_schema: _Optional[_Iterable[_Union[FeatureSchema, _Mapping]]] = ..., pairs: _Optional[_Iterable[_Union[TargetPair, _Mapping]]] = ..., targets: _Optional[_Iterable[_Union[Target, _Mapping]]] = ..., tenant_id: _Optional[str] = ...) -> None: ...

class PairScore(_message.Message):
    __slots__ = ("error", "output_values")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_VALUES_FIELD_NUMBER: _ClassVar[int]
    error: str
    output_values: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, error: _Optional[str] = ..., output_values: _Optional[_Iterable[bytes]] = ...) -> None: ...

class PairWiseResponse(_message.Message):
    __slots__ = ("pair_scores", "target_scores", "target_output_schema", "pair_output_schema", "request_error")
    PAIR_SCORES_FIELD_NUMBER: _ClassVar[int]
    TARGET_SCORES_FIELD_NUMBER: _ClassVar[int]
    TARGET_OUTPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    PAIR_OUTPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ERROR_FIELD_NUMBER: _ClassVar[int]
    pair_scores: _containers.RepeatedCompositeFieldContainer[PairScore]
    target_scores: _containers.RepeatedCompositeFieldContainer[TargetScore]
    target_output_schema: _containers.RepeatedCompositeFieldContainer[FeatureSchema]
    pair_output_schema: _containers.RepeatedCompositeFieldContainer[FeatureSchema]
    request_error: str
    def __init__(self, pair_scores: _Optional[_Iterable[_Union[PairScore, _Mapping]]] = ..., target_scores: _Optional[_Iterable[_Union[TargetScore, _Mapping]]] = ..., target_output_schema: _Optional[_Iterable[_Union[FeatureSchema, _Mapping]]] = ..., pair_output_schema: _Optional[_Iterable[_Union[FeatureSchema, _Mapping]]] = ..., request_error: _Optional[str] = ...) -> None: ...

class TargetSlate(_message.Message):
    __slots__ = ("target_indices", "feature_values")
    TARGET_INDICES_FIELD_NUMBER: _ClassVar[int]
    FEATURE_VALUES_FIELD_NUMBER: _ClassVar[int]
    target_indices: _containers.RepeatedScalarFieldContainer[int]
    feature_values: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, target_indices: _Optional[_Iterable[int]] = ..., feature_values: _Optional[_Iterable[bytes]] = ...) -> None: ...

class SlateWiseRequest(_message.Message):
    __slots__ = ("model_config_id", "tracking_id", "context_features", "target_input_schema", "slate_input_schema", "slates", "targets", "tenant_id")
    MODEL_CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    TRACKING_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FEATURES_FIELD_NUMBER: _ClassVar[int]
    TARGET_INPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    SLATE_INPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    SLATES_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    model_config_id: str
    tracking_id: str
    context_features: _containers.RepeatedCompositeFieldContainer[ContextFeature]
    target_input_schema: _containers.RepeatedCompositeFieldContainer[FeatureSchema]
    slate_input_schema: _containers.RepeatedCompositeFieldContainer[FeatureSchema]
    slates: _containers.RepeatedCompositeFieldContainer[TargetSlate]
    targets: _containers.RepeatedCompositeFieldContainer[Target]
    tenant_id: str
    def __init__(self, model_config_id: _Optional[str] = ..., tracking_id: _Optional[str] = ..., context_features: _Optional[_Iterable[_Union[ContextFeature, _Mapping]]] = ..., target_input_schema: _Optional[_Iterable[_Union[FeatureSchema, _Mapping]]] = ..., slate_input_schema: _Optional[_Iterable[_Union[FeatureSchema, _Mapping]]] = ..., slates: _Optional[_Iterable[_Union[TargetSlate, _Mapping]]] = ..., targets: _Optional[_Iterable[_Union[Target, _Mapping]]] = ..., tenant_id: _Optional[str] = ...) -> None: ...

class SlateScore(_message.Message):
    __slots__ = ("error", "output_values")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_VALUES_FIELD_NUMBER: _ClassVar[int]
    error: str
    output_values: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, error: _Optional[str] = ..., output_values: _Optional[_Iterable[bytes]] = ...) -> None: ...

class SlateWiseResponse(_message.Message):
    __slots__ = ("slate_scores", "target_scores", "target_output_schema", "slate_output_schema", "request_error")
    SLATE_SCORES_FIELD_NUMBER: _ClassVar[int]
    TARGET_SCORES_FIELD_NUMBER: _ClassVar[int]
    TARGET_OUTPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    SLATE_OUTPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ERROR_FIELD_NUMBER: _ClassVar[int]
    slate_scores: _containers.RepeatedCompositeFieldContainer[SlateScore]
    target_scores: _containers.RepeatedCompositeFieldContainer[TargetScore]
    target_output_schema: _containers.RepeatedCompositeFieldContainer[FeatureSchema]
    slate_output_schema: _containers.RepeatedCompositeFieldContainer[FeatureSchema]
    request_error: str
    def __init__(self, slate_scores: _Optional[_Iterable[_Union[SlateScore, _Mapping]]] = ..., target_scores: _Optional[_Iterable[_Union[TargetScore, _Mapping]]] = ..., target_output_schema: _Optional[_Iterable[_Union[FeatureSchema, _Mapping]]] = ..., slate_output_schema: _Optional[_Iterable[_Union[FeatureSchema, _Mapping]]] = ..., request_error: _Optional[str] = ...) -> None: ...
