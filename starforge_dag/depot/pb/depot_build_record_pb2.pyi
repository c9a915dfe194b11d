import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Build(_message.Message):
    __slots__ = ("build_id", "status", "created_at", "started_at", "finished_at", "build_duration_seconds", "saved_duration_seconds", "cached_steps", "total_steps")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[Build.Status]
        STATUS_RUNNING: _ClassVar[Build.Status]
        STATUS_FAILED: _ClassVar[Build.Status]
        STATUS_SUCCESS: _ClassVar[Build.Status]
        STATUS_ERROR: _ClassVar[Build.Status]
        STATUS_CANCELED: _ClassVar[Build.Status]
    STATUS_UNSPECIFIED: Build.Status
    STATUS_RUNNING: Build.Status
    STATUS_FAILED: Build.Status
    STATUS_SUCCESS: Build.Status
    STATUS_ERROR: Build.Status
    STATUS_CANCELED: Build.Status
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    BUILD_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SAVED_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CACHED_STEPS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    build_id: str
    status: Build.Status
    created_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    build_duration_seconds: int
    saved_duration_seconds: int
    cached_steps: int
    total_steps: int
    def __init__(self, build_id: _Optional[str] = ..., status: _Optional[_Union[Build.Status, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., build_duration_seconds: _Optional[int] = ..., saved_duration_seconds: _Optional[int] = ..., cached_steps: _Optional[int] = ..., total_steps: _Optional[int] = ...) -> None: ...

class GetBuildRequest(_message.Message):
    __slots__ = ("build_id",)
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    build_id: str
    def __init__(self, build_id: _Optional[str] = ...) -> None: ...

class GetBuildResponse(_message.Message):
    __slots__ = ("build",)
    BUILD_FIELD_NUMBER: _ClassVar[int]
    build: Build
    def __init__(self, build: _Optional[_Union[Build, _Mapping]] = ...) -> None: ...
