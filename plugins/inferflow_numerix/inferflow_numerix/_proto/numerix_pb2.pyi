from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NumerixRequestProto(_message.Message):
    __slots__ = ("entity_score_data",)
    ENTITY_SCORE_DATA_FIELD_NUMBER: _ClassVar[int]
    entity_score_data: EntityScoreData
    def __init__(self, entity_score_data: _Optional[_Union[EntityScoreData, _Mapping]] = ...) -> None: ...

class EntityScoreData(_message.Message):
    __slots__ = ("schema", "entity_scores", "compute_id", "data_type")
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    ENTITY_SCORES_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    schema: _containers.RepeatedScalarFieldContainer[str]
    entity_scores: _containers.RepeatedCompositeFieldContainer[Score]
    compute_id: str
    data_type: str
    def __init__(self, schema: _Optional[_Iterable[str]] = ..., entity_scores: _Optional[_Iterable[_Union[Score, _Mapping]]] = ..., compute_id: _Optional[str] = ..., data_type: _Optional[str] = ...) -> None: ...

class Score(_message.Message):
    __slots__ = ("string_data", "byte_data")
    STRING_DATA_FIELD_NUMBER: _ClassVar[int]
    BYTE_DATA_FIELD_NUMBER: _ClassVar[int]
    string_data: StringList
    byte_data: ByteList
    def __init__(self, string_data: _Optional[_Union[StringList, _Mapping]] = ..., byte_data: _Optional[_Union[ByteList, _Mapping]] = ...) -> None: ...

class StringList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, values: _Optional[_Iterable[str]] = ...) -> None: ...

class ByteList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, values: _Optional[_Iterable[bytes]] = ...) -> None: ...

class NumerixResponseProto(_message.Message):
    __slots__ = ("computation_score_data", "error")
    COMPUTATION_SCORE_DATA_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    computation_score_data: ComputationScoreData
    error: Error
    def __init__(self, computation_score_data: _Optional[_Union[ComputationScoreData, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class ComputationScoreData(_message.Message):
    __slots__ = ("schema", "computation_scores")
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    COMPUTATION_SCORES_FIELD_NUMBER: _ClassVar[int]
    schema: _containers.RepeatedScalarFieldContainer[str]
    computation_scores: _containers.RepeatedCompositeFieldContainer[Score]
    def __init__(self, schema: _Optional[_Iterable[str]] = ..., computation_scores: _Optional[_Iterable[_Union[Score, _Mapping]]] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...
