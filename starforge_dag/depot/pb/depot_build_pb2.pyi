import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateBuildRequest(_message.Message):
    __slots__ = ("project_id",)
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    def __init__(self, project_id: _Optional[str] = ...) -> None: ...

class CreateBuildResponse(_message.Message):
    __slots__ = ("build_id", "build_token")
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    BUILD_TOKEN_FIELD_NUMBER: _ClassVar[int]
    build_id: str
    build_token: str
    def __init__(self, build_id: _Optional[str] = ..., build_token: _Optional[str] = ...) -> None: ...

class FinishBuildRequest(_message.Message):
    __slots__ = ("build_id", "success", "error")
    class BuildSuccess(_message.Message):
        __slots__ = ()
        def __init__(self) -> None: ...
    class BuildError(_message.Message):
        __slots__ = ("error",)
        ERROR_FIELD_NUMBER: _ClassVar[int]
        error: str
        def __init__(self, error: _Optional[str] = ...) -> None: ...
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    build_id: str
    success: FinishBuildRequest.BuildSuccess
    error: FinishBuildRequest.BuildError
    def __init__(self, build_id: _Optional[str] = ..., success: _Optional[_Union[FinishBuildRequest.BuildSuccess, _Mapping]] = ..., error: _Optional[_Union[FinishBuildRequest.BuildError, _Mapping]] = ...) -> None: ...

class FinishBuildResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetBuildStepsRequest(_message.Message):
    __slots__ = ("project_id", "build_id", "page_size", "page_token")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    build_id: str
    page_size: int
    page_token: str
    def __init__(self, project_id: _Optional[str] = ..., build_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class GetBuildStepsResponse(_message.Message):
    __slots__ = ("build_steps", "next_page_token")
    class BuildStep(_message.Message):
        __slots__ = ("name", "digest", "started_at", "completed_at", "cache_state", "error", "has_logs")
        class CacheState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
            __slots__ = ()
            CACHE_STATE_UNSPECIFIED: _ClassVar[GetBuildStepsResponse.BuildStep.CacheState]
            CACHE_STATE_UNCACHED: _ClassVar[GetBuildStepsResponse.BuildStep.CacheState]
            CACHE_STATE_CACHED: _ClassVar[GetBuildStepsResponse.BuildStep.CacheState]
        CACHE_STATE_UNSPECIFIED: GetBuildStepsResponse.BuildStep.CacheState
        CACHE_STATE_UNCACHED: GetBuildStepsResponse.BuildStep.CacheState
        CACHE_STATE_CACHED: GetBuildStepsResponse.BuildStep.CacheState
        NAME_FIELD_NUMBER: _ClassVar[int]
        DIGEST_FIELD_NUMBER: _ClassVar[int]
        STARTED_AT_FIELD_NUMBER: _ClassVar[int]
        COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
        CACHE_STATE_FIELD_NUMBER: _ClassVar[int]
        ERROR_FIELD_NUMBER: _ClassVar[int]
        HAS_LOGS_FIELD_NUMBER: _ClassVar[int]
        name: str
        digest: str
        started_at: _timestamp_pb2.Timestamp
        completed_at: _timestamp_pb2.Timestamp
        cache_state: GetBuildStepsResponse.BuildStep.CacheState
        error: str
        has_logs: bool
        def __init__(self, name: _Optional[str] = ..., digest: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cache_state: _Optional[_Union[GetBuildStepsResponse.BuildStep.CacheState, str]] = ..., error: _Optional[str] = ..., has_logs: _Optional[bool] = ...) -> None: ...
    BUILD_STEPS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    build_steps: _containers.RepeatedCompositeFieldContainer[GetBuildStepsResponse.BuildStep]
    next_page_token: str
    def __init__(self, build_steps: _Optional[_Iterable[_Union[GetBuildStepsResponse.BuildStep, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetBuildStepLogsRequest(_message.Message):
    __slots__ = ("project_id", "build_id", "build_step_digest", "page_size", "page_token")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    BUILD_STEP_DIGEST_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    build_id: str
    build_step_digest: str
    page_size: int
    page_token: str
    def __init__(self, project_id: _Optional[str] = ..., build_id: _Optional[str] = ..., build_step_digest: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class GetBuildStepLogsResponse(_message.Message):
    __slots__ = ("logs", "next_page_token")
    class Log(_message.Message):
        __slots__ = ("message", "timestamp")
        MESSAGE_FIELD_NUMBER: _ClassVar[int]
        TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
        message: str
        timestamp: _timestamp_pb2.Timestamp
        def __init__(self, message: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
    LOGS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    logs: _containers.RepeatedCompositeFieldContainer[GetBuildStepLogsResponse.Log]
    next_page_token: str
    def __init__(self, logs: _Optional[_Iterable[_Union[GetBuildStepLogsResponse.Log, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
