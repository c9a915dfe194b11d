"""A BuildKit session served from this process: the daemon pulls build context, secrets and registry credentials through it.

Public API:
    Session(address, tls=None, *, local_dirs=None, secrets=None, registry_auth=None,
            name="starforge", shared_key=None, owner=None, attach="auto")
        A context manager. `.id` goes into `SolveRequest.Session`. While open, the daemon
        (the gRPC client on this connection) may call Health/Check, FileSync/DiffCopy for
        the named `local_dirs` ("context", "dockerfile", ...), Secrets/GetSecret (unknown
        names answer NOT_FOUND) and Auth/Credentials (host -> (username, password); unknown
        hosts answer anonymous). `owner=(0, 0)` reports every file as root-owned, as
        `docker build` does; None reports the real uid/gid.
        attach="auto": docker:///path/docker.sock attaches with `POST /session`, tcp:// and
        unix:// with the `Control.Session` byte stream; attach="control" always uses the latter.
      .serve_connection(sock)   answer the same calls on another connected socket (peer = client)
    walk(root, includes=None, excludes=None, follow_paths=None, owner=None) -> Iterator[Stat]
        The file listing the daemon receives, in fsutil's order and with its filters.
    ExcludeMatcher(patterns).matches(path) -> bool
        `.dockerignore` semantics (last matching pattern wins, `!` re-includes).

On the session connection the daemon is the HTTP/2 (gRPC) client. A small HTTP/2 server (h2)
answers on that connection itself, one thread per session: handlers are generators, and many
small messages (a STAT per file) share one DATA frame, which a gRPC server library would send
one by one.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import selectors
import socket
import stat as st
import threading
import uuid
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import quote

import grpc
import h2.config
import h2.connection
import h2.events
import h2.exceptions
from grpc_health.v1 import health_pb2  # the standard copy: a second one would clash in protobuf's pool

from .pb import auth_pb2, control_pb2, control_pb2_grpc, fsutil_types_pb2, secrets_pb2
from .transport import TLSConfig, docker_upgrade, open_channel

Stat = fsutil_types_pb2.Stat
Packet = fsutil_types_pb2.Packet

CHUNK_BYTES = 256 * 1024

# Go's os.FileMode bits: fsutil puts uint32(fi.Mode()) on the wire, not st_mode.
_GO_DIR = 1 << 31
_GO_SYMLINK = 1 << 27
_GO_DEVICE = 1 << 26
_GO_PIPE = 1 << 25
_GO_SOCKET = 1 << 24
_GO_SETUID = 1 << 23
_GO_SETGID = 1 << 22
_GO_CHARDEV = 1 << 21
_GO_STICKY = 1 << 20
_GO_IRREGULAR = 1 << 19
_GO_TYPE = _GO_DIR | _GO_SYMLINK | _GO_PIPE | _GO_SOCKET | _GO_DEVICE | _GO_CHARDEV | _GO_IRREGULAR
_GO_KIND = {
    st.S_IFDIR: _GO_DIR,
    st.S_IFLNK: _GO_SYMLINK,
    st.S_IFBLK: _GO_DEVICE,
    st.S_IFCHR: _GO_DEVICE | _GO_CHARDEV,
    st.S_IFIFO: _GO_PIPE,
    st.S_IFSOCK: _GO_SOCKET,
}

HEALTH_CHECK = "/grpc.health.v1.Health/Check"
FILESYNC_DIFFCOPY = "/moby.filesync.v1.FileSync/DiffCopy"
SECRETS_GET = "/moby.buildkit.secrets.v1.Secrets/GetSecret"
AUTH_CREDENTIALS = "/moby.filesync.v1.Auth/Credentials"


def go_file_mode(st_mode: int) -> int:
    """Translate st_mode to Go's os.FileMode, the encoding the receiver expects."""
    mode = (st_mode & 0o777) | _GO_KIND.get(st.S_IFMT(st_mode), 0)
    if st_mode & st.S_ISUID:
        mode |= _GO_SETUID
    if st_mode & st.S_ISGID:
        mode |= _GO_SETGID
    if st_mode & st.S_ISVTX:
        mode |= _GO_STICKY
    return mode


def _clean(path: str) -> str:
    """Go's filepath.Clean for relative slash paths (no POSIX '//' special case)."""
    cleaned = posixpath.normpath(path) if path else "."
    return "/" + cleaned.lstrip("/") if cleaned.startswith("/") else cleaned


def _join(*parts: str) -> str:
    return _clean("/".join(p for p in parts if p))


@lru_cache(maxsize=1024)
def _glob(pattern: str) -> re.Pattern[str] | None:
    """Compile Go's filepath.Match syntax; None for a malformed pattern (it matches nothing)."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\":
            i += 1
            if i == n:
                return None
            out.append(re.escape(pattern[i]))
        elif c == "[":
            i += 1
            negate = i < n and pattern[i] == "^"
            i += negate
            body: list[str] = []
            while i < n and (pattern[i] != "]" or not body):
                if pattern[i] == "\\":
                    i += 1
                    if i == n:
                        return None
                    body.append(re.escape(pattern[i]))
                elif pattern[i] == "-" and body and i + 1 < n and pattern[i + 1] != "]":
                    body.append("-")
                else:
                    body.append(re.escape(pattern[i]))
                i += 1
            if i == n or not body:
                return None
            out.append("[" + ("^" if negate else "") + "".join(body) + "]")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z", re.S)


def _glob_match(pattern: str, name: str) -> bool:
    regex = _glob(pattern)
    return bool(regex and regex.match(name))


def _has_wildcards(text: str) -> bool:
    return any(c in text for c in "*?[\\")


def _match_prefix(pattern: str, name: str) -> tuple[bool, bool]:
    """fsutil's include test: a directory matches a longer pattern partially (its contents may match)."""
    depth = name.count("/")
    partial = pattern.count("/") > depth
    if partial:
        pattern = "/".join(pattern.split("/")[: depth + 1])
    return _glob_match(pattern, name), partial


class _ExcludePattern:
    def __init__(self, text: str):
        self.exclusion = text.startswith("!")
        if self.exclusion:
            text = text[1:]
            if not text:
                raise ValueError('illegal exclusion pattern: "!"')
        self.text = text
        self.dirs = len(text.split("/"))
        self.regex = re.compile(self._translate(text))

    @staticmethod
    def _translate(pattern: str) -> str:
        """Docker's fileutils pattern -> regex: `*` within a name, `**` across names, `\\` escapes."""
        out = ["^"]
        i, n = 0, len(pattern)
        while i < n:
            c = pattern[i]
            if c == "*":
                if i + 1 < n and pattern[i + 1] == "*":
                    i += 1
                    if i + 1 < n and pattern[i + 1] == "/":
                        i += 1
                    out.append(".*" if i + 1 == n else "(.*/)?")
                else:
                    out.append("[^/]*")
            elif c == "?":
                out.append("[^/]")
            elif c in ".$":
                out.append("\\" + c)
            elif c == "\\":
                if i + 1 < n:
                    i += 1
                    out.append(re.escape(pattern[i]))
                else:
                    out.append("\\\\")
            else:
                out.append(c)
            i += 1
        out.append(r"\Z")
        return "".join(out)


class ExcludeMatcher:
    """`.dockerignore` semantics: patterns apply in order, the last match wins, `!` re-includes."""

    def __init__(self, patterns: Iterable[str]):
        self.patterns = [_ExcludePattern(_clean(p.strip())) for p in patterns if p.strip()]
        self.has_exclusions = any(p.exclusion for p in self.patterns)

    def matches(self, path: str) -> bool:
        parent = posixpath.dirname(path) or "."
        parent_dirs = parent.split("/")
        matched = False
        for pattern in self.patterns:
            hit = pattern.regex.match(path) is not None
            if not hit and parent != "." and pattern.dirs <= len(parent_dirs):
                hit = pattern.regex.match("/".join(parent_dirs[: pattern.dirs])) is not None
            if hit:
                matched = not pattern.exclusion
        return matched

    def may_reinclude_below(self, directory: str) -> bool:
        """An excluded directory is still walked when a `!` pattern names something inside it."""
        prefix = directory + "/"
        return any(p.exclusion and (p.text + "/").startswith(prefix) for p in self.patterns)


def follow_links(root: str, paths: Iterable[str]) -> list[str]:
    """fsutil's FollowPaths: each path plus every symlink on the way and its target, relative to root."""
    resolved: set[str] = set()

    def read_link(rel: str, wildcard: bool) -> list[str] | None:
        full = os.path.join(root, rel)
        base = posixpath.basename(rel)
        if wildcard and _has_wildcards(base):
            parent = posixpath.dirname(rel)
            try:
                names = sorted(os.listdir(os.path.join(root, parent)))
            except FileNotFoundError:
                return None
            found: list[str] = []
            for name in names:
                if _glob_match(base, name):
                    found += read_link(_join(parent, name), False) or []
            return found or None
        try:
            if not st.S_ISLNK(os.lstat(full).st_mode):
                return None
            link = _clean(os.readlink(full))
        except (FileNotFoundError, NotADirectoryError):
            return None
        return [link if link.startswith("/") else _clean("/" + _join(posixpath.dirname(rel), link))]

    def append(path: str, depth: int) -> None:
        if depth > 255:
            raise OSError(f"too many levels of symbolic links following {path}")
        rest = _clean(path.lstrip("/"))
        current = "."
        while True:
            head, _, rest = rest.partition("/")
            current = _join(current, head)
            targets = read_link(current, True)
            if (not rest or targets is not None) and current in resolved:
                return
            if targets is not None:
                resolved.add(current)
                for target in targets:
                    append(_join(target, rest), depth + 1)
                return
            if not rest:
                resolved.add(current)
                return

    for path in paths:
        append(path, 0)
    return sorted(resolved)


def _dedupe(paths: list[str]) -> list[str] | None:
    out: list[str] = []
    last = ""
    for path in sorted(set(paths)):
        if path == ".":
            return None
        if last and path.startswith(last + "/"):
            continue
        out.append(path)
        last = path
    return out


def _xattrs(path: str) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    found = {}
    for name in names:
        try:
            found[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
    return found


def walk(
    root: str | os.PathLike[str],
    includes: Iterable[str] | None = None,
    excludes: Iterable[str] | None = None,
    follow_paths: Iterable[str] | None = None,
    owner: tuple[int, int] | None = None,
) -> Iterator[Stat]:
    """List a directory as fsutil's sender does: depth-first, names in byte order, filters applied."""
    base = os.path.realpath(root)
    include = [_clean(p) for p in includes] if includes is not None else None
    if follow_paths is not None:
        targets = follow_links(base, list(follow_paths))
        include = _dedupe((include or []) + targets)
    matcher = ExcludeMatcher(excludes) if excludes is not None else None
    seen_inodes: dict[int, str] = {}
    last_included_dir = ""

    def included(rel: str, is_dir: bool) -> bool:
        nonlocal last_included_dir
        if include is None or (last_included_dir and rel.startswith(last_included_dir + "/")):
            return True
        matched, partial = False, True
        for pattern in include:
            hit, hit_partial = _match_prefix(pattern, rel)
            if hit:
                matched = True
                if not hit_partial:
                    partial = False
                    break
        if matched and not partial and is_dir:
            last_included_dir = rel
        return matched

    def excluded(rel: str, is_dir: bool) -> bool:
        if matcher is None or not matcher.matches(rel):
            return False
        return not (is_dir and matcher.has_exclusions and matcher.may_reinclude_below(rel))

    def make_stat(full: str, rel: str, info: os.stat_result) -> Stat:
        stat = Stat(path=rel, mode=go_file_mode(info.st_mode), modTime=info.st_mtime_ns)
        stat.uid, stat.gid = owner if owner is not None else (info.st_uid, info.st_gid)
        if not st.S_ISDIR(info.st_mode):
            stat.size = info.st_size
            if st.S_ISBLK(info.st_mode) or st.S_ISCHR(info.st_mode):
                stat.devmajor, stat.devminor = os.major(info.st_rdev), os.minor(info.st_rdev)
            if st.S_ISLNK(info.st_mode):
                stat.linkname = os.readlink(full)
            elif info.st_nlink > 1 and info.st_ino in seen_inodes:
                stat.linkname, stat.size = seen_inodes[info.st_ino], 0
            else:
                seen_inodes.setdefault(info.st_ino, rel)
        stat.xattrs.update(_xattrs(full))
        return stat

    def visit(directory: str, rel_dir: str) -> Iterator[Stat]:
        try:
            names = sorted(os.listdir(directory))
        except FileNotFoundError:
            return
        for name in names:
            full = os.path.join(directory, name)
            rel = f"{rel_dir}/{name}" if rel_dir else name
            try:
                info = os.lstat(full)
            except FileNotFoundError:
                continue
            is_dir = st.S_ISDIR(info.st_mode)
            if not included(rel, is_dir) or excluded(rel, is_dir):
                continue
            yield make_stat(full, rel, info)
            if is_dir:
                yield from visit(full, rel)

    yield from visit(base, "")


class _Status(Exception):
    """A non-OK gRPC status a session service answers with."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


NOT_FOUND, INVALID_ARGUMENT, UNKNOWN, UNIMPLEMENTED = 5, 3, 2, 12
_WAIT = None  # a stream handler yields this when it needs the peer's next message


def _frame(message: Any) -> bytes:
    """gRPC length-prefixed message framing (uncompressed)."""
    data = message.SerializeToString()
    return b"\0" + len(data).to_bytes(4, "big") + data


def _file_data(path: str, file_id: int) -> Iterator[bytes]:
    """A file's bytes as DATA packets; an empty DATA ends it (also for a file that vanished)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        fd = -1
    if fd >= 0:
        with os.fdopen(fd, "rb", buffering=0) as f:
            while chunk := f.read(CHUNK_BYTES):
                yield _frame(Packet(type=Packet.PACKET_DATA, ID=file_id, data=chunk))
    yield _frame(Packet(type=Packet.PACKET_DATA, ID=file_id))


class _Call:
    """One gRPC call on the connection: request messages in, framed response bytes out."""

    def __init__(self, metadata: dict[str, list[str]]):
        self.metadata = metadata
        self.inbox: deque[bytes] = deque()
        self.remote_closed = False
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= 5:
            size = int.from_bytes(self._buffer[1:5], "big")
            if len(self._buffer) < 5 + size:
                return
            self.inbox.append(bytes(self._buffer[5 : 5 + size]))
            del self._buffer[: 5 + size]

    def next_request(self) -> Generator[None, None, bytes | None]:
        """Yield _WAIT until a request message (or the end of requests) is there; None at the end."""
        while not self.inbox and not self.remote_closed:
            yield _WAIT
        return self.inbox.popleft() if self.inbox else None


Handler = Callable[[_Call], Iterator[bytes | None]]


class _Services:
    """The services a session offers, as cooperative handlers: each yields framed responses or _WAIT."""

    def __init__(
        self,
        dirs: Mapping[str, str],
        secrets: Mapping[str, bytes],
        credentials: Mapping[str, tuple[str, str]],
        owner: tuple[int, int] | None,
    ):
        self._dirs = dirs
        self._secrets = secrets
        self._credentials = credentials
        self._owner = owner
        self.handlers: dict[str, Handler] = {
            HEALTH_CHECK: self._unary(self._health),
            SECRETS_GET: self._unary(self._secret),
            AUTH_CREDENTIALS: self._unary(self._registry_credentials),
            FILESYNC_DIFFCOPY: self._diffcopy,
        }

    @staticmethod
    def _unary(fn: Callable[[bytes], Any]) -> Handler:
        def handle(call: _Call) -> Iterator[bytes | None]:
            request = yield from call.next_request()
            yield _frame(fn(request or b""))

        return handle

    def _health(self, request: bytes) -> health_pb2.HealthCheckResponse:
        """Serving while the connection is up: the daemon drops the session when a check fails."""
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    def _secret(self, request: bytes) -> secrets_pb2.GetSecretResponse:
        name = secrets_pb2.GetSecretRequest.FromString(request).ID
        value = self._secrets.get(name)
        if value is None:
            raise _Status(NOT_FOUND, f"secret {name} not found")
        return secrets_pb2.GetSecretResponse(data=value)

    def _registry_credentials(self, request: bytes) -> auth_pb2.CredentialsResponse:
        """Credentials by registry host; an unknown host gets an empty (anonymous) answer."""
        found = self._credentials.get(auth_pb2.CredentialsRequest.FromString(request).Host)
        if found is None:
            return auth_pb2.CredentialsResponse()
        return auth_pb2.CredentialsResponse(Username=found[0], Secret=found[1])

    def _diffcopy(self, call: _Call) -> Iterator[bytes | None]:
        """fsutil's sender: STAT listing and an empty STAT, DATA for each REQ, FIN to answer FIN."""
        name = (call.metadata.get("dir-name") or [""])[0]
        root = self._dirs.get(name)
        if root is None:
            raise _Status(NOT_FOUND, f"no access allowed to dir {name!r}")
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
                if not stat.mode & _GO_TYPE:
                    files[index] = stat.path
                yield _frame(Packet(type=Packet.PACKET_STAT, stat=stat))
        except (OSError, ValueError, re.error) as exc:
            yield _frame(Packet(type=Packet.PACKET_ERR, data=str(exc).encode()))
            raise _Status(UNKNOWN, str(exc)) from exc
        yield _frame(Packet(type=Packet.PACKET_STAT))
        while (request := (yield from call.next_request())) is not None:
            packet = Packet.FromString(request)
            if packet.type == Packet.PACKET_REQ:
                path = files.pop(packet.ID, None)
                if path is None:
                    raise _Status(INVALID_ARGUMENT, f"invalid file id {packet.ID}")
                yield from _file_data(os.path.join(root, path), packet.ID)
            elif packet.type == Packet.PACKET_FIN:
                yield _frame(Packet(type=Packet.PACKET_FIN))
                return
            elif packet.type == Packet.PACKET_ERR:
                raise _Status(UNKNOWN, f"error from receiver: {packet.data.decode(errors='replace')}")


class _Stream:
    def __init__(self, call: _Call, handler: Iterator[bytes | None]):
        self.call = call
        self.handler = handler
        self.out = bytearray()
        self.waiting = False
        self.trailers: list[tuple[str, str]] | None = None


_BATCH_BYTES = 256 * 1024
_RESPONSE_HEADERS = [(":status", "200"), ("content-type", "application/grpc")]


def _status(code: int, message: str = "") -> list[tuple[str, str]]:
    trailers = [("grpc-status", str(code))]
    if message:
        trailers.append(("grpc-message", quote(message, safe=" !\"#$&'()*+,-./:;<=>?@[\\]^_`{|}~")))
    return trailers


class _Connection:
    """gRPC server on one already-connected socket whose peer is the HTTP/2 client: no listener, no copies."""

    def __init__(self, sock: socket.socket, services: _Services, stop: socket.socket):
        self._sock = sock
        self._services = services
        self._stop = stop
        self._h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        self._streams: dict[int, _Stream] = {}
        self._closed = False

    def serve(self) -> None:
        self._h2.initiate_connection()
        self._flush()
        ready = False
        with selectors.DefaultSelector() as sel:
            sel.register(self._sock, selectors.EVENT_READ)
            sel.register(self._stop, selectors.EVENT_READ)
            while not self._closed:
                for key, _ in sel.select(timeout=0 if ready else None):
                    if key.fileobj is self._stop:
                        return
                    try:
                        data = self._sock.recv(CHUNK_BYTES)
                    except OSError:
                        return
                    if not data:
                        return
                    try:
                        self._receive(data)
                    except h2.exceptions.ProtocolError:
                        return
                ready = self._pump()
                self._flush()

    def _flush(self) -> None:
        data = self._h2.data_to_send()
        if data:
            try:
                self._sock.sendall(data)
            except OSError:
                self._closed = True

    def _receive(self, data: bytes) -> None:
        for event in self._h2.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                self._open(event.stream_id, [(str(name), str(value)) for name, value in event.headers or []])
            elif isinstance(event, h2.events.DataReceived):
                self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                stream = self._streams.get(event.stream_id)
                if stream is not None:
                    stream.call.feed(event.data or b"")
                    stream.waiting = False
            elif isinstance(event, h2.events.StreamEnded):
                stream = self._streams.get(event.stream_id)
                if stream is not None:
                    stream.call.remote_closed = True
                    stream.waiting = False
            elif isinstance(event, h2.events.StreamReset):
                self._streams.pop(event.stream_id, None)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self._closed = True

    def _open(self, stream_id: int, headers: Iterable[tuple[str, str]]) -> None:
        path, metadata = "", dict[str, list[str]]()
        for name, value in headers:
            if name == ":path":
                path = value
            elif not name.startswith(":"):
                metadata.setdefault(name, []).append(value)
        handler = self._services.handlers.get(path)
        if handler is None:
            self._h2.send_headers(
                stream_id, _RESPONSE_HEADERS + _status(UNIMPLEMENTED, f"unknown method {path}"), end_stream=True
            )
            return
        call = _Call(metadata)
        self._streams[stream_id] = _Stream(call, handler(call))
        self._h2.send_headers(stream_id, _RESPONSE_HEADERS)

    def _pump(self) -> bool:
        """Move handler output into HTTP/2 frames as far as the peer's windows allow; True if more could go now."""
        ready = False
        for stream_id, stream in list(self._streams.items()):
            budget = _BATCH_BYTES
            while budget > 0:
                if stream.out:
                    window = min(self._h2.local_flow_control_window(stream_id), self._h2.max_outbound_frame_size)
                    if window <= 0:
                        break
                    chunk = bytes(stream.out[:window])
                    del stream.out[:window]
                    self._h2.send_data(stream_id, chunk)
                    budget -= len(chunk)
                elif stream.trailers is not None:
                    self._h2.send_headers(stream_id, stream.trailers, end_stream=True)
                    del self._streams[stream_id]
                    break
                elif stream.waiting:
                    break
                else:
                    self._produce(stream)
            else:
                ready = True
            self._flush()
        return ready

    def _produce(self, stream: _Stream) -> None:
        """Run the handler until it has a batch of output, must wait, or ends."""
        try:
            while len(stream.out) < _BATCH_BYTES:
                item = next(stream.handler)
                if item is _WAIT:
                    stream.waiting = True
                    return
                stream.out += item
        except StopIteration:
            stream.trailers = _status(0)
        except _Status as exc:
            stream.trailers = _status(exc.code, exc.message)
        except Exception as exc:  # a broken call must not take the session's other calls down
            stream.trailers = _status(UNKNOWN, f"{type(exc).__name__}: {exc}")


class Session:
    """Serve a session to BuildKit over a connection the daemon treats as its gRPC client side."""

    def __init__(
        self,
        address: str,
        tls: TLSConfig | None = None,
        *,
        local_dirs: Mapping[str, str | os.PathLike[str]] | None = None,
        secrets: Mapping[str, str | bytes] | None = None,
        registry_auth: Mapping[str, tuple[str, str]] | None = None,
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
            dict(registry_auth or {}),
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
        methods = [HEALTH_CHECK, SECRETS_GET, AUTH_CREDENTIALS]
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
        _Connection(sock, self._services, self._stop[0]).serve()

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
