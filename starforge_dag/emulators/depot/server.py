"""The Depot emulator's server: its state, the gRPC server of Depot's API, and the expiry of silent builds."""

from __future__ import annotations

import copy
import datetime as dt
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from concurrent import futures
from typing import Any, Self

import grpc

from ...buildkit.registry import RegistryAuth
from ...core.models import ImageRef
from ...depot.pb import (
    depot_build_pb2_grpc,
    depot_build_record_pb2_grpc,
    depot_buildkit_pb2_grpc,
    depot_project_pb2_grpc,
)
from .buildkit_service import BuildKitService
from .builds import BuildRecordService, BuildService
from .endpoint import Endpoint
from .faults import Faults
from .projects import ProjectService
from .records import BuildRecord, ProjectRecord, SolveRecord, StepRecord, now


class DepotEmulator:
    """Depot's API on a local port, with real builds behind its endpoints; see the package docstring."""

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
        self._endpoints: dict[str, Endpoint] = {}
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
        depot_project_pb2_grpc.add_ProjectServiceServicer_to_server(ProjectService(self), server)
        depot_build_pb2_grpc.add_BuildServiceServicer_to_server(BuildService(self), server)
        depot_build_record_pb2_grpc.add_BuildServiceServicer_to_server(BuildRecordService(self), server)
        depot_buildkit_pb2_grpc.add_BuildKitServiceServicer_to_server(BuildKitService(self), server)
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

    def _endpoint_for(self, build_id: str, context: grpc.ServicerContext) -> Endpoint:
        with self._cond:
            build = self._builds[build_id]
            endpoint = self._endpoints.get(build_id)
            if build.ended or build.endpoint_dropped or self._stopping.is_set():
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"build {build_id} has no machine any more")
            if endpoint is not None:
                return endpoint
        endpoint = Endpoint(self, build_id)
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
            build.endpoint_at = build.endpoint_at or now()
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
