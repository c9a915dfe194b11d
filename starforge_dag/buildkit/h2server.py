"""A gRPC server on one already-connected HTTP/2 socket whose peer is the client (a session's daemon side).

One thread serves a connection: handlers run cooperatively, and many small messages (a STAT per
file) share one DATA frame, which a gRPC server library would send one by one. An unknown method
answers UNIMPLEMENTED; a protocol error ends the connection quietly.
"""

from __future__ import annotations

import selectors
import socket
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

import h2.config
import h2.connection
import h2.events
import h2.exceptions

RECV_BYTES = 256 * 1024


class CallError(Exception):
    """A non-OK gRPC status a session service answers with."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


UNKNOWN, INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, UNIMPLEMENTED, UNAVAILABLE = 2, 3, 5, 7, 12, 14
WAIT = None  # a stream handler yields this when it needs the peer's next message


def frame(message: Any) -> bytes:
    """gRPC length-prefixed message framing (uncompressed)."""
    data = message.SerializeToString()
    return b"\0" + len(data).to_bytes(4, "big") + data


class Call:
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
        """Yield WAIT until a request message (or the end of requests) is there; None at the end."""
        while not self.inbox and not self.remote_closed:
            yield WAIT
        return self.inbox.popleft() if self.inbox else None


Handler = Callable[[Call], Iterator[bytes | None]]


class Stream:
    def __init__(self, call: Call, handler: Iterator[bytes | None]):
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


class Connection:
    """gRPC server on one already-connected socket whose peer is the HTTP/2 client: no listener, no copies."""

    def __init__(self, sock: socket.socket, handlers: Mapping[str, Handler], stop: socket.socket):
        self._sock = sock
        self._handlers = handlers
        self._stop = stop
        self._h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        self._streams: dict[int, Stream] = {}
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
                        data = self._sock.recv(RECV_BYTES)
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
        """Start a call; headers are str pairs (the connection decodes them as UTF-8)."""
        path, metadata = "", dict[str, list[str]]()
        for name, value in headers:
            if name == ":path":
                path = value
            elif not name.startswith(":"):
                metadata.setdefault(name, []).append(value)
        handler = self._handlers.get(path)
        if handler is None:
            self._h2.send_headers(
                stream_id, _RESPONSE_HEADERS + _status(UNIMPLEMENTED, f"unknown method {path}"), end_stream=True
            )
            return
        call = Call(metadata)
        self._streams[stream_id] = Stream(call, handler(call))
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

    def _produce(self, stream: Stream) -> None:
        """Run the handler until it has a batch of output, must wait, or ends."""
        try:
            while len(stream.out) < _BATCH_BYTES:
                item = next(stream.handler)
                if item is WAIT:
                    stream.waiting = True
                    return
                stream.out += item
        except StopIteration:
            stream.trailers = _status(0)
        except CallError as exc:
            stream.trailers = _status(exc.code, exc.message)
        except Exception as exc:  # a broken call must not take the session's other calls down
            stream.trailers = _status(UNKNOWN, f"{type(exc).__name__}: {exc}")
