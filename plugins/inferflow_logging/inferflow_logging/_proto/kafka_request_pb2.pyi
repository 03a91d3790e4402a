from google.protobuf import any_pb2 as _any_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class KafkaRequest(_message.Message):
    __slots__ = ("value", "headers")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    value: KafkaEventValue
    headers: _any_pb2.Any
    def __init__(self, value: _Optional[_Union[KafkaEventValue, _Mapping]] = ..., headers: _Optional[_Union[_any_pb2.Any, _Mapping]] = ...) -> None: ...

class KafkaEventValue(_message.Message):
    __slots__ = ("event_name", "event_id", "created_at", "properties", "user_id")
    EVENT_NAME_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    event_name: str
    event_id: str
    created_at: int
    properties: _any_pb2.Any
    user_id: str
    def __init__(self, event_name: _Optional[str] = ..., event_id: _Optional[str] = ..., created_at: _Optional[int] = ..., properties: _Optional[_Union[_any_pb2.Any, _Mapping]] = ..., user_id: _Optional[str] = ...) -> None: ...
