from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Keys(_message.Message):
    __slots__ = ("cols",)
    COLS_FIELD_NUMBER: _ClassVar[int]
    cols: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, cols: _Optional[_Iterable[str]] = ...) -> None: ...

class FeatureGroup(_message.Message):
    __slots__ = ("label", "feature_labels")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    FEATURE_LABELS_FIELD_NUMBER: _ClassVar[int]
    label: str
    feature_labels: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, label: _Optional[str] = ..., feature_labels: _Optional[_Iterable[str]] = ...) -> None: ...

class Query(_message.Message):
    __slots__ = ("entity_label", "feature_groups", "keys_schema", "keys")
    ENTITY_LABEL_FIELD_NUMBER: _ClassVar[int]
    FEATURE_GROUPS_FIELD_NUMBER: _ClassVar[int]
    KEYS_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    entity_label: str
    feature_groups: _containers.RepeatedCompositeFieldContainer[FeatureGroup]
    keys_schema: _containers.RepeatedScalarFieldContainer[str]
    keys: _containers.RepeatedCompositeFieldContainer[Keys]
    def __init__(self, entity_label: _Optional[str] = ..., feature_groups: _Optional[_Iterable[_Union[FeatureGroup, _Mapping]]] = ..., keys_schema: _Optional[_Iterable[str]] = ..., keys: _Optional[_Iterable[_Union[Keys, _Mapping]]] = ...) -> None: ...

class Feature(_message.Message):
    __slots__ = ("label", "column_idx")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    COLUMN_IDX_FIELD_NUMBER: _ClassVar[int]
    label: str
    column_idx: int
    def __init__(self, label: _Optional[str] = ..., column_idx: _Optional[int] = ...) -> None: ...

class FeatureSchema(_message.Message):
    __slots__ = ("feature_group_label", "features")
    FEATURE_GROUP_LABEL_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    feature_group_label: str
    features: _containers.RepeatedCompositeFieldContainer[Feature]
    def __init__(self, feature_group_label: _Optional[str] = ..., features: _Optional[_Iterable[_Union[Feature, _Mapping]]] = ...) -> None: ...

class Row(_message.Message):
    __slots__ = ("keys", "columns")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedScalarFieldContainer[str]
    columns: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, keys: _Optional[_Iterable[str]] = ..., columns: _Optional[_Iterable[bytes]] = ...) -> None: ...

class Result(_message.Message):
    __slots__ = ("entity_label", "keys_schema", "feature_schemas", "rows")
    ENTITY_LABEL_FIELD_NUMBER: _ClassVar[int]
    KEYS_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    FEATURE_SCHEMAS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    entity_label: str
    keys_schema: _containers.RepeatedScalarFieldContainer[str]
    feature_schemas: _containers.RepeatedCompositeFieldContainer[FeatureSchema]
    rows: _containers.RepeatedCompositeFieldContainer[Row]
    def __init__(self, entity_label: _Optional[str] = ..., keys_schema: _Optional[_Iterable[str]] = ..., feature_schemas: _Optional[_Iterable[_Union[FeatureSchema, _Mapping]]] = ..., rows: _Optional[_Iterable[_Union[Row, _Mapping]]] = ...) -> None: ...

class DecodedRow(_message.Message):
    __slots__ = ("keys", "columns")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedScalarFieldContainer[str]
    columns: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, keys: _Optional[_Iterable[str]] = ..., columns: _Optional[_Iterable[str]] = ...) -> None: ...

class DecodedResult(_message.Message):
    __slots__ = ("keys_schema", "feature_schemas", "rows")
    KEYS_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    FEATURE_SCHEMAS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    keys_schema: _containers.RepeatedScalarFieldContainer[str]
    feature_schemas: _containers.RepeatedCompositeFieldContainer[FeatureSchema]
    rows: _containers.RepeatedCompositeFieldContainer[DecodedRow]
    def __init__(self, keys_schema: _Optional[_Iterable[str]] = ..., feature_schemas: _Optional[_Iterable[_Union[FeatureSchema, _Mapping]]] = ..., rows: _Optional[_Iterable[_Union[DecodedRow, _Mapping]]] = ...) -> None: ...
