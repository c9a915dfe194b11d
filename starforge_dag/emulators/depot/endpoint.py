"""One build's machine: an mTLS gRPC server of its own, in front of the local dockerd's BuildKit."""

from __future__ import annotations

import threading
from concurrent import futures
from typing import TYPE_CHECKING, Any

import grpc

from ...buildkit.transport import CHANNEL_OPTIONS, open_channel
from .certs import make_certs
from .control import ControlProxy
from .session import SessionBridge

if TYPE_CHECKING:
    from .server import DepotEmulator


class Endpoint:
    """One build's BuildKit machine: an mTLS gRPC server proxying Control to dockerd."""

    def __init__(self, emulator: DepotEmulator, build_id: str):
        self.emulator = emulator
        self.build_id = build_id
        self.server_name = f"buildkit-{build_id}.depot-emulator.local"
        self.certs = make_certs(self.server_name, f"build-{build_id}")
        self._lock = threading.Lock()
        self._calls: set[Any] = set()
        self._closed = False
        self._step_started: dict[str, threading.Event] = {}
        self._sessions: dict[str, SessionBridge] = {}
        self.upstream = open_channel(emulator.docker_addr)
        self._executor = futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix=f"depot-endpoint-{build_id}")
        self.server = grpc.server(self._executor, handlers=[ControlProxy(self)], options=CHANNEL_OPTIONS)
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

    def add_session(self, bridge: SessionBridge) -> bool:
        with self._lock:
            if self._closed:
                return False
            self._sessions[bridge.id] = bridge
            return True

    def remove_session(self, bridge: SessionBridge) -> None:
        with self._lock:
            if self._sessions.get(bridge.id) is bridge:
                del self._sessions[bridge.id]

    def session(self, session_id: str) -> SessionBridge | None:
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
