from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Platform(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLATFORM_UNSPECIFIED: _ClassVar[Platform]
    PLATFORM_AMD64: _ClassVar[Platform]
    PLATFORM_ARM64: _ClassVar[Platform]
PLATFORM_UNSPECIFIED: Platform
PLATFORM_AMD64: Platform
PLATFORM_ARM64: Platform

class PublicCertificate(_message.Message):
    __slots__ = ("cert",)
    CERT_FIELD_NUMBER: _ClassVar[int]
    cert: str
    def __init__(self, cert: _Optional[str] = ...) -> None: ...

class PrivateKey(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class CertificatePair(_message.Message):
    __slots__ = ("cert", "key")
    CERT_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    cert: PublicCertificate
    key: PrivateKey
    def __init__(self, cert: _Optional[_Union[PublicCertificate, _Mapping]] = ..., key: _Optional[_Union[PrivateKey, _Mapping]] = ...) -> None: ...

class GetEndpointRequest(_message.Message):
    __slots__ = ("build_id", "platform")
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    build_id: str
    platform: Platform
    def __init__(self, build_id: _Optional[str] = ..., platform: _Optional[_Union[Platform, str]] = ...) -> None: ...

class GetEndpointResponse(_message.Message):
    __slots__ = ("pending", "active")
    class PendingConnection(_message.Message):
        __slots__ = ()
        def __init__(self) -> None: ...
    class ActiveConnection(_message.Message):
        __slots__ = ("endpoint", "server_name", "cert", "ca_cert")
        ENDPOINT_FIELD_NUMBER: _ClassVar[int]
        SERVER_NAME_FIELD_NUMBER: _ClassVar[int]
        CERT_FIELD_NUMBER: _ClassVar[int]
        CA_CERT_FIELD_NUMBER: _ClassVar[int]
        endpoint: str
        server_name: str
        cert: CertificatePair
        ca_cert: PublicCertificate
        def __init__(self, endpoint: _Optional[str] = ..., server_name: _Optional[str] = ..., cert: _Optional[_Union[CertificatePair, _Mapping]] = ..., ca_cert: _Optional[_Union[PublicCertificate, _Mapping]] = ...) -> None: ...
    PENDING_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    pending: GetEndpointResponse.PendingConnection
    active: GetEndpointResponse.ActiveConnection
    def __init__(self, pending: _Optional[_Union[GetEndpointResponse.PendingConnection, _Mapping]] = ..., active: _Optional[_Union[GetEndpointResponse.ActiveConnection, _Mapping]] = ...) -> None: ...

class ReportHealthRequest(_message.Message):
    __slots__ = ("build_id", "platform")
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    build_id: str
    platform: Platform
    def __init__(self, build_id: _Optional[str] = ..., platform: _Optional[_Union[Platform, str]] = ...) -> None: ...

class ReportHealthResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReleaseEndpointRequest(_message.Message):
    __slots__ = ("build_id", "platform")
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    build_id: str
    platform: Platform
    def __init__(self, build_id: _Optional[str] = ..., platform: _Optional[_Union[Platform, str]] = ...) -> None: ...

class ReleaseEndpointResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
