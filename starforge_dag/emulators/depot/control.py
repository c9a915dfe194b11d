"""A build machine's Control API: calls forwarded as raw bytes to dockerd, sessions ended here, Solve intercepted."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import grpc

from ...buildkit.pb import control_pb2
from .rpc import forwarded_metadata, identity, remaining
from .session import CHUNK, SessionBridge, feed
from .solve import Solver

if TYPE_CHECKING:
    from .endpoint import Endpoint

CONTROL = "/moby.buildkit.v1.Control/"
SOLVE = CONTROL + "Solve"
STATUS = CONTROL + "Status"
SESSION = CONTROL + "Session"
_UNARY_STREAM = {"Status", "Prune", "ListenBuildHistory"}


def _machine_not_ready(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
    context.abort(grpc.StatusCode.UNAVAILABLE, "buildkitd is not ready yet")
    yield b""  # unreachable: makes this a generator, as a stream handler must be


class ControlProxy(grpc.GenericRpcHandler):
    """Forwards BuildKit's Control calls as raw bytes; Solve is rewritten for dockerd's exporter."""

    def __init__(self, endpoint: Endpoint):
        self.endpoint = endpoint
        self.solver = Solver(endpoint, lambda raw, context, metadata: self.unary(SOLVE, raw, context, metadata))

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        if not method.startswith(CONTROL):
            return None
        name = method.removeprefix(CONTROL)
        unavailable, _ = self.endpoint.emulator._count_call(f"Control.{name}")
        if unavailable:
            return grpc.stream_stream_rpc_method_handler(_machine_not_ready)
        if method == SOLVE:
            return grpc.unary_unary_rpc_method_handler(self.solver.solve)
        if method == SESSION:
            return grpc.stream_stream_rpc_method_handler(self._session)
        if name in _UNARY_STREAM:
            return grpc.unary_stream_rpc_method_handler(lambda req, ctx: self._unary_stream(method, req, ctx))
        return grpc.unary_unary_rpc_method_handler(lambda req, ctx: self.unary(method, req, ctx))

    def _start(self, call: Any, context: grpc.ServicerContext) -> None:
        if not self.endpoint.track(call):
            call.cancel()
            context.abort(grpc.StatusCode.UNAVAILABLE, "endpoint closed")
        context.add_callback(call.cancel)

    def unary(self, method: str, request: bytes, context: grpc.ServicerContext, metadata: Any = None) -> bytes:
        """`request` sent on to dockerd as the caller's call, cut when the machine goes away."""
        stub = self.endpoint.upstream.unary_unary(method, request_serializer=identity, response_deserializer=identity)
        call = stub.future(request, metadata=metadata or forwarded_metadata(context), timeout=remaining(context))
        self._start(call, context)
        try:
            return call.result()
        except grpc.RpcError as exc:
            context.abort(exc.code(), exc.details() or "")
            raise
        finally:
            self.endpoint.untrack(call)

    def _unary_stream(self, method: str, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        stub = self.endpoint.upstream.unary_stream(method, request_serializer=identity, response_deserializer=identity)
        call = stub(request, metadata=forwarded_metadata(context), timeout=remaining(context))
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
        bridge = SessionBridge(self.endpoint.emulator.docker_sock, context.invocation_metadata())
        if not bridge.id:
            bridge.close()
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "session needs x-docker-expose-session-uuid")
        if not self.endpoint.add_session(bridge):
            bridge.close()
            context.abort(grpc.StatusCode.UNAVAILABLE, "endpoint closed")
        context.add_callback(bridge.close)
        try:
            conn = bridge.connect()
            threading.Thread(target=feed, args=(requests, conn), name="depot-session-feed", daemon=True).start()
            bridge.attach_daemon()
            while True:
                data = conn.recv(CHUNK)
                if not data:
                    return
                yield control_pb2.BytesMessage(data=data).SerializeToString()
        except OSError as exc:
            if context.is_active():
                context.abort(grpc.StatusCode.UNAVAILABLE, f"session lost: {exc}")
        finally:
            self.endpoint.remove_session(bridge)
            bridge.close()

    def _observe_status(self, ref: str, message: bytes) -> None:
        try:
            status = control_pb2.StatusResponse.FromString(message)
        except Exception:
            return
        if any(v.HasField("started") for v in status.vertexes):
            self.endpoint.step_started(ref).set()
        self.endpoint.emulator._record_status(self.endpoint.build_id, status)
