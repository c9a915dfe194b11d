"""Depot's API over gRPC: projects, builds, and the builder endpoint of a build.

Every call carries `authorization: Bearer …` as explicit metadata (grpcio's call credentials
need TLS; the emulator speaks plaintext). The organization token is used for projects and
CreateBuild; the build token for everything after it, as Depot's CLI does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import urlsplit

import grpc

from ..core.errors import BuildError, PermanentBuildError, TransientBuildError
from ..core.models import DepotProject
from . import _pb
from .config import TOKEN_SETTING

PLATFORMS: dict[str, Any] = {"amd64": 1, "arm64": 2}
_TRANSIENT = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
_AUTH = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}


@dataclass(frozen=True)
class DepotBuildHandle:
    """A created Depot build; `build_token` authorizes its endpoint calls and is never logged."""

    build_id: str
    project_id: str
    build_token: str = field(repr=False)


@dataclass(frozen=True)
class BuilderEndpoint:
    """An active builder: `tcp://host:port`, plus mTLS material (PEM) when Depot hands it out."""

    endpoint: str
    server_name: str | None = None
    ca_pem: bytes | None = field(default=None, repr=False)
    cert_pem: bytes | None = field(default=None, repr=False)
    key_pem: bytes | None = field(default=None, repr=False)


def depot_error(exc: grpc.RpcError, action: str) -> BuildError:
    """Classify a failed Depot call: outages are transient, a refused token names its setting."""
    code: grpc.StatusCode | None = exc.code() if hasattr(exc, "code") else None
    details = (exc.details() if hasattr(exc, "details") else None) or (code.name if code else str(exc))
    if code in _TRANSIENT:
        return TransientBuildError(f"Depot unavailable during {action}: {details}", step=f"depot {action}")
    if code in _AUTH:
        return PermanentBuildError(
            f"Depot refused {action} ({code.name if code else '?'}): check {TOKEN_SETTING}: {details}",
            step=f"depot {action}",
        )
    name = code.name if code else "unknown"
    return PermanentBuildError(f"Depot {action} failed ({name}): {details}", step=f"depot {action}")


def _target(api_url: str) -> tuple[str, bool]:
    """gRPC target and whether it is TLS, from an https:// or http://host:port URL."""
    parts = urlsplit(api_url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"Depot API URL {api_url!r} must be https://host or http://host:port")
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else None)
    if port is None:
        raise ValueError(f"Depot API URL {api_url!r} needs a port with http://")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port}", secure


class HealthReporter:
    """Reports a build's health every `interval_s` on a client stream until stopped.

    A stream broken by an outage (UNAVAILABLE) is reopened, a few times, so one hiccup does not
    cost the build. If Depot ends the stream otherwise while we still report (the build expired
    or was taken away), `.lost` holds the reason and `on_lost` is called once, so the solve stops.
    """

    REOPENS = 5

    def __init__(
        self,
        stub: Any,
        request: Any,
        metadata: list[tuple[str, str]],
        interval_s: float,
        on_lost: Callable[[str], None] | None = None,
    ):
        self._stub = stub
        self._request = request
        self._metadata = metadata
        self._interval_s = interval_s
        self._on_lost = on_lost
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._call: Any = None
        self._reopens = 0
        self.reports = 0
        self.lost: str | None = None

    def _requests(self) -> Iterator[Any]:
        while True:
            self.reports += 1
            yield self._request
            if self._stop.wait(self._interval_s):
                return

    def _open(self) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            self._call = self._stub.ReportHealth.future(self._requests(), metadata=self._metadata)
        self._call.add_done_callback(self._done)

    def _done(self, call: Any) -> None:
        if self._stop.is_set() or call.cancelled():
            return
        exc = call.exception()
        if exc is not None and exc.code() == grpc.StatusCode.UNAVAILABLE and self._reopens < self.REOPENS:
            self._reopens += 1
            timer = threading.Timer(min(self._interval_s, 0.5), self._open)
            timer.daemon = True
            timer.start()
            return
        self.lost = f"Depot stopped accepting health reports: {exc.details() if exc else 'stream ended'}"
        if self._on_lost is not None:
            self._on_lost(self.lost)

    def start(self) -> Self:
        self._open()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """End the stream cleanly so Depot sees the last report, not a dropped client."""
        with self._lock:
            self._stop.set()
            call = self._call
        if call is None:
            return
        try:
            call.result(timeout=timeout_s)
        except (grpc.RpcError, grpc.FutureTimeoutError, grpc.FutureCancelledError):
            call.cancel()


class DepotAPI:
    """A connection to Depot's API; open it per build (`with DepotAPI(...) as api:`)."""

    def __init__(self, api_url: str, token: str, *, timeout_s: float = 30.0):
        if not token:
            raise PermanentBuildError(f"no Depot token: set {TOKEN_SETTING}", step="depot")
        target, secure = _target(api_url)
        self.api_url = api_url
        self._token = token
        self._timeout_s = timeout_s
        options = [("grpc.enable_http_proxy", 0)] if not secure else []
        self._channel = (
            grpc.secure_channel(target, grpc.ssl_channel_credentials(), options=options)
            if secure
            else grpc.insecure_channel(target, options=options)
        )
        self._projects = _pb.project_grpc.ProjectServiceStub(self._channel)
        self._builds = _pb.build_grpc.BuildServiceStub(self._channel)
        self._buildkit = _pb.buildkit_grpc.BuildKitServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _bearer(token: str) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {token}")]

    def _org(self) -> list[tuple[str, str]]:
        return self._bearer(self._token)

    def _call(self, action: str, method: Any, request: Any, metadata: list[tuple[str, str]]) -> Any:
        try:
            return method(request, metadata=metadata, timeout=self._timeout_s)
        except grpc.RpcError as exc:
            raise depot_error(exc, action) from None

    @staticmethod
    def _project(p: Any) -> DepotProject:
        org = p.organization_id if p.organization_id else None
        return DepotProject(project_id=p.project_id, name=p.name, region=p.region_id, organization_id=org)

    def create_project(
        self, name: str, region: str, *, keep_gb: int | None = None, keep_days: int | None = None
    ) -> DepotProject:
        request = _pb.project.CreateProjectRequest(name=name, region_id=region)
        if keep_gb is not None or keep_days is not None:
            policy = request.cache_policy
            if keep_gb is not None:
                policy.keep_gb = keep_gb
            if keep_days is not None:
                policy.keep_days = keep_days
        response = self._call("CreateProject", self._projects.CreateProject, request, self._org())
        return self._project(response.project)

    def get_project(self, project_id: str) -> DepotProject:
        request = _pb.project.GetProjectRequest(project_id=project_id)
        return self._project(self._call("GetProject", self._projects.GetProject, request, self._org()).project)

    def list_projects(self) -> list[DepotProject]:
        response = self._call(
            "ListProjects", self._projects.ListProjects, _pb.project.ListProjectsRequest(), self._org()
        )
        return [self._project(p) for p in response.projects]

    def create_build(self, project_id: str) -> DepotBuildHandle:
        request = _pb.build.CreateBuildRequest(project_id=project_id)
        response = self._call("CreateBuild", self._builds.CreateBuild, request, self._org())
        return DepotBuildHandle(build_id=response.build_id, project_id=project_id, build_token=response.build_token)

    def finish_build(self, handle: DepotBuildHandle, error: str | None = None) -> None:
        request = _pb.build.FinishBuildRequest(build_id=handle.build_id)
        if error is None:
            request.success.SetInParent()
        else:
            request.error.error = error
        self._call("FinishBuild", self._builds.FinishBuild, request, self._bearer(handle.build_token))

    def get_endpoint(
        self,
        handle: DepotBuildHandle,
        platform: str,
        *,
        timeout_s: float,
        not_found_grace_s: float = 5.0,
        should_stop: Callable[[], bool] | None = None,
    ) -> BuilderEndpoint:
        """Follow GetEndpoint until the builder is active; NOT_FOUND right after CreateBuild is retried."""
        request = _pb.buildkit.GetEndpointRequest(build_id=handle.build_id, platform=PLATFORMS[platform])
        deadline = time.monotonic() + timeout_s
        grace_until = time.monotonic() + not_found_grace_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TransientBuildError(
                    f"Depot builder did not become active within {timeout_s:g}s", step="depot GetEndpoint"
                )
            stream = self._buildkit.GetEndpoint(request, metadata=self._bearer(handle.build_token), timeout=remaining)
            watcher = _StopWatcher(stream, should_stop)
            try:
                for message in stream:
                    if message.WhichOneof("connection") == "active":
                        return _endpoint(message.active)
            except grpc.RpcError as exc:
                code = exc.code()
                if watcher.stopped:
                    raise TransientBuildError(
                        "stopped waiting for the Depot builder", step="depot GetEndpoint"
                    ) from None
                if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise TransientBuildError(
                        f"Depot builder did not become active within {timeout_s:g}s", step="depot GetEndpoint"
                    ) from None
                if code == grpc.StatusCode.NOT_FOUND and time.monotonic() < grace_until:
                    time.sleep(0.2)
                    continue
                raise depot_error(exc, "GetEndpoint") from None
            finally:
                watcher.close()
            raise TransientBuildError("Depot ended GetEndpoint before the builder was active", step="depot GetEndpoint")

    def health(
        self,
        handle: DepotBuildHandle,
        platform: str,
        *,
        interval_s: float = 5.0,
        on_lost: Callable[[str], None] | None = None,
    ) -> HealthReporter:
        request = _pb.buildkit.ReportHealthRequest(build_id=handle.build_id, platform=PLATFORMS[platform])
        return HealthReporter(self._buildkit, request, self._bearer(handle.build_token), interval_s, on_lost)

    def release_endpoint(self, handle: DepotBuildHandle, platform: str) -> None:
        request = _pb.buildkit.ReleaseEndpointRequest(build_id=handle.build_id, platform=PLATFORMS[platform])
        self._call("ReleaseEndpoint", self._buildkit.ReleaseEndpoint, request, self._bearer(handle.build_token))


def _endpoint(active: Any) -> BuilderEndpoint:
    def pem(text: str) -> bytes | None:
        return text.encode() if text else None

    return BuilderEndpoint(
        endpoint=active.endpoint,
        server_name=active.server_name or None,
        ca_pem=pem(active.ca_cert.cert),
        cert_pem=pem(active.cert.cert.cert),
        key_pem=pem(active.cert.key.key),
    )


class _StopWatcher:
    """Cancels a blocking stream when `should_stop` turns true (checked five times a second)."""

    def __init__(self, call: Any, should_stop: Callable[[], bool] | None):
        self.stopped = False
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        if should_stop is not None:
            self._thread = threading.Thread(target=self._watch, args=(call, should_stop), daemon=True)
            self._thread.start()

    def _watch(self, call: Any, should_stop: Callable[[], bool]) -> None:
        while not self._done.wait(0.2):
            if should_stop():
                self.stopped = True
                call.cancel()
                return

    def close(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=1)
