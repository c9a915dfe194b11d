"""A Depot emulator: Depot's gRPC API with its auth and status codes, and mTLS BuildKit endpoints that really build.

Services (bearer token in `authorization` metadata on every call):
    depot.core.v1.ProjectService    organization token
    depot.build.v1.BuildService     organization token; FinishBuild also takes that build's token
    depot.core.v1.BuildService      GetBuild: organization token or that build's token
    depot.buildkit.v1.BuildKitService  the build token returned by CreateBuild
Missing or unknown tokens answer UNAUTHENTICATED, a token of another organization or build
PERMISSION_DENIED, unknown projects and builds NOT_FOUND, malformed requests INVALID_ARGUMENT,
calls on an ended build FAILED_PRECONDITION.

Each build gets its own machine on first GetEndpoint: a fresh CA, a server certificate for
`server_name` and a client certificate, and a gRPC server on 127.0.0.1 that requires that client
certificate and proxies BuildKit's Control API to the local dockerd's BuildKit. Solve is
intercepted the way Depot's builders behave: an `image` exporter (read from the repeated
`Exporters` field, number 13, when present, else from `Exporter`/`ExporterAttrs`) is run as
dockerd's `moby` exporter with the same names; with `push=true` every name is pushed through
the Engine API and the response carries the registry's manifest digest as `containerimage.digest`
and the image ID as `containerimage.config.digest`. A `containerimage.config` attribute (which
`moby` ignores) is applied with a metadata-only Dockerfile on top of the result. Status streams
passing through are read to answer GetBuildSteps/GetBuildStepLogs.

Registry credentials: like Depot's builders, a push asks the client's session auth service
(`moby.filesync.v1.Auth/Credentials` for the registry host). The client's `Control.Session`
stream ends in the emulator, which dials it with its own gRPC channel and hands dockerd the
same session (`POST /session` with the client's headers), relaying dockerd's calls to the
client. Without a session, or when it answers anonymous, the emulator's own `registry_auth`
(one `RegistryAuth`, or a mapping host -> RegistryAuth) is used; otherwise the push is
anonymous. Each SolveRecord says where its credentials came from (never the secret).
ResetProject is recorded but does not prune the shared daemon's cache.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import secrets
import socket
import string
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, Self

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from google.protobuf import timestamp_pb2

from ..buildkit import llb
from ..buildkit.client import config_dockerfile
from ..buildkit.pb import auth_pb2, control_pb2
from ..buildkit.registry import RegistryAuth, push_image, remove_image
from ..buildkit.transport import CHANNEL_OPTIONS, docker_upgrade, open_channel, pipe_sockets
from ..core.errors import BuildError
from ..core.models import ImageRef
from ..depot.pb import (
    depot_build_pb2,
    depot_build_pb2_grpc,
    depot_build_record_pb2,
    depot_build_record_pb2_grpc,
    depot_buildkit_pb2,
    depot_buildkit_pb2_grpc,
    depot_project_pb2,
    depot_project_pb2_grpc,
)

REGIONS = ("us-east-1", "eu-central-1")
DEFAULT_KEEP_GB = 50
DEFAULT_KEEP_DAYS = 14
CONTROL = "/moby.buildkit.v1.Control/"
SOLVE = CONTROL + "Solve"
STATUS = CONTROL + "Status"
SESSION = CONTROL + "Session"
AUTH_CREDENTIALS = "/moby.filesync.v1.Auth/Credentials"
_UNARY_STREAM = {"Status", "Prune", "ListenBuildHistory"}
_SESSION_HEADER = "x-docker-expose-session-"
_CHUNK = 256 * 1024
_LOOPBACK_OPTIONS: list[tuple[str, Any]] = [*CHANNEL_OPTIONS, ("grpc.enable_http_proxy", 0)]
_HOP_HEADERS = {"user-agent", "content-type", "te", "grpc-accept-encoding", "grpc-encoding", "grpc-timeout"}
_ID_ALPHABET = string.ascii_lowercase + string.digits
_STEP_PAGE = 100

Platform = depot_buildkit_pb2.Platform
BuildStatus = depot_build_record_pb2.Build.Status


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _ts(value: dt.datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _new_id(length: int = 12) -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


@dataclass
class Faults:
    """Misbehaviour a test scripts; every knob can change while the emulator runs."""

    pending_messages: int = 1
    pending_delay_s: float = 0.0
    unavailable_once: set[str] = field(default_factory=set)
    not_found_first_endpoint: bool = False
    reject_tokens: bool = False
    drop_endpoint_during_solve: bool = False


@dataclass
class ProjectRecord:
    project_id: str
    organization_id: str
    name: str
    region_id: str
    created_at: dt.datetime
    keep_gb: int
    keep_days: int
    hardware: int
    resets: int = 0
    deleted: bool = False


@dataclass
class SolveRecord:
    """One Solve that went through a build's endpoint, as the emulator ran it."""

    ref: str
    exporters: list[str]
    images: list[str] = field(default_factory=list)
    pushed: bool = False
    digest: str | None = None
    config_digest: str | None = None
    credentials_from: str | None = None  # "session", "emulator" or None (anonymous push)
    registry_username: str | None = None
    error: str | None = None
    done: bool = False


@dataclass
class StepRecord:
    digest: str
    name: str
    started_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    cached: bool = False
    error: str | None = None
    logs: list[tuple[dt.datetime, str]] = field(default_factory=list)


@dataclass
class BuildRecord:
    """A build's lifecycle as Depot would see it; `result` is "success", "error" or None while running."""

    build_id: str
    project_id: str
    organization_id: str
    created_at: dt.datetime
    platform: str = "PLATFORM_UNSPECIFIED"
    health_reports: int = 0
    last_health_at: dt.datetime | None = None
    endpoint_requests: int = 0
    endpoint: str | None = None
    server_name: str | None = None
    endpoint_at: dt.datetime | None = None
    endpoint_dropped: bool = False
    released: bool = False
    released_at: dt.datetime | None = None
    finished: bool = False
    finished_at: dt.datetime | None = None
    result: str | None = None
    error: str | None = None
    expired: bool = False
    solves: list[SolveRecord] = field(default_factory=list)
    steps: dict[str, StepRecord] = field(default_factory=dict)

    @property
    def ended(self) -> bool:
        return self.finished or self.expired

    @property
    def status(self) -> int:
        if self.result == "success":
            return BuildStatus.STATUS_SUCCESS
        if self.result == "error":
            return BuildStatus.STATUS_FAILED
        if self.expired:
            return BuildStatus.STATUS_ERROR
        return BuildStatus.STATUS_RUNNING


@dataclass(frozen=True)
class _Certs:
    ca: bytes
    server_cert: bytes
    server_key: bytes
    client_cert: bytes
    client_key: bytes


def _issue(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, signer: Any, **kind: Any) -> bytes:
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if kind.get("ca"):
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
    else:
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if kind.get("server") else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if kind.get("server"):
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
    return builder.sign(signer, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _make_certs(server_name: str, client_name: str) -> _Certs:
    """A CA of one build's machine, its server certificate and the one client certificate it accepts."""
    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"depot emulator CA {client_name}")])
    ca = _issue(f"depot emulator CA {client_name}", ca_key, ca_name, ca_key, ca=True)
    server = _issue(server_name, server_key, ca_name, ca_key, server=True)
    client = _issue(client_name, client_key, ca_name, ca_key)
    return _Certs(ca, server, _key_pem(server_key), client, _key_pem(client_key))


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(data: bytes) -> Iterator[tuple[int, bytes | int]]:
    """Top-level (field number, value) pairs of a protobuf message; LEN values as bytes."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, value
        elif wire == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise ValueError("truncated field")
            yield number, data[pos : pos + size]
            pos += size
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")


def solve_exporters(raw: bytes) -> list[tuple[str, dict[str, str]]]:
    """The exporters of a serialized SolveRequest: the repeated `Exporters` (13) if set, else the old pair."""
    entries: list[tuple[str, dict[str, str]]] = []
    old_type = ""
    old_attrs: dict[str, str] = {}
    for number, value in _fields(raw):
        if not isinstance(value, bytes):
            continue
        if number == 13:
            kind, attrs = "", {}
            for sub, sub_value in _fields(value):
                if sub == 1 and isinstance(sub_value, bytes):
                    kind = sub_value.decode()
                elif sub == 2 and isinstance(sub_value, bytes):
                    pair = dict(_fields(sub_value))
                    attrs[_text(pair.get(1))] = _text(pair.get(2))
            entries.append((kind, attrs))
        elif number == 3:
            old_type = value.decode()
        elif number == 4:
            pair = dict(_fields(value))
            old_attrs[_text(pair.get(1))] = _text(pair.get(2))
    if entries:
        return entries
    return [(old_type, old_attrs)] if old_type else []


def _text(value: bytes | int | None) -> str:
    return value.decode() if isinstance(value, bytes) else ""


def _bearer(context: grpc.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def _forwarded_metadata(context: grpc.ServicerContext) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in context.invocation_metadata() if not k.startswith(":") and k not in _HOP_HEADERS]


def _remaining(context: grpc.ServicerContext) -> float | None:
    """The caller's deadline for an upstream call; grpcio reports "none" as a huge number."""
    remaining = context.time_remaining()
    return remaining if remaining is not None and remaining < 1e9 else None


def _identity(value: bytes) -> bytes:
    return value


def _feed(requests: Iterator[bytes], conn: socket.socket) -> None:
    """The client's side of Control.Session, written to the connection our channel reads."""
    try:
        for raw in requests:
            conn.sendall(control_pb2.BytesMessage.FromString(raw).data)
        conn.shutdown(socket.SHUT_WR)
    except (grpc.RpcError, OSError, ValueError):
        pass


class _SessionRelay(grpc.GenericRpcHandler):
    """dockerd's calls into a session, forwarded to the client that serves it."""

    def __init__(self, channel: grpc.Channel):
        self.channel = channel

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        return grpc.stream_stream_rpc_method_handler(lambda it, ctx: self._forward(method, it, ctx))

    def _forward(self, method: str, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        stub = self.channel.stream_stream(method, request_serializer=_identity, response_deserializer=_identity)
        call = stub(requests, metadata=_forwarded_metadata(context))
        context.add_callback(call.cancel)
        try:
            yield from call
        except grpc.RpcError as exc:
            if context.is_active():
                context.abort(exc.code(), exc.details() or "")


class _SessionBridge:
    """A client's session ended in the emulator: dockerd reaches it through a relay, pushes ask it for credentials.

    The client's Control.Session byte stream carries HTTP/2 with the client as server; a gRPC
    channel dials a loopback listener whose accepted end is pumped into that stream. dockerd gets
    the same session (`POST /session` with the client's session headers) and its calls are
    forwarded over that channel.
    """

    def __init__(self, docker_sock: str, metadata: Iterable[tuple[str, Any]]):
        self.docker_sock = docker_sock
        self.headers = [(k, v) for k, v in metadata if k.startswith(_SESSION_HEADER) and isinstance(v, str)]
        self.id = next((v for k, v in self.headers if k == _SESSION_HEADER + "uuid"), "")
        self.methods = {v for k, v in self.headers if k == _SESSION_HEADER + "grpc-method"}
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(10)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self._listener.getsockname()[1]}", options=_LOOPBACK_OPTIONS)
        self._sockets: list[socket.socket] = []
        self._relay: grpc.Server | None = None
        self._executor: futures.ThreadPoolExecutor | None = None
        self._piping: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def connect(self) -> socket.socket:
        """Our channel's connection, seen from the client's side; its bytes go into Control.Session."""
        grpc.channel_ready_future(self.channel)
        conn, _ = self._listener.accept()
        conn.settimeout(None)
        self._listener.close()
        self._hold(conn)
        return conn

    def attach_daemon(self) -> None:
        """Announce the session to dockerd; its calls reach the client through the relay."""
        self._executor = futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix=f"depot-session-{self.id[:8]}")
        relay = grpc.server(self._executor, handlers=[_SessionRelay(self.channel)], options=CHANNEL_OPTIONS)
        port = relay.add_insecure_port("127.0.0.1:0")
        relay.start()
        self._relay = relay
        daemon = docker_upgrade(self.docker_sock, "/session", self.headers)
        self._hold(daemon)
        local = socket.create_connection(("127.0.0.1", port))
        self._hold(local)
        self._piping = threading.Thread(
            target=pipe_sockets,
            args=(daemon, local),
            kwargs={"chunk": _CHUNK},
            name="depot-session-relay",
            daemon=True,
        )
        self._piping.start()

    def credentials(self, host: str) -> RegistryAuth | None:
        """What the client's auth service answers for `host`; None when it has none or offers no auth service."""
        if AUTH_CREDENTIALS not in self.methods:
            return None
        ask = self.channel.unary_unary(
            AUTH_CREDENTIALS,
            request_serializer=auth_pb2.CredentialsRequest.SerializeToString,
            response_deserializer=auth_pb2.CredentialsResponse.FromString,
        )
        answer = ask(auth_pb2.CredentialsRequest(Host=host), timeout=30)
        if not answer.Username and not answer.Secret:
            return None
        return RegistryAuth(answer.Username, answer.Secret, host)

    def _hold(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            closed = self._closed
        if closed:
            self.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sockets, self._sockets = self._sockets, []
            relay, self._relay = self._relay, None
            executor, self._executor = self._executor, None
            piping, self._piping = self._piping, None
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if piping is not None and piping is not threading.current_thread():
            piping.join(timeout=5)  # before closing: a closed socket would never wake its select()
        for sock in sockets:
            sock.close()
        self._listener.close()
        self.channel.close()
        if relay is not None:
            relay.stop(grace=None)
        if executor is not None:
            executor.shutdown(wait=False)


class _Endpoint:
    """One build's BuildKit machine: an mTLS gRPC server proxying Control to dockerd."""

    def __init__(self, emulator: DepotEmulator, build_id: str):
        self.emulator = emulator
        self.build_id = build_id
        self.server_name = f"buildkit-{build_id}.depot-emulator.local"
        self.certs = _make_certs(self.server_name, f"build-{build_id}")
        self._lock = threading.Lock()
        self._calls: set[Any] = set()
        self._closed = False
        self._step_started: dict[str, threading.Event] = {}
        self._sessions: dict[str, _SessionBridge] = {}
        self.upstream = open_channel(emulator.docker_addr)
        self._executor = futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix=f"depot-endpoint-{build_id}")
        self.server = grpc.server(self._executor, handlers=[_ControlProxy(self)], options=CHANNEL_OPTIONS)
        creds = grpc.ssl_server_credentials(
            [(self.certs.server_key, self.certs.server_cert)], root_certificates=self.certs.ca, require_client_auth=True
        )
        port = self.server.add_secure_port(f"{emulator.host}:0", creds)
        self.address = f"tcp://{emulator.host}:{port}"
        self.server.start()

    def track(self, call: Any) -> bool:
        with self._lock:
            if self._closed:
                return False
            self._calls.add(call)
            return True

    def untrack(self, call: Any) -> None:
        with self._lock:
            self._calls.discard(call)

    def add_session(self, bridge: _SessionBridge) -> bool:
        with self._lock:
            if self._closed:
                return False
            self._sessions[bridge.id] = bridge
            return True

    def remove_session(self, bridge: _SessionBridge) -> None:
        with self._lock:
            if self._sessions.get(bridge.id) is bridge:
                del self._sessions[bridge.id]

    def session(self, session_id: str) -> _SessionBridge | None:
        with self._lock:
            return self._sessions.get(session_id)

    def step_started(self, ref: str) -> threading.Event:
        with self._lock:
            return self._step_started.setdefault(ref, threading.Event())

    def close(self) -> None:
        """Cut every connection at once, as a machine going away would."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            calls = list(self._calls)
            sessions = list(self._sessions.values())
        self.server.stop(grace=None)
        for call in calls:
            call.cancel()
        for bridge in sessions:
            bridge.close()
        self.upstream.close()
        self._executor.shutdown(wait=False)


def _machine_not_ready(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
    context.abort(grpc.StatusCode.UNAVAILABLE, "buildkitd is not ready yet")
    yield b""  # unreachable: makes this a generator, as a stream handler must be


class _ControlProxy(grpc.GenericRpcHandler):
    """Forwards BuildKit's Control calls as raw bytes; Solve is rewritten for dockerd's exporter."""

    def __init__(self, endpoint: _Endpoint):
        self.endpoint = endpoint

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        if not method.startswith(CONTROL):
            return None
        name = method.removeprefix(CONTROL)
        unavailable, _ = self.endpoint.emulator._count_call(f"Control.{name}")
        if unavailable:
            return grpc.stream_stream_rpc_method_handler(_machine_not_ready)
        if method == SOLVE:
            return grpc.unary_unary_rpc_method_handler(self._solve)
        if method == SESSION:
            return grpc.stream_stream_rpc_method_handler(self._session)
        if name in _UNARY_STREAM:
            return grpc.unary_stream_rpc_method_handler(lambda req, ctx: self._unary_stream(method, req, ctx))
        return grpc.unary_unary_rpc_method_handler(lambda req, ctx: self._unary(method, req, ctx))

    def _start(self, call: Any, context: grpc.ServicerContext) -> None:
        if not self.endpoint.track(call):
            call.cancel()
            context.abort(grpc.StatusCode.UNAVAILABLE, "endpoint closed")
        context.add_callback(call.cancel)

    def _unary(self, method: str, request: bytes, context: grpc.ServicerContext, metadata: Any = None) -> bytes:
        stub = self.endpoint.upstream.unary_unary(method, request_serializer=_identity, response_deserializer=_identity)
        call = stub.future(request, metadata=metadata or _forwarded_metadata(context), timeout=_remaining(context))
        self._start(call, context)
        try:
            return call.result()
        except grpc.RpcError as exc:
            context.abort(exc.code(), exc.details() or "")
            raise
        finally:
            self.endpoint.untrack(call)

    def _unary_stream(self, method: str, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        stub = self.endpoint.upstream.unary_stream(
            method, request_serializer=_identity, response_deserializer=_identity
        )
        call = stub(request, metadata=_forwarded_metadata(context), timeout=_remaining(context))
        self._start(call, context)
        ref = control_pb2.StatusRequest.FromString(request).Ref if method == STATUS else None
        try:
            for message in call:
                if ref is not None:
                    self._observe_status(ref, message)
                yield message
        except grpc.RpcError as exc:
            if context.is_active():
                context.abort(exc.code(), exc.details() or "")
        finally:
            self.endpoint.untrack(call)

    def _session(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        bridge = _SessionBridge(self.endpoint.emulator.docker_sock, context.invocation_metadata())
        if not bridge.id:
            bridge.close()
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "session needs x-docker-expose-session-uuid")
        if not self.endpoint.add_session(bridge):
            bridge.close()
            context.abort(grpc.StatusCode.UNAVAILABLE, "endpoint closed")
        context.add_callback(bridge.close)
        try:
            conn = bridge.connect()
            threading.Thread(target=_feed, args=(requests, conn), name="depot-session-feed", daemon=True).start()
            bridge.attach_daemon()
            while True:
                data = conn.recv(_CHUNK)
                if not data:
                    return
                yield control_pb2.BytesMessage(data=data).SerializeToString()
        except OSError as exc:
            if context.is_active():
                context.abort(grpc.StatusCode.UNAVAILABLE, f"session lost: {exc}")
        finally:
            self.endpoint.remove_session(bridge)
            bridge.close()

    def _registry_auth(self, session_id: str, image: str, record: SolveRecord) -> RegistryAuth | None:
        """Credentials for a push: the client's session first, as Depot's builders do, then the emulator's own."""
        bridge = self.endpoint.session(session_id) if session_id else None
        found: RegistryAuth | None = None
        if bridge is not None:
            try:
                found = bridge.credentials(ImageRef.parse(image).registry)
            except grpc.RpcError:
                found = None
            record.credentials_from = "session" if found else None
        if found is None:
            found = self.endpoint.emulator._registry_auth_for(image)
            record.credentials_from = "emulator" if found else None
        record.registry_username = found.username if found else None
        return found

    def _observe_status(self, ref: str, message: bytes) -> None:
        try:
            status = control_pb2.StatusResponse.FromString(message)
        except Exception:
            return
        if any(v.HasField("started") for v in status.vertexes):
            self.endpoint.step_started(ref).set()
        self.endpoint.emulator._record_status(self.endpoint.build_id, status)

    def _solve(self, raw: bytes, context: grpc.ServicerContext) -> bytes:
        emulator = self.endpoint.emulator
        try:
            exporters = solve_exporters(raw)
            request = control_pb2.SolveRequest.FromString(raw)
        except Exception as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed solve request: {exc}")
            raise
        record = SolveRecord(ref=request.Ref, exporters=[kind for kind, _ in exporters])
        emulator._add_solve(self.endpoint.build_id, record)
        if emulator._take_drop_fault():
            threading.Thread(target=self._drop_mid_solve, args=(request.Ref,), daemon=True).start()
        image = next((attrs for kind, attrs in exporters if kind == "image"), None)
        try:
            if image is None:
                return self._unary(SOLVE, raw, context)
            return self._solve_image(request, image, record, context)
        except BaseException as exc:
            details = context.details() if hasattr(context, "details") else None
            if isinstance(details, bytes):
                details = details.decode(errors="replace")
            record.error = "canceled by the client" if not context.is_active() else details or str(exc) or repr(exc)
            raise
        finally:
            record.done = True
            emulator._changed()

    def _drop_mid_solve(self, ref: str) -> None:
        self.endpoint.step_started(ref).wait(timeout=30)
        self.endpoint.emulator.drop_endpoint(self.endpoint.build_id)

    def _solve_image(
        self, request: Any, attrs: Mapping[str, str], record: SolveRecord, context: grpc.ServicerContext
    ) -> bytes:
        names = [n.strip() for n in attrs.get("name", "").split(",") if n.strip()]
        push = attrs.get("push", "").lower() in ("true", "1")
        if push and not names:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "image exporter: push needs a name")
        record.images = names
        config = attrs.get("containerimage.config")
        rewritten = control_pb2.SolveRequest()
        rewritten.CopyFrom(request)
        rewritten.DiscardUnknownFields()
        if "Exporters" in rewritten.DESCRIPTOR.fields_by_name:
            rewritten.ClearField("Exporters")
        rewritten.Exporter = "moby"
        rewritten.ClearField("ExporterAttrs")
        metadata = _forwarded_metadata(context)
        staging = f"depot-emulator-staging/{_new_id()}:raw"
        if names:
            rewritten.ExporterAttrs["name"] = staging if config else ",".join(names)
        response = control_pb2.SolveResponse.FromString(
            self._unary(SOLVE, rewritten.SerializeToString(), context, metadata)
        )
        docker_sock = self.endpoint.emulator.docker_sock
        if config and names:
            response = self._apply_config(request.Ref, staging, names, config, context, metadata)
            try:
                remove_image(docker_sock, staging)
            except BuildError:
                pass
        config_digest = response.ExporterResponse.get("containerimage.digest", "")
        out = control_pb2.SolveResponse()
        out.ExporterResponse.update(
            {k: v for k, v in response.ExporterResponse.items() if k != "containerimage.digest"}
        )
        if names:
            out.ExporterResponse["image.name"] = ",".join(names)
        if config_digest:
            out.ExporterResponse["containerimage.config.digest"] = config_digest
            record.config_digest = config_digest
        if push:
            digests = []
            for name in names:
                try:
                    digests.append(push_image(docker_sock, name, self._registry_auth(request.Session, name, record)))
                except (BuildError, ValueError) as exc:
                    context.abort(grpc.StatusCode.UNKNOWN, f"failed to push {name}: {exc}")
            record.pushed = True
            record.digest = digests[0]
            out.ExporterResponse["containerimage.digest"] = digests[0]
        return out.SerializeToString()

    def _apply_config(
        self,
        ref: str,
        staging: str,
        names: list[str],
        config: str,
        context: grpc.ServicerContext,
        metadata: list[tuple[str, Any]],
    ) -> Any:
        try:
            dockerfile = config_dockerfile(staging, json.loads(config))
        except (ValueError, TypeError) as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid containerimage.config: {exc}")
            raise
        state = llb.scratch().file(llb.mkfile("/Dockerfile", dockerfile))
        follow_up = control_pb2.SolveRequest(
            Ref=f"{ref}-config", Frontend="dockerfile.v0", Exporter="moby", ExporterAttrs={"name": ",".join(names)}
        )
        follow_up.FrontendInputs["dockerfile"].CopyFrom(llb.definition(state))
        follow_up.FrontendInputs["context"].CopyFrom(llb.definition(state))
        return control_pb2.SolveResponse.FromString(
            self._unary(SOLVE, follow_up.SerializeToString(), context, metadata)
        )


class _Auth:
    """Token checks shared by the Depot services."""

    def __init__(self, emulator: DepotEmulator):
        self.emulator = emulator

    def enter(self, method: str, context: grpc.ServicerContext) -> str:
        """Apply the scripted faults for `method`, then return the caller's bearer token."""
        fail, reject = self.emulator._count_call(method)
        if fail:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"{method}: service temporarily unavailable")
        token = _bearer(context)
        if token is None:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing bearer token")
        if reject:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid token")
        assert token is not None  # context.abort raised above
        return token

    def organization(self, method: str, context: grpc.ServicerContext) -> str:
        token = self.enter(method, context)
        emulator = self.emulator
        with emulator._cond:
            org = emulator._org_tokens.get(token)
            is_build_token = token in emulator._build_tokens
        if org is not None:
            return org
        if is_build_token:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "a build token cannot call this method")
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid token")
        raise AssertionError("unreachable")

    def build(self, method: str, context: grpc.ServicerContext, build_id: str, *, org_allowed: bool) -> BuildRecord:
        """The build `build_id`, if the caller's token is that build's (or, where allowed, its organization's)."""
        token = self.enter(method, context)
        emulator = self.emulator
        with emulator._cond:
            own = emulator._build_tokens.get(token)
            org = emulator._org_tokens.get(token)
            build = emulator._builds.get(build_id)
        if own is None and org is None:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid token")
        if not build_id:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "build_id is required")
        if own is not None:
            if own != build_id:
                context.abort(grpc.StatusCode.PERMISSION_DENIED, "token is not valid for this build")
            assert build is not None
            return build
        if not org_allowed:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "this method needs the build's token")
        if build is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"build {build_id} not found")
        assert build is not None
        if build.organization_id != org:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "build belongs to another organization")
        return build


class _ProjectService(depot_project_pb2_grpc.ProjectServiceServicer):
    def __init__(self, emulator: DepotEmulator):
        self.emulator = emulator
        self.auth = _Auth(emulator)

    def _owned(self, org: str, project_id: str, context: grpc.ServicerContext) -> ProjectRecord:
        if not project_id:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "project_id is required")
        with self.emulator._cond:
            project = self.emulator._projects.get(project_id)
        if project is None or project.deleted:
            context.abort(grpc.StatusCode.NOT_FOUND, f"project {project_id} not found")
        assert project is not None
        if project.organization_id != org:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "project belongs to another organization")
        return project

    def CreateProject(self, request: Any, context: grpc.ServicerContext) -> Any:
        org = self.auth.organization("CreateProject", context)
        if not request.name.strip():
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "name is required")
        if request.region_id not in REGIONS:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown region {request.region_id!r}")
        if request.HasField("organization_id") and request.organization_id != org:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "token is not valid for that organization")
        policy = request.cache_policy if request.HasField("cache_policy") else None
        project = ProjectRecord(
            project_id=_new_id(10),
            organization_id=org,
            name=request.name,
            region_id=request.region_id,
            created_at=_now(),
            keep_gb=policy.keep_gb if policy and policy.keep_gb else DEFAULT_KEEP_GB,
            keep_days=policy.keep_days if policy and policy.keep_days else DEFAULT_KEEP_DAYS,
            hardware=request.hardware,
        )
        with self.emulator._cond:
            self.emulator._projects[project.project_id] = project
            self.emulator._cond.notify_all()
        return depot_project_pb2.CreateProjectResponse(project=_project_message(project))

    def GetProject(self, request: Any, context: grpc.ServicerContext) -> Any:
        org = self.auth.organization("GetProject", context)
        return depot_project_pb2.GetProjectResponse(
            project=_project_message(self._owned(org, request.project_id, context))
        )

    def ListProjects(self, request: Any, context: grpc.ServicerContext) -> Any:
        org = self.auth.organization("ListProjects", context)
        with self.emulator._cond:
            projects = [
                p
                for p in self.emulator._projects.values()
                if p.organization_id == org
                and not p.deleted
                and (not request.HasField("region_id") or p.region_id == request.region_id)
            ]
        start = _page_start(request.page_token if request.HasField("page_token") else "", context)
        size = request.page_size if request.HasField("page_size") and request.page_size > 0 else len(projects) or 1
        page = projects[start : start + size]
        response = depot_project_pb2.ListProjectsResponse(projects=[_project_message(p) for p in page])
        if start + size < len(projects):
            response.next_page_token = str(start + size)
        return response

    def DeleteProject(self, request: Any, context: grpc.ServicerContext) -> Any:
        org = self.auth.organization("DeleteProject", context)
        project = self._owned(org, request.project_id, context)
        with self.emulator._cond:
            project.deleted = True
            self.emulator._cond.notify_all()
        return depot_project_pb2.DeleteProjectResponse()

    def ResetProject(self, request: Any, context: grpc.ServicerContext) -> Any:
        org = self.auth.organization("ResetProject", context)
        project = self._owned(org, request.project_id, context)
        with self.emulator._cond:
            project.resets += 1
            self.emulator._cond.notify_all()
        return depot_project_pb2.ResetProjectResponse()


def _page_start(token: str, context: grpc.ServicerContext) -> int:
    if not token:
        return 0
    if not token.isdigit():
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "invalid page_token")
    return int(token)


def _project_message(project: ProjectRecord) -> Any:
    return depot_project_pb2.Project(
        project_id=project.project_id,
        organization_id=project.organization_id,
        name=project.name,
        region_id=project.region_id,
        created_at=_ts(project.created_at),
        cache_policy=depot_project_pb2.CachePolicy(keep_gb=project.keep_gb, keep_days=project.keep_days),
        hardware=depot_project_pb2.Hardware.ValueType(project.hardware),
    )


class _BuildService(depot_build_pb2_grpc.BuildServiceServicer):
    def __init__(self, emulator: DepotEmulator):
        self.emulator = emulator
        self.auth = _Auth(emulator)

    def CreateBuild(self, request: Any, context: grpc.ServicerContext) -> Any:
        org = self.auth.organization("CreateBuild", context)
        emulator = self.emulator
        if not request.project_id:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "project_id is required")
        with emulator._cond:
            project = emulator._projects.get(request.project_id)
        if project is None or project.deleted:
            context.abort(grpc.StatusCode.NOT_FOUND, f"project {request.project_id} not found")
        assert project is not None
        if project.organization_id != org:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "project belongs to another organization")
        build = BuildRecord(build_id=_new_id(), project_id=project.project_id, organization_id=org, created_at=_now())
        token = "depot_build_" + secrets.token_hex(24)
        with emulator._cond:
            emulator._builds[build.build_id] = build
            emulator._build_tokens[token] = build.build_id
            emulator._deadlines[build.build_id] = time.monotonic() + emulator.health_timeout_s
            emulator._cond.notify_all()
        return depot_build_pb2.CreateBuildResponse(build_id=build.build_id, build_token=token)

    def FinishBuild(self, request: Any, context: grpc.ServicerContext) -> Any:
        build = self.auth.build("FinishBuild", context, request.build_id, org_allowed=True)
        kind = request.WhichOneof("result")
        if kind is None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "result is required (success or error)")
        with self.emulator._cond:
            if build.finished:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"build {build.build_id} is already finished")
            build.finished = True
            build.finished_at = _now()
            build.result = kind
            build.error = request.error.error if kind == "error" else None
            self.emulator._cond.notify_all()
        self.emulator._close_endpoint(build.build_id)
        return depot_build_pb2.FinishBuildResponse()

    def _project_build(self, method: str, request: Any, context: grpc.ServicerContext) -> BuildRecord:
        build = self.auth.build(method, context, request.build_id, org_allowed=True)
        if request.project_id != build.project_id:
            context.abort(
                grpc.StatusCode.NOT_FOUND, f"build {build.build_id} not found in project {request.project_id}"
            )
        return build

    def GetBuildSteps(self, request: Any, context: grpc.ServicerContext) -> Any:
        build = self._project_build("GetBuildSteps", request, context)
        with self.emulator._cond:
            steps = [copy.deepcopy(s) for s in build.steps.values()]
        start = _page_start(request.page_token if request.HasField("page_token") else "", context)
        size = request.page_size if request.HasField("page_size") and request.page_size > 0 else _STEP_PAGE
        response = depot_build_pb2.GetBuildStepsResponse()
        Step = depot_build_pb2.GetBuildStepsResponse.BuildStep
        for step in steps[start : start + size]:
            item = response.build_steps.add(
                name=step.name,
                digest=step.digest,
                cache_state=Step.CACHE_STATE_CACHED if step.cached else Step.CACHE_STATE_UNCACHED,
                has_logs=bool(step.logs),
            )
            item.started_at.CopyFrom(_ts(step.started_at or build.created_at))
            if step.completed_at:
                item.completed_at.CopyFrom(_ts(step.completed_at))
            if step.error:
                item.error = step.error
        if start + size < len(steps):
            response.next_page_token = str(start + size)
        return response

    def GetBuildStepLogs(self, request: Any, context: grpc.ServicerContext) -> Any:
        build = self._project_build("GetBuildStepLogs", request, context)
        with self.emulator._cond:
            step = build.steps.get(request.build_step_digest)
            logs = list(step.logs) if step else None
        if logs is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"step {request.build_step_digest} not found")
        assert logs is not None
        start = _page_start(request.page_token if request.HasField("page_token") else "", context)
        size = request.page_size if request.HasField("page_size") and request.page_size > 0 else _STEP_PAGE * 10
        response = depot_build_pb2.GetBuildStepLogsResponse()
        for at, text in logs[start : start + size]:
            response.logs.add(message=text, timestamp=_ts(at))
        if start + size < len(logs):
            response.next_page_token = str(start + size)
        return response


class _BuildRecordService(depot_build_record_pb2_grpc.BuildServiceServicer):
    def __init__(self, emulator: DepotEmulator):
        self.emulator = emulator
        self.auth = _Auth(emulator)

    def GetBuild(self, request: Any, context: grpc.ServicerContext) -> Any:
        build = self.auth.build("GetBuild", context, request.build_id, org_allowed=True)
        with self.emulator._cond:
            message = depot_build_record_pb2.Build(
                build_id=build.build_id,
                status=depot_build_record_pb2.Build.Status.ValueType(build.status),
                created_at=_ts(build.created_at),
            )
            if build.endpoint_at:
                message.started_at.CopyFrom(_ts(build.endpoint_at))
            end = build.finished_at
            if end:
                message.finished_at.CopyFrom(_ts(end))
                message.build_duration_seconds = int((end - build.created_at).total_seconds())
            if build.steps:
                message.total_steps = len(build.steps)
                message.cached_steps = sum(1 for s in build.steps.values() if s.cached)
        return depot_build_record_pb2.GetBuildResponse(build=message)


def _platform(value: int, context: grpc.ServicerContext) -> str:
    if value not in Platform.values():
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown platform {value}")
    return Platform.Name(value)


class _BuildKitService(depot_buildkit_pb2_grpc.BuildKitServiceServicer):
    def __init__(self, emulator: DepotEmulator):
        self.emulator = emulator
        self.auth = _Auth(emulator)

    def _live(self, build: BuildRecord, context: grpc.ServicerContext) -> None:
        if build.ended:
            reason = "expired: no health report in time" if build.expired else "finished"
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"build {build.build_id} has ended ({reason})")

    def GetEndpoint(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        emulator = self.emulator
        build = self.auth.build("GetEndpoint", context, request.build_id, org_allowed=False)
        platform = _platform(request.platform, context)
        with emulator._cond:
            self._live(build, context)
            build.endpoint_requests += 1
            build.platform = platform
            first = build.endpoint_requests == 1
            faults = copy.deepcopy(emulator.faults)
            emulator._cond.notify_all()
        if first and faults.not_found_first_endpoint:
            context.abort(grpc.StatusCode.NOT_FOUND, f"build {build.build_id} not found")
        Response = depot_buildkit_pb2.GetEndpointResponse
        for _ in range(faults.pending_messages):
            yield Response(pending=Response.PendingConnection())
            if faults.pending_delay_s and emulator._stopping.wait(faults.pending_delay_s):
                context.abort(grpc.StatusCode.UNAVAILABLE, "emulator stopping")
        endpoint = emulator._endpoint_for(build.build_id, context)
        yield Response(
            active=Response.ActiveConnection(
                endpoint=endpoint.address,
                server_name=endpoint.server_name,
                cert=depot_buildkit_pb2.CertificatePair(
                    cert=depot_buildkit_pb2.PublicCertificate(cert=endpoint.certs.client_cert.decode()),
                    key=depot_buildkit_pb2.PrivateKey(key=endpoint.certs.client_key.decode()),
                ),
                ca_cert=depot_buildkit_pb2.PublicCertificate(cert=endpoint.certs.ca.decode()),
            )
        )

    def ReportHealth(self, request_iterator: Iterable[Any], context: grpc.ServicerContext) -> Any:
        emulator = self.emulator
        token = self.auth.enter("ReportHealth", context)
        with emulator._cond:
            own = emulator._build_tokens.get(token)
            is_org = token in emulator._org_tokens
        if own is None:
            code = grpc.StatusCode.PERMISSION_DENIED if is_org else grpc.StatusCode.UNAUTHENTICATED
            context.abort(code, "this method needs the build's token" if is_org else "invalid token")
        assert own is not None
        for report in request_iterator:
            if report.build_id != own:
                context.abort(grpc.StatusCode.PERMISSION_DENIED, "token is not valid for this build")
            platform = _platform(report.platform, context)
            with emulator._cond:
                build = emulator._builds[own]
                self._live(build, context)
                build.health_reports += 1
                build.last_health_at = _now()
                build.platform = platform
                emulator._deadlines[own] = time.monotonic() + emulator.health_timeout_s
                emulator._cond.notify_all()
        return depot_buildkit_pb2.ReportHealthResponse()

    def ReleaseEndpoint(self, request: Any, context: grpc.ServicerContext) -> Any:
        emulator = self.emulator
        build = self.auth.build("ReleaseEndpoint", context, request.build_id, org_allowed=False)
        with emulator._cond:
            if not build.released:
                build.released = True
                build.released_at = _now()
            emulator._cond.notify_all()
        emulator._close_endpoint(build.build_id)
        return depot_buildkit_pb2.ReleaseEndpointResponse()


class DepotEmulator:
    """Depot's API on a local port, with real builds behind its endpoints; see the module docstring."""

    def __init__(
        self,
        *,
        token: str | None = None,
        organization_id: str = "org-emulator",
        host: str = "127.0.0.1",
        port: int = 0,
        docker_addr: str = "docker:///run/starforge/docker.sock",
        registry_auth: RegistryAuth | Mapping[str, RegistryAuth] | None = None,
        health_timeout_s: float = 300.0,
        faults: Faults | None = None,
    ):
        if not docker_addr.startswith("docker://"):
            raise ValueError(f"the emulator fronts a Docker daemon's BuildKit; {docker_addr!r} is not docker://")
        self.token = token or "depot_org_" + secrets.token_hex(24)
        self.organization_id = organization_id
        self.host = host
        self.docker_addr = docker_addr
        self.docker_sock = docker_addr.removeprefix("docker://")
        self.health_timeout_s = health_timeout_s
        self.faults = faults or Faults()
        self._registry_auth = registry_auth
        self._requested_port = port
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._org_tokens: dict[str, str] = {self.token: organization_id}
        self._build_tokens: dict[str, str] = {}
        self._projects: dict[str, ProjectRecord] = {}
        self._builds: dict[str, BuildRecord] = {}
        self._deadlines: dict[str, float] = {}
        self._endpoints: dict[str, _Endpoint] = {}
        self._calls: dict[str, int] = {}
        self._server: grpc.Server | None = None
        self._executor: futures.ThreadPoolExecutor | None = None
        self._reaper: threading.Thread | None = None
        self.port = 0

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.target}"

    def start(self) -> str:
        """Serve on the configured port (0: a free one) and return the API URL."""
        if self._server is not None:
            return self.url
        self._executor = futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix="depot-api")
        server = grpc.server(self._executor)
        depot_project_pb2_grpc.add_ProjectServiceServicer_to_server(_ProjectService(self), server)
        depot_build_pb2_grpc.add_BuildServiceServicer_to_server(_BuildService(self), server)
        depot_build_record_pb2_grpc.add_BuildServiceServicer_to_server(_BuildRecordService(self), server)
        depot_buildkit_pb2_grpc.add_BuildKitServiceServicer_to_server(_BuildKitService(self), server)
        self.port = server.add_insecure_port(f"{self.host}:{self._requested_port}")
        if not self.port:
            raise OSError(f"cannot listen on {self.host}:{self._requested_port}")
        server.start()
        self._server = server
        self._stopping.clear()
        self._reaper = threading.Thread(target=self._reap, name="depot-emulator-expiry", daemon=True)
        self._reaper.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and close every endpoint."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
            endpoints = list(self._endpoints.values())
            self._endpoints.clear()
        for endpoint in endpoints:
            endpoint.close()
        if self._server is not None:
            self._server.stop(grace=None).wait(10)
            self._server = None
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
        if self._reaper is not None:
            self._reaper.join(timeout=10)
            self._reaper = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_organization(self, organization_id: str) -> str:
        """Another organization and its token (for PERMISSION_DENIED checks)."""
        token = "depot_org_" + secrets.token_hex(24)
        with self._cond:
            self._org_tokens[token] = organization_id
        return token

    def projects(self) -> list[ProjectRecord]:
        with self._cond:
            return [copy.deepcopy(p) for p in self._projects.values()]

    def project(self, project_id: str) -> ProjectRecord:
        with self._cond:
            return copy.deepcopy(self._projects[project_id])

    def builds(self) -> list[BuildRecord]:
        with self._cond:
            return [copy.deepcopy(b) for b in self._builds.values()]

    def build(self, build_id: str) -> BuildRecord:
        with self._cond:
            return copy.deepcopy(self._builds[build_id])

    def calls(self, method: str) -> int:
        """How many times a Depot API method was called (faulted calls included)."""
        with self._cond:
            return self._calls.get(method, 0)

    def wait_for(self, predicate: Callable[[DepotEmulator], bool], timeout: float = 30.0) -> bool:
        """Block until `predicate(self)` holds after some state change; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                self._cond.release()
                try:
                    if predicate(self):
                        return True
                finally:
                    self._cond.acquire()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)

    def drop_endpoint(self, build_id: str) -> None:
        """The build's machine goes away: its BuildKit connections are cut and it accepts no new ones."""
        with self._cond:
            build = self._builds[build_id]
            build.endpoint_dropped = True
            self._cond.notify_all()
        self._close_endpoint(build_id)

    def _changed(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _registry_auth_for(self, image: str) -> RegistryAuth | None:
        auth = self._registry_auth
        if auth is None or isinstance(auth, RegistryAuth):
            return auth
        return auth.get(ImageRef.parse(image).registry)

    def _count_call(self, method: str) -> tuple[bool, bool]:
        """Count a call; (answer UNAVAILABLE this time, reject every token)."""
        with self._cond:
            self._calls[method] = self._calls.get(method, 0) + 1
            fail = method in self.faults.unavailable_once
            self.faults.unavailable_once.discard(method)
            return fail, self.faults.reject_tokens

    def _take_drop_fault(self) -> bool:
        with self._cond:
            drop = self.faults.drop_endpoint_during_solve
            self.faults.drop_endpoint_during_solve = False
            return drop

    def _endpoint_for(self, build_id: str, context: grpc.ServicerContext) -> _Endpoint:
        with self._cond:
            build = self._builds[build_id]
            endpoint = self._endpoints.get(build_id)
            if build.ended or build.endpoint_dropped or self._stopping.is_set():
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"build {build_id} has no machine any more")
            if endpoint is not None:
                return endpoint
        endpoint = _Endpoint(self, build_id)
        with self._cond:
            if build.ended or build.endpoint_dropped or build_id in self._endpoints:
                existing = self._endpoints.get(build_id)
                if existing is not None:
                    endpoint.close()
                    return existing
                endpoint.close()
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"build {build_id} has no machine any more")
            self._endpoints[build_id] = endpoint
            build.endpoint = endpoint.address
            build.server_name = endpoint.server_name
            build.endpoint_at = build.endpoint_at or _now()
            self._cond.notify_all()
        return endpoint

    def _close_endpoint(self, build_id: str) -> None:
        with self._cond:
            endpoint = self._endpoints.pop(build_id, None)
            if self._builds[build_id].ended:
                self._deadlines.pop(build_id, None)
        if endpoint is not None:
            endpoint.close()

    def _add_solve(self, build_id: str, record: SolveRecord) -> None:
        with self._cond:
            self._builds[build_id].solves.append(record)
            self._cond.notify_all()

    def _record_status(self, build_id: str, status: Any) -> None:
        with self._cond:
            steps = self._builds[build_id].steps
            for vertex in status.vertexes:
                step = steps.setdefault(vertex.digest, StepRecord(vertex.digest, vertex.name))
                step.name = vertex.name or step.name
                if vertex.HasField("started"):
                    step.started_at = vertex.started.ToDatetime(tzinfo=dt.UTC)
                if vertex.HasField("completed"):
                    step.completed_at = vertex.completed.ToDatetime(tzinfo=dt.UTC)
                step.cached = step.cached or vertex.cached
                step.error = vertex.error or step.error
            for log in status.logs:
                step = steps.setdefault(log.vertex, StepRecord(log.vertex, ""))
                text = log.msg.decode("utf-8", errors="replace")
                step.logs.extend((log.timestamp.ToDatetime(tzinfo=dt.UTC), line) for line in text.splitlines())

    def _reap(self) -> None:
        """End builds whose health reports stopped for longer than `health_timeout_s`."""
        with self._cond:
            while not self._stopping.is_set():
                now = time.monotonic()
                expired = [b for b, at in self._deadlines.items() if at <= now and not self._builds[b].ended]
                for build_id in expired:
                    self._builds[build_id].expired = True
                    self._deadlines.pop(build_id, None)
                if expired:
                    self._cond.notify_all()
                    endpoints = [self._endpoints.pop(b) for b in expired if b in self._endpoints]
                    self._cond.release()
                    try:
                        for endpoint in endpoints:
                            endpoint.close()
                    finally:
                        self._cond.acquire()
                    continue
                live = [at for b, at in self._deadlines.items() if not self._builds[b].ended]
                self._cond.wait(max(0.0, min(live) - now) if live else None)
