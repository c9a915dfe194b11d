"""A build on Depot from start to finish: project, build, health, endpoint, solve, release, finish.

The lifecycle follows Depot's own CLI: CreateBuild, health reports in the background from
before GetEndpoint to the end of the solve, our BuildKit client over mTLS to the endpoint,
then stop health, ReleaseEndpoint and FinishBuild with the real outcome. Whatever happens
after CreateBuild, FinishBuild is called, and only a pushed image finishes it as a success.
Errors are `core.errors` kinds; a lost builder is transient, so a retry creates a new build.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..buildkit import llb
from ..buildkit.builder import build_result, progress_line
from ..buildkit.client import BuildKitClient, ImageBuild
from ..buildkit.dockerfile import FRONTEND, dockerfile_build
from ..buildkit.session import Session
from ..buildkit.transport import TLSConfig
from ..core.errors import BuildCanceled, BuildError, PermanentBuildError, TransientBuildError, UserBuildError
from ..core.models import BuildResult, BuildSpec, BuildTicket, DepotProject, ProgressLine
from .api import BuilderEndpoint, DepotAPI, DepotBuildHandle
from .config import DepotConfig
from .projects import ProjectStore, project_name

ProgressSink = Callable[[ProgressLine], None]
_MISSING_SECRET = re.compile(r"secret \S+ not found")


def dashboard_url(org: str | None, project: str, build: str, base: str = "https://depot.dev") -> str | None:
    """Depot's page for a build; only formed when the organization is known."""
    if not org:
        return None
    return f"{base.rstrip('/')}/orgs/{org}/projects/{project}/builds/{build}"


@dataclass(frozen=True)
class DepotBuildInfo:
    build_id: str
    project_id: str
    url: str | None = None


@dataclass(frozen=True)
class DepotBuildResult:
    image: ImageBuild
    depot: DepotBuildInfo
    timings: dict[str, float] = field(default_factory=dict)


class _Stop:
    """Why the build must stop (cancel or a lost builder), and the client to interrupt."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.canceled: str | None = None
        self.lost: str | None = None
        self._client: BuildKitClient | None = None

    def set_client(self, client: BuildKitClient | None) -> None:
        with self._lock:
            self._client = client
            pending = self.canceled or self.lost
        if client is not None and pending:
            client.cancel()

    def trip(self, *, canceled: str | None = None, lost: str | None = None) -> None:
        with self._lock:
            if canceled and not self.canceled:
                self.canceled = canceled
            if lost and not self.lost:
                self.lost = lost
            client = self._client
        if client is not None:
            client.cancel()

    def __bool__(self) -> bool:
        return bool(self.canceled or self.lost)


class DepotBuilder:
    """Runs builds on Depot's builders; one instance per build (it holds that build's cancel state)."""

    def __init__(
        self,
        config: DepotConfig,
        projects: ProjectStore,
        *,
        default_workspace: str = "default",
        secret_lookup: Callable[[str], str | None] | None = None,
        registry_credentials: tuple[str, str] | None = None,
        on_started: Callable[[BuildSpec, DepotBuildInfo], None] | None = None,
    ):
        self.config = config
        self.projects = projects
        self.default_workspace = default_workspace
        self.secret_lookup = secret_lookup or (lambda name: None)
        self.registry_credentials = registry_credentials  # (user, password) for the image's registry
        self.on_started = on_started
        self._stop = _Stop()

    def submit(self, spec: BuildSpec) -> BuildTicket:
        """Check the spec and make sure the workspace's project exists (a refused token fails here, for good)."""
        if spec.frontend == "dockerfile":
            dockerfile_build(spec.context_dir, spec.dockerfile)
        elif not spec.llb_definition:
            raise PermanentBuildError("an llb build needs a definition", step="submit")
        project = self.project_for(spec.workspace or self.default_workspace)
        return BuildTicket(spec=spec, backend="depot", ref=uuid.uuid4().hex, endpoint=project.project_id)

    def run(
        self,
        ticket: BuildTicket,
        on_progress: ProgressSink,
        should_cancel: Callable[[], bool] | None = None,
        secrets: Mapping[str, str] | None = None,
    ) -> BuildResult:
        """One Depot build of the ticket's spec, as the builder port's `run`; `secrets` win over the lookup."""
        spec = ticket.spec
        given = secrets or {}
        values: dict[str, str] = {}
        for name in spec.secrets:
            value = given[name] if name in given else self.secret_lookup(name)
            if value is None:
                raise UserBuildError(f"build secret {name} is not set", step="secrets")
            values[name] = value
        on_started = self.on_started
        started = time.monotonic()
        outcome = self.build(
            spec,
            spec.workspace or self.default_workspace,
            secrets=values,
            registry_auth={spec.image.registry: self.registry_credentials} if self.registry_credentials else None,
            on_progress=on_progress,
            should_cancel=should_cancel,
            on_started=(lambda info: on_started(spec, info)) if on_started else None,
        )
        return build_result(
            spec, outcome.image, started, backend_build_id=outcome.depot.build_id, backend_url=outcome.depot.url
        )

    def _api(self) -> DepotAPI:
        return DepotAPI(self.config.api_url, self.config.token, timeout_s=self.config.call_timeout_s)

    def cancel(self, reason: str = "canceled") -> None:
        self._stop.trip(canceled=reason)

    def project_for(self, workspace: str, api: DepotAPI | None = None) -> DepotProject:
        """The workspace's project: looked up in the store, created once (its cache lives there)."""
        known = self.projects.depot_project(workspace)
        if known is not None:
            return known
        cfg = self.config

        def create() -> DepotProject:
            with contextmanager_api(api, self._api) as client:
                return client.create_project(
                    project_name(workspace, cfg.project_prefix),
                    cfg.region,
                    keep_gb=cfg.cache_keep_gb,
                    keep_days=cfg.cache_keep_days,
                )

        return self.projects.ensure_depot_project(workspace, create)

    def build(
        self,
        spec: BuildSpec,
        workspace: str,
        *,
        secrets: Mapping[str, str] | None = None,
        registry_auth: Mapping[str, tuple[str, str]] | None = None,
        on_progress: ProgressSink | None = None,
        should_cancel: Callable[[], bool] | None = None,
        on_started: Callable[[DepotBuildInfo], None] | None = None,
    ) -> DepotBuildResult:
        """Build and push `spec` on a Depot builder of the workspace's project."""
        emit = on_progress or (lambda line: None)
        cfg = self.config
        timings: dict[str, float] = {}
        clock = time.monotonic()

        def lap(name: str) -> None:
            nonlocal clock
            now = time.monotonic()
            timings[name] = timings.get(name, 0.0) + now - clock
            clock = now

        with self._api() as api:
            project = self.project_for(workspace, api)
            lap("project")
            handle = api.create_build(project.project_id)
            lap("create")
            info = DepotBuildInfo(
                build_id=handle.build_id,
                project_id=project.project_id,
                url=dashboard_url(
                    cfg.organization_id or project.organization_id,
                    project.project_id,
                    handle.build_id,
                    cfg.dashboard_base,
                ),
            )
            error: str | None = "the build ended without an outcome"
            try:  # from here on, every path finishes the Depot build
                where = info.url or f"project {info.project_id}"
                emit(ProgressLine(stream="system", vertex="depot", text=f"Depot build {info.build_id} ({where})"))
                if on_started is not None:
                    on_started(info)
                image = self._run(api, handle, spec, secrets, registry_auth, emit, should_cancel, lap)
                error = None
            except BuildCanceled as exc:
                error = f"canceled: {exc.message}"
                raise
            except BuildError as exc:
                error = str(exc)
                raise
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                raise
            except BaseException as exc:  # the run was terminated (interrupt, exit): a cancel, not a failure
                error = f"canceled: {type(exc).__name__} {exc}".rstrip()
                raise
            finally:
                clock = time.monotonic()
                self._finish(api, handle, error, emit)
                lap("finish")
        return DepotBuildResult(image=image, depot=info, timings=timings)

    def _run(
        self,
        api: DepotAPI,
        handle: DepotBuildHandle,
        spec: BuildSpec,
        secrets: Mapping[str, str] | None,
        registry_auth: Mapping[str, tuple[str, str]] | None,
        emit: ProgressSink,
        should_cancel: Callable[[], bool] | None,
        lap: Callable[[str], None],
    ) -> ImageBuild:
        """Health from before GetEndpoint to the end of the solve; then stop health and release."""
        cfg = self.config
        stop = self._stop
        health = api.health(
            handle, cfg.platform, interval_s=cfg.health_interval_s, on_lost=lambda reason: stop.trip(lost=reason)
        ).start()
        watcher = _CancelWatcher(stop, should_cancel)
        try:
            try:
                endpoint = api.get_endpoint(
                    handle,
                    cfg.platform,
                    timeout_s=cfg.endpoint_timeout_s,
                    not_found_grace_s=cfg.not_found_grace_s,
                    should_stop=lambda: bool(stop),
                )
            except TransientBuildError:
                self._raise_if_stopped()
                raise
            lap("endpoint")
            emit(ProgressLine(stream="system", vertex="depot", text=f"Depot builder ready at {endpoint.endpoint}"))
            image = self._solve(endpoint, spec, secrets, registry_auth, emit, lap)
        finally:
            watcher.close()
            health.stop()
            try:
                api.release_endpoint(handle, cfg.platform)
            except BuildError as exc:
                emit(ProgressLine(stream="system", vertex="depot", text=f"could not release the Depot builder: {exc}"))
            lap("release")
        return image

    def _raise_if_stopped(self) -> None:
        if self._stop.canceled:
            raise BuildCanceled(self._stop.canceled, step="depot")
        if self._stop.lost:
            raise TransientBuildError(self._stop.lost, step="depot")

    def _solve(
        self,
        endpoint: BuilderEndpoint,
        spec: BuildSpec,
        secrets: Mapping[str, str] | None,
        registry_auth: Mapping[str, tuple[str, str]] | None,
        emit: ProgressSink,
        lap: Callable[[str], None],
    ) -> ImageBuild:
        cfg = self.config
        addr = endpoint.endpoint if "://" in endpoint.endpoint else f"tcp://{endpoint.endpoint}"
        tls = None
        if endpoint.ca_pem or endpoint.cert_pem:
            tls = TLSConfig(
                ca_pem=endpoint.ca_pem,
                cert_pem=endpoint.cert_pem,
                key_pem=endpoint.key_pem,
                server_name=endpoint.server_name,
            )
        if spec.frontend == "dockerfile":
            dockerfile = dockerfile_build(
                spec.context_dir,
                spec.dockerfile,
                spec.build_args,
                spec.target,
                spec.platform,
                cfg.network_mode,
                no_cache=spec.no_cache,
            )
            local_dirs = dockerfile.local_dirs
        else:
            if not spec.llb_definition:
                raise PermanentBuildError("an llb build needs a definition", step="submit")
            local_dirs = {"context": spec.context_dir}
        try:
            client = BuildKitClient(addr, tls, exporter="image")
        except (OSError, ValueError) as exc:
            raise TransientBuildError(f"Depot builder {addr} unusable: {exc}", step="depot connect") from exc
        with client, self._attached(client):
            self._wait_ready(client, addr)
            lap("connect")
            with self._session(addr, tls, spec, local_dirs, secrets, registry_auth) as session:
                common: dict[str, Any] = dict(
                    session=session.id,
                    entitlements=["network.host"] if cfg.network_mode == "host" else [],
                    insecure_registry=cfg.insecure_registry,
                    on_event=lambda event: emit(progress_line(event)),
                    should_cancel=lambda: bool(self._stop),
                )
                try:
                    if spec.frontend == "dockerfile":
                        image = client.build_image(
                            spec.image.ref, frontend=FRONTEND, frontend_attrs=dockerfile.frontend_attrs, **common
                        )
                    else:
                        definition = spec.llb_definition or b""
                        definition = llb.without_cache(definition) if spec.no_cache else definition
                        image = client.build_image(
                            spec.image.ref, definition=definition, image_config=spec.image_config, **common
                        )
                except BuildCanceled:
                    self._raise_if_stopped()
                    raise
                except BuildError as exc:
                    if self._stop.lost:
                        raise TransientBuildError(self._stop.lost, step="depot") from None
                    if isinstance(exc, PermanentBuildError) and _MISSING_SECRET.search(exc.message):
                        raise UserBuildError(exc.message, step=exc.step) from exc
                    raise
                except ValueError as exc:
                    raise PermanentBuildError(f"invalid build input: {exc}", step="submit") from exc
            lap("solve")
        emit(ProgressLine(stream="system", vertex="push", text=f"pushed {spec.image.ref} {image.digest}"))
        return image

    @contextmanager
    def _attached(self, client: BuildKitClient) -> Iterator[None]:
        self._stop.set_client(client)
        try:
            yield
        finally:
            self._stop.set_client(None)

    def _wait_ready(self, client: BuildKitClient, addr: str) -> None:
        """The builder answers ListWorkers once BuildKit is up; until then retry (Depot's CLI does too)."""
        deadline = time.monotonic() + self.config.ready_timeout_s
        while True:
            self._raise_if_stopped()
            try:
                client.list_workers(timeout=min(5.0, max(0.5, deadline - time.monotonic())))
                return
            except BuildError as exc:
                if time.monotonic() >= deadline:
                    raise TransientBuildError(
                        f"Depot builder {addr} not ready after {self.config.ready_timeout_s:g}s: {exc.message}",
                        step="depot connect",
                    ) from None
            time.sleep(0.2)

    @contextmanager
    def _session(
        self,
        addr: str,
        tls: TLSConfig | None,
        spec: BuildSpec,
        local_dirs: dict[str, str],
        secrets: Mapping[str, str] | None,
        registry_auth: Mapping[str, tuple[str, str]] | None,
    ) -> Iterator[Session]:
        session = Session(
            addr,
            tls,
            local_dirs=local_dirs,
            secrets=dict(secrets or {}),
            registry_auth=dict(registry_auth) if registry_auth else None,
            name=f"build-{spec.build_id}",
            owner=(0, 0),
        )
        try:
            session.__enter__()
        except OSError as exc:
            raise TransientBuildError(f"could not open a session on the Depot builder: {exc}", step="session") from exc
        try:
            yield session
        finally:
            session.close()

    def _finish(self, api: DepotAPI, handle: DepotBuildHandle, error: str | None, emit: ProgressSink) -> None:
        """FinishBuild with the real outcome; an outage is retried, as the build must not stay open."""
        for attempt in range(4):
            try:
                api.finish_build(handle, error)
                return
            except TransientBuildError as exc:
                if attempt == 3:
                    emit(ProgressLine(stream="system", vertex="depot", text=f"could not finish the Depot build: {exc}"))
                    return
                time.sleep(0.5 * 2**attempt)
            except BuildError as exc:
                emit(ProgressLine(stream="system", vertex="depot", text=f"could not finish the Depot build: {exc}"))
                return


@contextmanager
def contextmanager_api(api: DepotAPI | None, factory: Callable[[], DepotAPI]) -> Iterator[DepotAPI]:
    """Use an open API connection, or open one for this call."""
    if api is not None:
        yield api
        return
    with factory() as fresh:
        yield fresh


class _CancelWatcher:
    """Polls `should_cancel` (it may ask a database) off the solving thread, five times a second."""

    def __init__(self, stop: _Stop, should_cancel: Callable[[], bool] | None):
        self._stop = stop
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        if should_cancel is not None:
            self._thread = threading.Thread(target=self._watch, args=(should_cancel,), daemon=True)
            self._thread.start()

    def _watch(self, should_cancel: Callable[[], bool]) -> None:
        while not self._done.wait(0.2):
            if should_cancel():
                self._stop.trip(canceled="build canceled")
                return

    def close(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
