"""Request and response bodies of app management and variables; a secret's value appears in requests only."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from starforge_dag.core.app_settings import MAX_BUILD_TIMEOUT_S
from starforge_dag.variables.models import VariableVersion

from .schemas import AppView, EnqueueResult


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AppSettings(_Body):
    """Settings shared by registration and changes; every one is validated as registration validates it."""

    repo_url: str | None = Field(
        default=None, description="Clone URL; scheme and host must be allowed (STARFORGE_GIT_ALLOWED_*)."
    )
    branch: str | None = Field(default=None, description="Branch whose pushes are built (default main).")
    root_dir: str | None = Field(default=None, description="The app's directory inside the repository.")
    dockerfile_path: str | None = Field(default=None, description="Dockerfile path relative to the root dir.")
    watch_paths: list[str] | None = Field(default=None, description="Only pushes touching these globs build.")
    target: str | None = Field(default=None, description="Dockerfile stage to build.")
    build_timeout_s: int | None = Field(
        default=None, description=f"Seconds (1-{MAX_BUILD_TIMEOUT_S}); overrides STARFORGE_BUILD_TIMEOUT_S."
    )
    cancel_running: bool | None = Field(default=None, description="A new push stops the running build.")
    auto_build: bool | None = Field(default=None, description="False: pushes are recorded, not built.")
    wait_for_checks: bool | None = Field(
        default=None,
        description="Pushes wait (`waiting`) until the commit's GitHub check suites completed, and build only if "
        "they passed.",
    )
    previews: bool | None = Field(
        default=None, description="True: pull requests build previews, each in its environment pr-<number>."
    )
    preview_label: str | None = Field(
        default=None, description="A label that, added to a held pull request, approves its head commit."
    )


class AppCreate(AppSettings):
    workspace: str = Field(default="default", description="Workspace (letters, digits, '.', '_', '-').")
    name: str = Field(description="App name, unique in its workspace.")
    github_repo: str | None = Field(
        default=None,
        description="owner/name of a GitHub repository reached through the GitHub App, instead of repo_url.",
    )


class AppPatch(AppSettings):
    """Only the fields given change; null clears dockerfile_path, target, build_timeout_s and preview_label."""


class AppRemoved(BaseModel):
    app: AppView
    stopped: list[int] = Field(description="Builds that were queued or running and were stopped.")


class VariableWrite(_Body):
    value: str = Field(description="Up to 64 KiB, no NUL. A secret's value is never shown again.")
    secret: bool = Field(default=False, description="Sealed at rest, masked in logs, never returned.")
    for_previews: bool = Field(
        default=False,
        description="A secret that pull-request previews get too (never a fork's); plain variables always reach them.",
    )
    rebuild: bool = Field(
        default=False, description="Then queue a build of the current commit (every app's, for a workspace)."
    )
    by: str | None = Field(default=None, max_length=100, description="Who asks (recorded as the actor api:<by>).")


class VariableView(BaseModel):
    name: str
    scope: Literal["app", "workspace"]
    workspace: str
    app: str | None = Field(description="workspace/app, or None for a workspace's variable.")
    secret: bool
    value: str | None = Field(description="The value of a plain variable; always None for a secret.")
    fingerprint: str | None = Field(description="Keyed HMAC-SHA256 of the value: it changes when the value does.")
    version: int
    for_previews: bool = Field(default=False, description="A secret previews of same-repository branches get.")
    deleted: bool = False
    actor: str
    created_at: datetime

    @classmethod
    def of(cls, v: VariableVersion) -> VariableView:
        return cls(
            name=v.name,
            scope=v.scope,
            workspace=v.workspace,
            app=f"{v.workspace}/{v.app}" if v.app else None,
            secret=v.secret,
            value=None if v.secret else v.value,
            fingerprint=v.fingerprint,
            version=v.version,
            for_previews=v.for_previews,
            deleted=v.deleted,
            actor=v.actor,
            created_at=v.created_at,
        )


class VariableChange(BaseModel):
    variable: VariableView
    builds: list[EnqueueResult] = Field(default_factory=list, description="Builds queued by rebuild: true.")
