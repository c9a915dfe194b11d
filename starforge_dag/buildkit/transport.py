"""Connections to BuildKit: tcp:// (optionally mTLS), unix:// and a Docker daemon's embedded BuildKit."""

from __future__ import annotations

import os
import selectors
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import grpc

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]
_HEADER_LIMIT = 64 * 1024
# Loopback endpoints (the docker bridge, local buildkitd) never go through an HTTP proxy from the environment.
_NO_PROXY = ("grpc.enable_http_proxy", 0)

Headers = Mapping[str, str] | Iterable[tuple[str, str]]


@dataclass(frozen=True)
class TLSConfig:
    """PEM material for an mTLS BuildKit endpoint (Depot hands these out per build)."""

    ca_pem: bytes | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    server_name: str | None = None

    @classmethod
    def from_files(
        cls,
        ca: str | Path | None = None,
        cert: str | Path | None = None,
        key: str | Path | None = None,
        server_name: str | None = None,
    ) -> TLSConfig:
        return cls(ca_pem=_read(ca), cert_pem=_read(cert), key_pem=_read(key), server_name=server_name)


def _read(path: str | Path | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


def docker_upgrade(sock_path: str, path: str, headers: Headers = (), timeout: float = 10.0) -> socket.socket:
    """Hijack a Docker API connection: the daemon speaks HTTP/2 on it after the 101."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    request = [f"POST {path} HTTP/1.1", "Host: docker", "Connection: Upgrade", "Upgrade: h2c"]
    request += [f"{name}: {value}" for name, value in items]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(sock_path)
        sock.sendall(("\r\n".join(request) + "\r\n\r\n").encode())
        head = _read_head(sock)
        status_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or parts[1] != "101":
            sock.settimeout(0.5)
            try:
                body = sock.recv(2048).decode(errors="replace").strip()
            except OSError:
                body = ""
            raise ConnectionError(f"docker {path} upgrade refused: {status_line} {body}".strip())
        sock.settimeout(None)
        return sock
    except BaseException:
        sock.close()
        raise


def _read_head(sock: socket.socket) -> bytes:
    """Read the response head byte by byte so no HTTP/2 bytes after it are consumed."""
    head = bytearray()
    while not head.endswith(b"\r\n\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError("docker closed the connection during the upgrade")
        head += chunk
        if len(head) > _HEADER_LIMIT:
            raise ConnectionError("docker upgrade response head too large")
    return bytes(head)


def pipe_sockets(
    left: socket.socket, right: socket.socket, *, wake: socket.socket | None = None, chunk: int = 65536
) -> None:
    """Copy bytes both ways until both sides finished writing, one fails, or `wake` turns readable."""
    peers = {left: right, right: left}
    with selectors.DefaultSelector() as sel:
        sel.register(left, selectors.EVENT_READ)
        sel.register(right, selectors.EVENT_READ)
        if wake is not None:
            sel.register(wake, selectors.EVENT_READ)
        open_reads = 2
        while open_reads:
            for key, _ in sel.select():
                src = key.fileobj
                if src is wake:
                    return
                assert isinstance(src, socket.socket)
                try:
                    data = src.recv(chunk)
                    if data:
                        peers[src].sendall(data)
                        continue
                    peers[src].shutdown(socket.SHUT_WR)
                except OSError:
                    return
                sel.unregister(src)
                open_reads -= 1


class DockerBridge:
    """A private unix endpoint for grpcio, each connection upgraded to h2c on the Docker socket."""

    def __init__(self, sock_path: str, path: str = "/grpc", headers: Headers = ()):
        self._sock_path = sock_path
        self._path = path
        self._headers = list(headers.items() if isinstance(headers, Mapping) else headers)
        self._lock = threading.Lock()
        self._closed = False
        self._threads: list[threading.Thread] = []
        self._wake_r, self._wake_w = socket.socketpair()
        self._dir = tempfile.mkdtemp(prefix="starforge-bridge-")  # 0700: only this user may even look
        self.path = os.path.join(self._dir, "buildkit.sock")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._listener.bind(self.path)
            os.chmod(self.path, 0o600)
            self._listener.listen(16)
        except BaseException:
            self._listener.close()
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        self.target = f"unix:{self.path}"
        self._spawn(self._accept_loop, "accept")

    def _spawn(self, fn: Any, name: str, *args: Any) -> None:
        thread = threading.Thread(target=fn, args=args, name=f"docker-bridge-{name}", daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(self._listener, selectors.EVENT_READ)
            sel.register(self._wake_r, selectors.EVENT_READ)
            while not self._closed:
                ready = {key.fileobj for key, _ in sel.select()}
                if self._wake_r in ready or self._closed:
                    return
                try:
                    client, _ = self._listener.accept()
                except OSError:
                    return
                self._spawn(self._serve, "conn", client)

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = docker_upgrade(self._sock_path, self._path, self._headers)
        except OSError:
            client.close()
            return
        with client, upstream:
            pipe_sockets(client, upstream, wake=self._wake_r)

    def close(self) -> None:
        """Stop accepting, drop every piped connection and wait for the threads."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = list(self._threads)
        self._wake_w.send(b"x")
        for thread in threads:
            thread.join(timeout=5)
        self._listener.close()
        shutil.rmtree(self._dir, ignore_errors=True)
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _BridgedChannel(grpc.Channel):
    """A grpc.Channel that owns its DockerBridge, so closing the channel stops the bridge."""

    def __init__(self, channel: grpc.Channel, bridge: DockerBridge):
        self._channel = channel
        self._bridge = bridge

    def subscribe(self, callback: Any, try_to_connect: bool = False) -> None:
        self._channel.subscribe(callback, try_to_connect)

    def unsubscribe(self, callback: Any) -> None:
        self._channel.unsubscribe(callback)

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._channel.unary_unary(method, *args, **kwargs)

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._channel.unary_stream(method, *args, **kwargs)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._channel.stream_unary(method, *args, **kwargs)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._channel.stream_stream(method, *args, **kwargs)

    def close(self) -> None:
        try:
            self._channel.close()
        finally:
            self._bridge.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _loopback(hostport: str) -> bool:
    host = hostport.rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


def open_channel(addr: str, tls: TLSConfig | None = None) -> grpc.Channel:
    """Open a gRPC channel to a BuildKit address; the scheme picks how bytes get there."""
    scheme, sep, rest = addr.partition("://")
    if not sep:
        raise ValueError(f"BuildKit address {addr!r} needs a scheme (tcp://, unix://, docker://)")
    if scheme == "tcp":
        options = list(CHANNEL_OPTIONS)
        if _loopback(rest):
            options.append(_NO_PROXY)
        if tls is None:
            return grpc.insecure_channel(rest, options=options)
        creds = grpc.ssl_channel_credentials(
            root_certificates=tls.ca_pem, private_key=tls.key_pem, certificate_chain=tls.cert_pem
        )
        if tls.server_name:
            options.append(("grpc.ssl_target_name_override", tls.server_name))
        return grpc.secure_channel(rest, creds, options=options)
    if scheme == "unix":
        if tls is not None:
            raise ValueError("TLS over unix:// is not supported")
        return grpc.insecure_channel(addr, options=CHANNEL_OPTIONS)
    if scheme == "docker":
        if tls is not None:
            raise ValueError("TLS over docker:// is not supported; the Docker socket is local")
        bridge = DockerBridge(rest)
        return _BridgedChannel(grpc.insecure_channel(bridge.target, options=CHANNEL_OPTIONS), bridge)
    raise ValueError(f"unsupported BuildKit address scheme {scheme!r} in {addr!r}")
