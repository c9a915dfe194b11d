"""BuildKitBuilder: a BuildSpec built and pushed on one BuildKit endpoint, with no orchestration framework around it.

Every error is a `core.errors` kind: a missing Dockerfile or secret and failing steps are the
user's, an unreachable endpoint or a dropped session is transient, a build over its time is
permanent, and a cancel is BuildCanceled. A secret's value is taken from the build's `secrets`
(name -> value, e.g. an app's variables) or else looked up by name when the build runs.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

from ..core.errors import BuildCanceled, PermanentBuildError, TransientBuildError, UserBuildError
from ..core.models import BuildResult, BuildSpec, BuildTicket, ProgressLine
from . import llb
from .client import BuildEvent, BuildKitClient, ImageBuild, LogEvent, VertexEvent
from .dockerfile import FRONTEND, dockerfile_build
from .registry import RegistryAuth
from .session import Session
from .transport import TLSConfig

ProgressSink = Callable[[ProgressLine], None]
CancelCheck = Callable[[], bool]
SecretLookup = Callable[[str], str | None]

_MISSING_SECRET = re.compile(r"secret \S+ not found")
_VERTEX_TEXT = {"started": "{name}", "cached": "CACHED {name}", "completed": "DONE {name}"}


def _never() -> bool:
    return False


def _no_secrets(name: str) -> str | None:
    return None


def progress_line(event: BuildEvent) -> ProgressLine:
    """A build event as the log shows it: step changes as system lines, output as stdout/stderr."""
    if isinstance(event, LogEvent):
        return ProgressLine(stream=event.stream, text=event.text, vertex=event.vertex, ts=event.ts)
    assert isinstance(event, VertexEvent)
    if event.status == "error":
        return ProgressLine(stream="system", text=f"ERROR {event.name}: {event.error}", vertex=event.name, ts=event.ts)
    return ProgressLine(
        stream="system", text=_VERTEX_TEXT[event.status].format(name=event.name), vertex=event.name, ts=event.ts
    )


def build_result(
    spec: BuildSpec,
    image: ImageBuild,
    started: float,
    *,
    backend_build_id: str | None = None,
    backend_url: str | None = None,
) -> BuildResult:
    """A pushed image as the builder port reports it, timed from `started` (time.monotonic)."""
    return BuildResult(
        build_id=spec.build_id,
        image=spec.image.model_copy(update={"digest": image.digest}),
        config_digest=image.config_digest,
        duration_s=time.monotonic() - started,
        steps_total=image.solve.steps_total,
        steps_cached=image.solve.steps_cached,
        backend_build_id=backend_build_id,
        backend_url=backend_url,
    )


class BuildKitBuilder:
    """Session-served context, Dockerfile frontend or raw LLB, push, and the registry's manifest digest."""

    def __init__(
        self,
        address: str,
        tls: TLSConfig | None = None,
        *,
        registry_auth: RegistryAuth | None = None,
        insecure_registry: bool = False,
        network_mode: Literal["none", "host"] = "none",
        secret_lookup: SecretLookup | None = None,
        connect_timeout_s: float = 30.0,
        build_timeout_s: float | None = None,
        no_cache: bool = False,
        backend: str = "buildkit",
    ):
        self.address = address
        self.tls = tls
        self.registry_auth = registry_auth
        self.insecure_registry = insecure_registry
        self.network_mode = network_mode
        self.secret_lookup = secret_lookup or _no_secrets
        self.connect_timeout_s = connect_timeout_s
        self.build_timeout_s = build_timeout_s
        self.no_cache = no_cache
        self.backend = backend

    @contextmanager
    def _client(self) -> Iterator[BuildKitClient]:
        try:
            client = BuildKitClient(self.address, self.tls)
        except OSError as exc:
            raise TransientBuildError(f"BuildKit at {self.address} unreachable: {exc}", step="connect") from exc
        with client:
            yield client

    @contextmanager
    def _session(
        self, spec: BuildSpec, local_dirs: dict[str, str], secrets: Mapping[str, str] | None = None
    ) -> Iterator[Session]:
        auth = self.registry_auth
        session = Session(
            self.address,
            self.tls,
            local_dirs=local_dirs,
            secrets=self._secrets(spec, secrets or {}),
            registry_auth={spec.image.registry: auth} if auth else None,
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

    def _secrets(self, spec: BuildSpec, given: Mapping[str, str]) -> dict[str, str]:
        values = {}
        for name in spec.secrets:
            value = given[name] if name in given else self.secret_lookup(name)
            if value is None:
                raise UserBuildError(f"build secret {name} is not set", step="secrets")
            values[name] = value
        return values

    def submit(self, spec: BuildSpec) -> BuildTicket:
        """Refuse what cannot build before any work, and check that the endpoint answers."""
        if spec.frontend == "dockerfile":
            dockerfile_build(spec.context_dir, spec.dockerfile)
        elif not spec.llb_definition:
            raise PermanentBuildError("an llb build needs a definition", step="submit")
        with self._client() as client:
            client.list_workers(timeout=self.connect_timeout_s)
        return BuildTicket(spec=spec, backend=self.backend, ref=uuid.uuid4().hex, endpoint=self.address)

    def run(
        self,
        ticket: BuildTicket,
        on_progress: ProgressSink,
        should_cancel: CancelCheck = _never,
        secrets: Mapping[str, str] | None = None,
    ) -> BuildResult:
        """Build a submitted ticket until it is pushed, canceled or out of time."""
        return self.build(ticket.spec, ticket.ref, on_progress, should_cancel, secrets)

    def build(
        self,
        spec: BuildSpec,
        ref: str,
        on_progress: ProgressSink,
        should_cancel: CancelCheck = _never,
        secrets: Mapping[str, str] | None = None,
    ) -> BuildResult:
        """Solve, push and return the pushed image with the registry's manifest digest."""
        deadline = time.monotonic() + self.build_timeout_s if self.build_timeout_s else None
        timed_out = False

        def stop() -> bool:
            nonlocal timed_out
            timed_out = deadline is not None and time.monotonic() > deadline
            return timed_out or should_cancel()

        def push_line(text: str) -> None:
            on_progress(ProgressLine(stream="system", text=text, vertex="push"))

        started = time.monotonic()
        try:
            image = self._solve(spec, ref, lambda event: on_progress(progress_line(event)), push_line, stop, secrets)
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
        push_line(f"pushed {spec.image.ref} {image.digest}")
        return build_result(spec, image, started)

    def _solve(
        self,
        spec: BuildSpec,
        ref: str,
        on_event: Callable[[BuildEvent], None],
        on_push_line: Callable[[str], None],
        should_cancel: CancelCheck,
        secrets: Mapping[str, str] | None = None,
    ) -> ImageBuild:
        entitlements = ["network.host"] if self.network_mode == "host" else []
        frontend: str | None = None
        frontend_attrs: dict[str, str] | None = None
        definition: bytes | None = None
        image_config: dict[str, Any] | None = None
        no_cache = self.no_cache or spec.no_cache
        if spec.frontend == "dockerfile":
            build = dockerfile_build(
                spec.context_dir,
                spec.dockerfile,
                spec.build_args,
                spec.target,
                spec.platform,
                self.network_mode,
                no_cache=no_cache,
            )
            frontend = FRONTEND
            frontend_attrs = dict(build.frontend_attrs)
            local_dirs = build.local_dirs
        else:
            if not spec.llb_definition:
                raise PermanentBuildError("an llb build needs a definition", step="submit")
            definition = llb.without_cache(spec.llb_definition) if no_cache else spec.llb_definition
            image_config = spec.image_config
            local_dirs = {"context": spec.context_dir}
        with self._client() as client, self._session(spec, local_dirs, secrets) as session:
            return client.build_image(
                spec.image.ref,
                definition=definition,
                image_config=image_config,
                frontend=frontend,
                frontend_attrs=frontend_attrs,
                session=session.id,
                ref=ref,
                registry_auth=self.registry_auth,
                insecure_registry=self.insecure_registry,
                entitlements=entitlements,
                on_event=on_event,
                on_push_line=on_push_line,
                should_cancel=should_cancel,
            )
