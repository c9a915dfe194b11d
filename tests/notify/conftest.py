"""Notification fixtures: a real HTTP receiver on 127.0.0.1 whose answers a test scripts, and an app whose
workspace has an endpoint pointing at it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from starforge_dag.api import create_app
from starforge_dag.core.models import App
from starforge_dag.settings import Settings
from starforge_dag.store import BuildStore

API_TOKEN = "api-token-for-tests"


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


@pytest.fixture
def receiver() -> Iterator[Receiver]:
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
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def loopback_settings(settings: Settings) -> Settings:
    """The tests' settings with loopback endpoints allowed (the receiver is on 127.0.0.1)."""
    return settings.model_copy(update={"webhook_allowed_cidrs": "127.0.0.0/8"})


@pytest.fixture
def platform(loopback_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(loopback_settings), headers={"Authorization": f"Bearer {API_TOKEN}"}) as client:
        yield client


@pytest.fixture
def web(store: BuildStore) -> App:
    return store.add_app("acme", "web", "https://github.com/acme/web.git", "main")
