"""A client's BuildKit session ending in the emulator, so dockerd can use it and pushes can ask it for credentials."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable, Iterator
from concurrent import futures
from typing import Any

import grpc

from ...buildkit.pb import auth_pb2, control_pb2
from ...buildkit.registry import RegistryAuth
from ...buildkit.transport import CHANNEL_OPTIONS, docker_upgrade, pipe_sockets
from .rpc import forwarded_metadata, identity

AUTH_CREDENTIALS = "/moby.filesync.v1.Auth/Credentials"
CHUNK = 256 * 1024
_SESSION_HEADER = "x-docker-expose-session-"
_LOOPBACK_OPTIONS: list[tuple[str, Any]] = [*CHANNEL_OPTIONS, ("grpc.enable_http_proxy", 0)]


def feed(requests: Iterator[bytes], conn: socket.socket) -> None:
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
        stub = self.channel.stream_stream(method, request_serializer=identity, response_deserializer=identity)
        call = stub(requests, metadata=forwarded_metadata(context))
        context.add_callback(call.cancel)
        try:
            yield from call
        except grpc.RpcError as exc:
            if context.is_active():
                context.abort(exc.code(), exc.details() or "")


class SessionBridge:
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
            kwargs={"chunk": CHUNK},
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
