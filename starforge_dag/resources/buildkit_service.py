"""BuildKitBuildService: builds on a self-hosted buildkitd or a Docker daemon's embedded BuildKit."""

from __future__ import annotations

import os
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from ..core.errors import BuildCanceled, PermanentBuildError, TransientBuildError, UserBuildError
from ..core.models import BuildResult, BuildSpec, BuildTicket, ProgressLine
from ..settings import BUILD_SECRET_PREFIX, build_secret
from .build_service import BuildService, CancelCheck, LogSink, _never

if TYPE_CHECKING:  # the BuildKit client (grpc, protobuf, h2) loads when a build needs it, not with the definitions
    from ..buildkit.client import BuildEvent, BuildKitClient
    from ..buildkit.registry import RegistryAuth
    from ..buildkit.session import Session
    from ..buildkit.transport import TLSConfig

_MISSING_SECRET = re.compile(r"secret \S+ not found")
_VERTEX_TEXT = {"started": "{name}", "cached": "CACHED {name}", "completed": "DONE {name}"}


def progress_line(event: BuildEvent) -> ProgressLine:
    """A build event as the log shows it: step changes as system lines, output as stdout/stderr."""
    from ..buildkit.client import LogEvent, VertexEvent

    if isinstance(event, LogEvent):
        return ProgressLine(stream=event.stream, text=event.text, vertex=event.vertex, ts=event.ts)
    assert isinstance(event, VertexEvent)
    if event.status == "error":
        return ProgressLine(stream="system", text=f"ERROR {event.name}: {event.error}", vertex=event.name, ts=event.ts)
    return ProgressLine(
        stream="system", text=_VERTEX_TEXT[event.status].format(name=event.name), vertex=event.name, ts=event.ts
    )


class BuildKitBuildService(BuildService):
    """Adapter over our BuildKit client: session-served context, Dockerfile or raw LLB, push, manifest digest."""

    address: str = Field(
        default="docker:///run/starforge/docker.sock",
        description="BuildKit endpoint: docker:///path/docker.sock, unix:///path/buildkitd.sock or tcp://host:port.",
    )
    tls_ca: str | None = Field(default=None, description="CA certificate file for a tcp:// endpoint.")
    tls_cert: str | None = Field(default=None, description="Client certificate file (mTLS).")
    tls_key: str | None = Field(default=None, description="Client key file (mTLS).")
    tls_server_name: str | None = Field(default=None, description="Server name to verify instead of the host.")
    registry_username: str | None = Field(default=None, description="Registry user for pushes and private base images.")
    registry_password: str | None = Field(default=None, description="Registry password; set it with dg.EnvVar.")
    insecure_registry: bool = Field(default=False, description="Push over plain HTTP (standalone buildkitd only).")
    network_mode: Literal["none", "host"] = Field(
        default="none", description="Network of RUN steps; host needs the network.host entitlement on the daemon."
    )
    secret_env_prefix: str = Field(
        default=BUILD_SECRET_PREFIX, description="A build secret NAME is read from the variable PREFIX+NAME."
    )
    connect_timeout_s: float = Field(default=30.0, description="How long submit waits for the endpoint to answer.")
    build_timeout_s: float | None = Field(default=None, description="Stop a solve running longer than this.")
    cancel_dir: str = Field(
        default=os.path.join(tempfile.gettempdir(), "starforge-cancel"),
        description="Where cancel() leaves a marker that a run() on this machine stops at.",
    )

    def _tls(self) -> TLSConfig | None:
        from ..buildkit.transport import TLSConfig

        if not (self.tls_ca or self.tls_cert or self.tls_key):
            return None
        return TLSConfig.from_files(self.tls_ca, self.tls_cert, self.tls_key, self.tls_server_name)

    def _registry_auth(self) -> RegistryAuth | None:
        from ..buildkit.registry import RegistryAuth

        if not self.registry_username:
            return None
        return RegistryAuth(self.registry_username, self.registry_password or "")

    @contextmanager
    def _client(self) -> Iterator[BuildKitClient]:
        from ..buildkit.client import BuildKitClient

        try:
            client = BuildKitClient(self.address, self._tls())
        except OSError as exc:
            raise TransientBuildError(f"BuildKit at {self.address} unreachable: {exc}", step="connect") from exc
        with client:
            yield client

    @contextmanager
    def _session(self, spec: BuildSpec, local_dirs: dict[str, str]) -> Iterator[Session]:
        from ..buildkit.session import Session

        auth = self._registry_auth()
        session = Session(
            self.address,
            self._tls(),
            local_dirs=local_dirs,
            secrets=self._secrets(spec),
            registry_auth={spec.image.registry: (auth.username, auth.password)} if auth else None,
            name=f"build-{spec.build_id}",
            owner=(0, 0),
        )
        try:
            session.__enter__()
        except OSError as exc:
            raise TransientBuildError(
                f"could not open a BuildKit session at {self.address}: {exc}", step="session"
            ) from exc
        try:
            yield session
        finally:
            session.close()

    def _secrets(self, spec: BuildSpec) -> dict[str, str]:
        values = {}
        for name in spec.secrets:
            value = build_secret(name, self.secret_env_prefix)
            if value is None:
                raise UserBuildError(f"build secret {name} is not set", step="secrets")
            values[name] = value
        return values

    def _cancel_marker(self, ticket: BuildTicket) -> Path:
        return Path(self.cancel_dir) / ticket.ref

    def submit(self, spec: BuildSpec) -> BuildTicket:
        from ..buildkit.dockerfile import dockerfile_build

        if spec.frontend == "dockerfile":
            dockerfile_build(spec.context_dir, spec.dockerfile)
        elif not spec.llb_definition:
            raise PermanentBuildError("an llb build needs a definition", step="submit")
        with self._client() as client:
            client.list_workers(timeout=self.connect_timeout_s)
        return BuildTicket(spec=spec, backend="buildkit", ref=uuid.uuid4().hex, endpoint=self.address)

    def run(self, ticket: BuildTicket, on_progress: LogSink, should_cancel: CancelCheck = _never) -> BuildResult:
        from ..buildkit.dockerfile import FRONTEND, dockerfile_build

        spec = ticket.spec
        marker = self._cancel_marker(ticket)
        deadline = time.monotonic() + self.build_timeout_s if self.build_timeout_s else None
        timed_out = False

        def stop() -> bool:
            nonlocal timed_out
            timed_out = deadline is not None and time.monotonic() > deadline
            return timed_out or should_cancel() or marker.exists()

        def push_line(text: str) -> None:
            on_progress(ProgressLine(stream="system", text=text, vertex="push"))

        common: dict[str, Any] = dict(
            ref=ticket.ref,
            registry_auth=self._registry_auth(),
            insecure_registry=self.insecure_registry,
            entitlements=["network.host"] if self.network_mode == "host" else [],
            on_event=lambda event: on_progress(progress_line(event)),
            on_push_line=push_line,
            should_cancel=stop,
        )
        started = time.monotonic()
        try:
            if spec.frontend == "dockerfile":
                build = dockerfile_build(
                    spec.context_dir, spec.dockerfile, spec.build_args, spec.target, spec.platform, self.network_mode
                )
                with self._client() as client, self._session(spec, build.local_dirs) as session:
                    image = client.build_image(
                        spec.image.ref,
                        frontend=FRONTEND,
                        frontend_attrs=build.frontend_attrs,
                        session=session.id,
                        **common,
                    )
            else:
                if not spec.llb_definition:
                    raise PermanentBuildError("an llb build needs a definition", step="submit")
                with self._client() as client, self._session(spec, {"context": spec.context_dir}) as session:
                    image = client.build_image(
                        spec.image.ref,
                        definition=spec.llb_definition,
                        image_config=spec.image_config,
                        session=session.id,
                        **common,
                    )
        except ValueError as exc:
            raise PermanentBuildError(f"invalid build input: {exc}", step="submit") from exc
        except PermanentBuildError as exc:
            if _MISSING_SECRET.search(exc.message):
                raise UserBuildError(exc.message, step=exc.step) from exc
            raise
        except BuildCanceled as exc:
            if timed_out:
                raise PermanentBuildError(f"build exceeded {self.build_timeout_s:g}s", step=exc.step) from exc
            raise
        finally:
            marker.unlink(missing_ok=True)
        push_line(f"pushed {spec.image.ref} {image.digest}")
        return BuildResult(
            build_id=spec.build_id,
            image=spec.image.model_copy(update={"digest": image.digest}),
            config_digest=image.config_digest,
            duration_s=time.monotonic() - started,
            steps_total=image.solve.steps_total,
            steps_cached=image.solve.steps_cached,
        )

    def cancel(self, ticket: BuildTicket) -> None:
        """Leave a marker the running solve checks; BuildKit's Control API has no cancel-by-ref."""
        marker = self._cancel_marker(ticket)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
