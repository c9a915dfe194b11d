"""Response bodies of the HTTP API: what clients and the OpenAPI schema see, decoupled from table rows."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from starforge_dag.core.explain import Explanation
from starforge_dag.core.models import App, Build, Transition, Trigger
from starforge_dag.core.states import BuildState
from starforge_dag.git.command import redact_url


class Problem(BaseModel):
    """Every error answer: `{"detail": "..."}`."""

    detail: str


class IgnoredApp(BaseModel):
    app: str = Field(description="workspace/app")
    reason: str


class WebhookResult(BaseModel):
    status: Literal["pong", "queued", "ignored", "redelivery", "recorded"]
    event: str
    delivery: str | None = None
    builds: list[int] = Field(default_factory=list, description="Builds this delivery asked for (new or joined).")
    created: list[int] = Field(default_factory=list, description="Builds this delivery newly queued.")
    reason: str | None = None
    ignored: list[IgnoredApp] = Field(default_factory=list, description="Apps of the repository that do not build.")


class Phase(BaseModel):
    """A stretch of time a build spent in one state, from its transitions."""

    state: BuildState
    started_at: datetime
    ended_at: datetime | None = Field(description="None while the build is still in this state or it is the final one.")
    duration_s: float | None = None
    reason: str
    actor: str


class BuildSummary(BaseModel):
    id: int
    app: str = Field(description="workspace/app")
    ref: str = Field(description="Branch name, or the commit sha for a build of an exact commit.")
    commit_sha: str
    status: BuildState
    trigger: Trigger
    error: str | None = None
    error_step: str | None = Field(default=None, description="The step that failed.")
    image_ref: str | None = None
    image_digest: str | None = None
    held_by_pin: bool = Field(default=False, description="Succeeded while its app was pinned: desired on unpin.")
    image_deleted_at: datetime | None = Field(default=None, description="When image retention deleted its image.")
    environment: str = Field(default="production", description="`production`, or `pr-<number>` for a preview.")
    pr_number: int | None = Field(default=None, description="The pull request a preview build is of.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, build: Build) -> BuildSummary:
        return cls(**_summary_fields(build))


class BuildDetail(BuildSummary):
    delivery_id: str | None = None
    run_id: str | None = Field(default=None, description="The Dagster run building it.")
    commit_time: datetime | None = None
    backend_build_id: str | None = Field(default=None, description="The backend's build (a Depot build id).")
    backend_url: str | None = Field(default=None, description="The backend's page for the build, when known.")
    stop_requested: BuildState | None = Field(
        default=None, description="Set while a running build is being stopped: the state it will end in."
    )
    phases: list[Phase]
    explanation: Explanation | None = Field(
        default=None, description="Why a failed, timed-out, canceled or superseded build did not succeed."
    )
    page_url: str | None = Field(
        default=None,
        description="The build's page: opens without an API token, shows only this build, and expires "
        "(STARFORGE_PAGE_LINK_DAYS).",
    )

    @classmethod
    def of_build(
        cls,
        build: Build,
        transitions: list[Transition],
        stop: BuildState | None,
        explanation: Explanation | None = None,
        page_url: str | None = None,
    ) -> BuildDetail:
        return cls(
            **_summary_fields(build),
            delivery_id=build.delivery_id,
            run_id=build.run_id,
            commit_time=build.commit_time,
            backend_build_id=build.backend_build_id,
            backend_url=build.backend_url,
            stop_requested=None if build.status.terminal else stop,
            phases=phases(transitions),
            explanation=explanation,
            page_url=page_url,
        )


class ManualBuild(BaseModel):
    ref: str | None = Field(
        default=None,
        max_length=255,
        description="Branch name or full commit id (40 or 64 lowercase hex digits); default the app's branch.",
    )
    no_cache: bool = Field(
        default=False,
        description="Build without the build cache. A changed secret does not invalidate the cache of a Dockerfile "
        "`RUN --mount=type=secret` step (BuildKit keys it by the command, not the secret), so ask for this after "
        "rotating one.",
    )


class EnqueueResult(BaseModel):
    created: bool = Field(description="False when an active build of this commit already existed.")
    build: BuildSummary


class AppView(BaseModel):
    id: int
    name: str = Field(description="workspace/app")
    workspace: str
    repo_url: str = Field(description="Credentials embedded in the URL are masked.")
    repo_full_name: str | None
    branch: str
    root_dir: str
    watch_paths: list[str]
    dockerfile_path: str | None = Field(default=None, description="Dockerfile path relative to the root dir.")
    target: str | None = Field(default=None, description="The Dockerfile stage built.")
    build_timeout_s: int | None = Field(default=None, description="Overrides STARFORGE_BUILD_TIMEOUT_S when set.")
    cancel_running: bool = Field(default=False, description="A new push stops the running build.")
    auto_build: bool = Field(default=True, description="False: pushes are recorded, not built.")
    wait_for_checks: bool = Field(
        default=False, description="Pushes wait (`waiting`) for the commit's GitHub check suites to pass."
    )
    previews: bool = Field(default=False, description="Pull requests build previews (environment pr-<number>).")
    preview_label: str | None = Field(default=None, description="A label that approves a held pull request.")
    archived_at: datetime | None = Field(default=None, description="When the app was removed (it then builds nothing).")
    github_repo_id: int | None = Field(default=None, description="The GitHub repository the app follows, by id.")
    paused: str | None = Field(default=None, description="Why the app does not build (e.g. the App was uninstalled).")

    @classmethod
    def of(cls, app: App, github_repo_id: int | None = None, paused: str | None = None) -> AppView:
        return cls(
            id=app.id,
            name=f"{app.workspace}/{app.name}",
            workspace=app.workspace,
            repo_url=redact_url(app.repo_url),
            repo_full_name=app.repo_full_name,
            branch=app.branch,
            root_dir=app.root_dir,
            watch_paths=list(app.watch_paths),
            dockerfile_path=app.dockerfile_path,
            target=app.target,
            build_timeout_s=app.build_timeout_s,
            cancel_running=app.cancel_running,
            auto_build=app.auto_build,
            wait_for_checks=app.wait_for_checks,
            previews=app.previews,
            preview_label=app.preview_label,
            archived_at=app.archived_at,
            github_repo_id=github_repo_id,
            paused=paused,
        )


class Health(BaseModel):
    status: Literal["ok"]
    database: Literal["ok"]


def _summary_fields(build: Build) -> dict:
    return dict(
        id=build.id,
        app=f"{build.workspace}/{build.app}",
        ref=build.ref,
        commit_sha=build.commit_sha,
        status=build.status,
        trigger=build.trigger,
        error=build.error,
        error_step=build.error_step,
        image_ref=build.image_ref,
        image_digest=build.image_digest,
        held_by_pin=build.held_by_pin,
        image_deleted_at=build.image_deleted_at,
        environment=build.environment,
        pr_number=build.pr_number,
        created_at=build.created_at,
        updated_at=build.updated_at,
    )


def phases(transitions: list[Transition]) -> list[Phase]:
    """Each transition opens a phase that the next one closes; the last stays open."""
    out: list[Phase] = []
    for current, following in zip(transitions, [*transitions[1:], None]):
        ended = following.at if following else None
        out.append(
            Phase(
                state=current.to_state,
                started_at=current.at,
                ended_at=ended,
                duration_s=(ended - current.at).total_seconds() if ended else None,
                reason=current.reason,
                actor=current.actor,
            )
        )
    return out
