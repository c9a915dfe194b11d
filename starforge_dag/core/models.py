"""Typed models passed between the API, the store, the ops and the build services."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from .states import BuildState


def utcnow() -> datetime:
    return datetime.now(UTC)


class _FrozenModel(BaseModel):
    """Values passed between processes and layers: never changed in place."""

    model_config = ConfigDict(frozen=True)


class Trigger(StrEnum):
    """What asked for a build (a re-execution resumes its build, keeping the trigger)."""

    PUSH = "push"  # a GitHub push webhook
    MANUAL = "manual"  # `starforge build`, POST /apps/{app}/builds
    RECONCILE = "reconcile"  # a push that never arrived, found by comparing the repository with the builds
    PULL_REQUEST = "pull_request"  # a GitHub pull_request webhook: a preview of the pull request's head commit


PRODUCTION = "production"  # the environment of the app's branch; a preview's is `pr-<number>`


class ImageRef(_FrozenModel):
    """Where an image lives; `digest` is the registry's manifest digest once pushed."""

    registry: str
    repository: str
    tag: str
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.tag}"

    @property
    def pinned(self) -> str:
        if not self.digest:
            raise ValueError(f"{self.ref} has no digest yet")
        return f"{self.name}@{self.digest}"

    @classmethod
    def for_build(cls, registry: str, workspace: str, app: str, commit: str) -> ImageRef:
        host, _, prefix = registry.partition("/")
        repository = "/".join(p for p in (prefix, workspace, app) if p).lower()
        return cls(registry=host, repository=repository, tag=commit)

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """Parse `host[:port]/repo[:tag][@digest]`; the first path element is the registry."""
        name, _, digest = text.partition("@")
        host, _, rest = name.partition("/")
        if not rest or ("." not in host and ":" not in host and host != "localhost"):
            raise ValueError(f"image reference {text!r} must start with a registry host")
        repository, sep, tag = rest.rpartition(":")
        if not sep or "/" in tag:
            repository, tag = rest, "latest"
        return cls(registry=host, repository=repository, tag=tag, digest=digest or None)


class App(_FrozenModel):
    id: int
    workspace: str
    name: str
    repo_url: str
    repo_full_name: str | None = None
    branch: str = "main"
    root_dir: str = ""
    dockerfile_path: str | None = None
    watch_paths: list[str] = Field(default_factory=list)
    cancel_running: bool = False
    target: str | None = None
    build_timeout_s: int | None = None
    auto_build: bool = True
    wait_for_checks: bool = False  # pushes wait for the commit's GitHub check suites before they build
    archived_at: datetime | None = None
    previews: bool = False
    preview_label: str | None = None

    @property
    def archived(self) -> bool:
        return self.archived_at is not None


class BuildRequest(_FrozenModel):
    """A build as the pipeline sees it: which app, which commit, who asked."""

    build_id: int
    app_id: int
    workspace: str
    app: str
    repo_url: str
    ref: str
    commit_sha: str
    root_dir: str = ""
    dockerfile_path: str | None = None
    target: str | None = None
    trigger: Trigger = Trigger.PUSH
    delivery_id: str | None = None
    no_cache: bool = False


class Build(_FrozenModel):
    """A row of the builds table."""

    id: int
    app_id: int
    workspace: str
    app: str
    ref: str
    commit_sha: str
    status: BuildState
    trigger: Trigger
    delivery_id: str | None = None
    run_id: str | None = None
    error: str | None = None
    error_step: str | None = None
    image_ref: str | None = None
    image_digest: str | None = None
    commit_time: datetime | None = None
    commit_message: str | None = None
    commit_author: str | None = None
    rewind: bool = False
    no_cache: bool = False
    started_at: datetime | None = None
    backend_build_id: str | None = None
    backend_url: str | None = None
    created_at: datetime
    updated_at: datetime
    held_by_pin: bool = False
    image_deleted_at: datetime | None = None
    build_timeout_s: int | None = None  # the app's own timeout, when it sets one
    environment: str = PRODUCTION
    pr_number: int | None = None
    fork: bool = False

    @property
    def preview(self) -> bool:
        return self.environment != PRODUCTION

    @property
    def attempt_started_at(self) -> datetime:
        """When the current attempt began: its first phase, or its resumption by a re-execution."""
        return self.started_at or self.created_at


class Transition(_FrozenModel):
    build_id: int
    from_state: BuildState | None
    to_state: BuildState
    reason: str
    actor: str
    at: datetime


class BuildSpec(_FrozenModel):
    """Everything a BuildService needs to build and push one image; no secrets, only their names."""

    build_id: int
    context_dir: str
    image: ImageRef
    workspace: str | None = None
    frontend: Literal["dockerfile", "llb"] = "dockerfile"
    dockerfile: str = "Dockerfile"
    build_args: dict[str, str] = Field(default_factory=dict)
    target: str | None = None
    platform: str | None = None
    llb_definition: bytes | None = None
    image_config: dict[str, Any] | None = None
    secrets: list[str] = Field(default_factory=list)
    no_cache: bool = False

    @field_serializer("llb_definition")
    def _b64(self, value: bytes | None) -> str | None:
        return None if value is None else base64.b64encode(value).decode()

    @field_validator("llb_definition", mode="before")
    @classmethod
    def _unb64(cls, value: Any) -> Any:
        return base64.b64decode(value) if isinstance(value, str) else value


class BuildTicket(_FrozenModel):
    """A submitted build: enough to follow or cancel it from any process."""

    spec: BuildSpec
    backend: str
    ref: str
    submitted_at: datetime = Field(default_factory=utcnow)
    endpoint: str | None = None


class ProgressLine(_FrozenModel):
    """One line of build output as a BuildService reports it, before it gets a sequence number."""

    stream: Literal["stdout", "stderr", "system"] = "system"
    text: str
    vertex: str | None = None
    ts: datetime = Field(default_factory=utcnow)


class LogLine(_FrozenModel):
    """A stored log line: (build_id, seq) is unique and orders the log."""

    build_id: int
    seq: int
    stream: Literal["stdout", "stderr", "system"] = "system"
    text: str
    vertex: str | None = None
    ts: datetime = Field(default_factory=utcnow)


class BuildResult(_FrozenModel):
    build_id: int
    image: ImageRef
    config_digest: str | None = None
    duration_s: float = 0.0
    steps_total: int = 0
    steps_cached: int = 0
    backend_build_id: str | None = Field(default=None, description="The backend's own id (a Depot build id).")
    backend_url: str | None = Field(default=None, description="Where the backend shows the build, if anywhere.")


class DepotProject(_FrozenModel):
    """A Depot project: one per workspace, so each workspace has its own build cache."""

    project_id: str
    name: str
    region: str
    organization_id: str | None = None


class DesiredState(_FrozenModel):
    app_id: int
    workspace: str
    app: str
    image_ref: str
    image_digest: str
    commit_sha: str
    commit_time: datetime | None
    build_id: int
    updated_at: datetime
    reason: str | None = None
    actor: str | None = None
    note: str | None = None
    revision: int | None = None
    pinned: bool = False
    held_build_id: int | None = None
    environment: str = PRODUCTION

    @property
    def pinned_image(self) -> str:
        return pinned_image(self.image_ref, self.image_digest)


ChangeReason = Literal["build", "rewind", "rollback", "pin", "unpin", "preview_closed"]


class DesiredChange(_FrozenModel):
    """One entry of the desired-state feed: revisions are global, gap-free and strictly increasing.

    A teardown (`preview_closed`) has no build and no image: its environment runs nothing any more.
    """

    revision: int
    app_id: int
    workspace: str
    app: str
    build_id: int | None
    image_ref: str | None
    image_digest: str | None
    commit_sha: str
    reason: ChangeReason
    note: str
    actor: str
    pinned: bool
    run_id: str | None = None
    at: datetime
    environment: str = PRODUCTION

    @property
    def pinned_image(self) -> str | None:
        if self.image_ref is None or self.image_digest is None:
            return None
        return pinned_image(self.image_ref, self.image_digest)


def pinned_image(image_ref: str, digest: str) -> str:
    """`repo@sha256:…`: what a deployer pulls, immune to a tag being moved."""
    name = image_ref.split("@", 1)[0]
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name.rsplit(":", 1)[0]
    return f"{name}@{digest}"
