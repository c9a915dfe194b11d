"""A webhook receiver for tests: a real HTTP server on 127.0.0.1 whose answers the test scripts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int | None = None  # the status sent back; None when it came after the sender gave up waiting


@dataclass
class Receiver:
    """Answers each POST with the next scripted step (`503`, `("slow", seconds)`, …), then 204 once the script ends."""

    url: str = ""
    script: list[int | tuple[str, float]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def next_step(self) -> int | tuple[str, float]:
        with self.lock:
            return self.script.pop(0) if self.script else 204

    def record(self, item: Received) -> None:
        with self.arrived:
            self.received.append(item)
            self.arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.received) >= count, timeout), self.received


@contextmanager
def serve_receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            item = Received(dict(self.headers.items()), self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            step = state.next_step()
            status, late = (step, False) if isinstance(step, int) else (200, step[0] == "late")
            state.record(item)  # in the order requests arrive
            if not isinstance(step, int):
                time.sleep(step[1])
            try:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                late = True
            item.answered = None if late else status

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/hooks/starforge"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
