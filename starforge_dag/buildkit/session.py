"""A BuildKit session served from this process: the daemon pulls build context, secrets and registry credentials through it.

On the session connection the daemon is the HTTP/2 (gRPC) client: `h2server.Connection` answers
on that connection itself, one thread per session. What a local directory looks like to the
daemon (listing order, `.dockerignore`, followed links) is `filesync`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from grpc_health.v1 import health_pb2  # the standard copy: a second one would clash in protobuf's pool

from ..core.errors import BuildError, ErrorKind
from .filesync import GO_TYPE, Packet, walk
from .h2server import (
    INVALID_ARGUMENT,
    NOT_FOUND,
    PERMISSION_DENIED,
    UNAVAILABLE,
    UNIMPLEMENTED,
    UNKNOWN,
    Call,
    CallError,
    Connection,
    Handler,
    frame,
)
from .pb import auth_pb2, control_pb2, control_pb2_grpc, secrets_pb2
from .registry import RegistryAuth, RegistryClient
from .transport import TLSConfig, docker_upgrade, open_channel

CHUNK_BYTES = 256 * 1024
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
FILESYNC_DIFFCOPY = "/moby.filesync.v1.FileSync/DiffCopy"
SECRETS_GET = "/moby.buildkit.secrets.v1.Secrets/GetSecret"
AUTH_CREDENTIALS = "/moby.filesync.v1.Auth/Credentials"
AUTH_FETCH_TOKEN = "/moby.filesync.v1.Auth/FetchToken"
AUTH_GET_TOKEN_AUTHORITY = "/moby.filesync.v1.Auth/GetTokenAuthority"
AUTH_VERIFY_TOKEN_AUTHORITY = "/moby.filesync.v1.Auth/VerifyTokenAuthority"
AUTH_METHODS = [AUTH_CREDENTIALS, AUTH_FETCH_TOKEN, AUTH_GET_TOKEN_AUTHORITY, AUTH_VERIFY_TOKEN_AUTHORITY]


def _file_data(path: str, file_id: int) -> Iterator[bytes]:
    """A file's bytes as DATA packets; an empty DATA ends it (also for a file that vanished)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        fd = -1
    if fd >= 0:
        with os.fdopen(fd, "rb", buffering=0) as f:
            while chunk := f.read(CHUNK_BYTES):
                yield frame(Packet(type=Packet.PACKET_DATA, ID=file_id, data=chunk))
    yield frame(Packet(type=Packet.PACKET_DATA, ID=file_id))


class _Services:
    """The services a session offers, as cooperative handlers: each yields framed responses or WAIT."""

    def __init__(
        self,
        dirs: Mapping[str, str],
        secrets: Mapping[str, bytes],
        credentials: Mapping[str, RegistryAuth],
        owner: tuple[int, int] | None,
    ):
        self._dirs = dirs
        self._secrets = secrets
        self._credentials = credentials
        self._registry = RegistryClient(dict(credentials))
        self._seed = os.urandom(32)  # token-authority keys live as long as the session
        self._owner = owner
        self.handlers: dict[str, Handler] = {
            HEALTH_CHECK: self._unary(self._health),
            SECRETS_GET: self._unary(self._secret),
            AUTH_CREDENTIALS: self._unary(self._registry_credentials),
            AUTH_GET_TOKEN_AUTHORITY: self._unary(self._token_authority),
            AUTH_VERIFY_TOKEN_AUTHORITY: self._unary(self._verify_token_authority),
            AUTH_FETCH_TOKEN: self._unary(self._fetch_token),
            FILESYNC_DIFFCOPY: self._diffcopy,
        }

    @staticmethod
    def _unary(fn: Callable[[bytes], Any]) -> Handler:
        def handle(call: Call) -> Iterator[bytes | None]:
            request = yield from call.next_request()
            yield frame(fn(request or b""))

        return handle

    def _health(self, request: bytes) -> health_pb2.HealthCheckResponse:
        """Serving while the connection is up: the daemon drops the session when a check fails."""
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    def _secret(self, request: bytes) -> secrets_pb2.GetSecretResponse:
        name = secrets_pb2.GetSecretRequest.FromString(request).ID
        value = self._secrets.get(name)
        if value is None:
            raise CallError(NOT_FOUND, f"secret {name} not found")
        return secrets_pb2.GetSecretResponse(data=value)

    def _registry_credentials(self, request: bytes) -> auth_pb2.CredentialsResponse:
        """Credentials by registry host; an unknown host gets an empty (anonymous) answer."""
        found = self._credentials.get(auth_pb2.CredentialsRequest.FromString(request).Host)
        if found is None:
            return auth_pb2.CredentialsResponse()
        return auth_pb2.CredentialsResponse(Username=found.username, Secret=found.password)

    def _authority_key(self, host: str, salt: bytes) -> Ed25519PrivateKey:
        """The key that vouches for tokens this session fetches for `host`; UNIMPLEMENTED makes BuildKit fall back.

        Without credentials for the host there is nothing to keep from the daemon: it then asks
        Credentials (anonymous) and fetches the token itself.
        """
        if host not in self._credentials:
            raise CallError(UNIMPLEMENTED, f"no client-side tokens for {host}")
        seed = hmac.new(salt, self._seed, hashlib.sha256).digest()
        return Ed25519PrivateKey.from_private_bytes(seed)

    def _token_authority(self, request: bytes) -> auth_pb2.GetTokenAuthorityResponse:
        """With a token authority the daemon asks FetchToken for scoped tokens and never sees the password."""
        req = auth_pb2.GetTokenAuthorityRequest.FromString(request)
        public = self._authority_key(req.Host, req.Salt).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return auth_pb2.GetTokenAuthorityResponse(PublicKey=public)

    def _verify_token_authority(self, request: bytes) -> auth_pb2.VerifyTokenAuthorityResponse:
        """Prove this session holds the authority key: NaCl's signed-message format, signature then payload."""
        req = auth_pb2.VerifyTokenAuthorityRequest.FromString(request)
        key = self._authority_key(req.Host, req.Salt)
        return auth_pb2.VerifyTokenAuthorityResponse(Signed=key.sign(req.Payload) + req.Payload)

    def _fetch_token(self, request: bytes) -> auth_pb2.FetchTokenResponse:
        """A registry token for the daemon, fetched here with our credentials, only from the registry's own realm."""
        req = auth_pb2.FetchTokenRequest.FromString(request)
        if req.Host not in self._credentials:
            raise CallError(UNIMPLEMENTED, f"no client-side tokens for {req.Host}")
        try:
            realm, _service = self._registry.token_realm(req.Host)
            if realm != req.Realm:
                raise CallError(PERMISSION_DENIED, f"{req.Realm} is not the token realm of registry {req.Host}")
            token = self._registry.fetch_token(req.Host, req.Realm, req.Service, list(req.Scopes))
        except BuildError as exc:
            code = UNAVAILABLE if exc.kind == ErrorKind.TRANSIENT else PERMISSION_DENIED
            raise CallError(code, exc.message) from None
        return auth_pb2.FetchTokenResponse(Token=token.token, ExpiresIn=token.expires_in, IssuedAt=token.issued_at)

    def _diffcopy(self, call: Call) -> Iterator[bytes | None]:
        """fsutil's sender: STAT listing and an empty STAT, DATA for each REQ, FIN to answer FIN."""
        name = (call.metadata.get("dir-name") or [""])[0]
        root = self._dirs.get(name)
        if root is None:
            raise CallError(NOT_FOUND, f"no access allowed to dir {name!r}")
        files: dict[int, str] = {}
        try:
            listing = walk(
                root,
                includes=call.metadata.get("include-patterns"),
                excludes=call.metadata.get("exclude-patterns"),
                follow_paths=call.metadata.get("followpaths"),
                owner=self._owner,
            )
            for index, stat in enumerate(listing):
                if not stat.mode & GO_TYPE:
                    files[index] = stat.path
                yield frame(Packet(type=Packet.PACKET_STAT, stat=stat))
        except (OSError, ValueError, re.error) as exc:
            yield frame(Packet(type=Packet.PACKET_ERR, data=str(exc).encode()))
            raise CallError(UNKNOWN, str(exc)) from exc
        yield frame(Packet(type=Packet.PACKET_STAT))
        while (request := (yield from call.next_request())) is not None:
            packet = Packet.FromString(request)
            if packet.type == Packet.PACKET_REQ:
                path = files.pop(packet.ID, None)
                if path is None:
                    raise CallError(INVALID_ARGUMENT, f"invalid file id {packet.ID}")
                yield from _file_data(os.path.join(root, path), packet.ID)
            elif packet.type == Packet.PACKET_FIN:
                yield frame(Packet(type=Packet.PACKET_FIN))
                return
            elif packet.type == Packet.PACKET_ERR:
                raise CallError(UNKNOWN, f"error from receiver: {packet.data.decode(errors='replace')}")


class Session:
    """Serve a session to BuildKit over a connection the daemon treats as its gRPC client side."""

    def __init__(
        self,
        address: str,
        tls: TLSConfig | None = None,
        *,
        local_dirs: Mapping[str, str | os.PathLike[str]] | None = None,
        secrets: Mapping[str, str | bytes] | None = None,
        registry_auth: Mapping[str, RegistryAuth | tuple[str, str]] | None = None,
        name: str = "starforge",
        shared_key: str | None = None,
        owner: tuple[int, int] | None = None,
        attach: Literal["auto", "control"] = "auto",
    ):
        if any(c in name for c in "\r\n\0"):
            raise ValueError("session name must be a single line")
        self.address = address
        self.attach = attach
        self.id = uuid.uuid4().hex
        self.name = name
        self._tls = tls
        dirs = {k: os.path.realpath(v) for k, v in (local_dirs or {}).items()}
        self._services = _Services(
            dirs,
            {k: v.encode() if isinstance(v, str) else bytes(v) for k, v in (secrets or {}).items()},
            {host: _auth(host, found) for host, found in (registry_auth or {}).items()},
            owner,
        )
        self._has_dirs = bool(dirs)
        anchor = dirs.get("context") or next(iter(dirs.values()), self.id)
        self.shared_key = shared_key or hashlib.sha256(f"starforge:{anchor}".encode()).hexdigest()
        self._stop: tuple[socket.socket, socket.socket] | None = None
        self._threads: list[threading.Thread] = []
        self._stoppers: list[Callable[[], object]] = []
        self._closers: list[Callable[[], object]] = []

    @property
    def methods(self) -> list[str]:
        """The gRPC methods announced to the daemon; it only uses what is listed."""
        methods = [HEALTH_CHECK, SECRETS_GET, *AUTH_METHODS]
        if self._has_dirs:
            methods.append(FILESYNC_DIFFCOPY)
        return methods

    def headers(self) -> list[tuple[str, str]]:
        """Session headers as `POST /session` wants them; Control.Session takes them lowercased."""
        headers = [
            ("X-Docker-Expose-Session-Uuid", self.id),
            ("X-Docker-Expose-Session-Name", self.name),
            ("X-Docker-Expose-Session-Sharedkey", self.shared_key),
        ]
        return headers + [("X-Docker-Expose-Session-Grpc-Method", m) for m in self.methods]

    def __enter__(self) -> Session:
        if self._stop is not None:
            raise RuntimeError("session is already open")
        self._stop = socket.socketpair()
        try:
            self._attach()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def serve_connection(self, sock: socket.socket) -> None:
        """Answer the session's gRPC calls on a connected socket until the peer or close() ends it."""
        if self._stop is None:
            raise RuntimeError("session is not open")
        Connection(sock, self._services.handlers, self._stop[0]).serve()

    def _hold(self, sock: socket.socket) -> None:
        """Shut the socket down first (wakes threads blocked on it), close it after they ended."""
        self._stoppers.append(lambda: sock.shutdown(socket.SHUT_RDWR))
        self._closers.append(sock.close)

    def _attach(self) -> None:
        scheme, _, rest = self.address.partition("://")
        if scheme == "docker" and self.attach == "auto":
            upstream = docker_upgrade(rest, "/session", self.headers())
            self._hold(upstream)
            self._spawn(self.serve_connection, upstream)
            return
        ours, theirs = socket.socketpair()
        self._hold(ours)
        self._hold(theirs)
        channel = open_channel(self.address, self._tls)
        self._closers.append(channel.close)
        metadata = [(k.lower(), v) for k, v in self.headers()]
        call = control_pb2_grpc.ControlStub(channel).Session(_outbound(theirs), metadata=metadata)
        self._stoppers.append(call.cancel)
        self._spawn(self.serve_connection, ours)
        self._spawn(_inbound, call, theirs)

    def _spawn(self, target: Callable[..., object], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=f"session-{self.id[:8]}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def close(self) -> None:
        """Drop the connection (the daemon forgets the session) and stop serving."""
        if self._stop is None:
            return
        stop_r, stop_w = self._stop
        stop_w.send(b"x")
        for stop in self._stoppers:
            try:
                stop()
            except OSError:
                pass
        for thread in self._threads:
            thread.join(timeout=5)
        for closer in reversed(self._closers):
            closer()
        self._stoppers.clear()
        self._closers.clear()
        self._threads.clear()
        stop_r.close()
        stop_w.close()
        self._stop = None


def _auth(host: str, found: RegistryAuth | tuple[str, str]) -> RegistryAuth:
    return found if isinstance(found, RegistryAuth) else RegistryAuth(found[0], found[1], host)


def _outbound(conn: socket.socket) -> Iterator[control_pb2.BytesMessage]:
    """Bytes our server writes, as the request side of Control.Session."""
    while True:
        try:
            data = conn.recv(CHUNK_BYTES)
        except OSError:
            return
        if not data:
            return
        yield control_pb2.BytesMessage(data=data)


def _inbound(call: Iterator[control_pb2.BytesMessage], conn: socket.socket) -> None:
    """Bytes the daemon sends on Control.Session, written to our server."""
    try:
        for message in call:
            conn.sendall(message.data)
        conn.shutdown(socket.SHUT_WR)
    except (grpc.RpcError, OSError):
        pass
