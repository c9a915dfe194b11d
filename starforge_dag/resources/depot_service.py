"""DepotBuildService: builds on Depot's remote BuildKit builders, one Depot project per workspace."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import Field

from ..core.errors import PermanentBuildError
from ..core.models import BuildResult, BuildSpec, BuildTicket
from ..depot.api import TOKEN_SETTING
from ..depot.builder import DepotBuilder, DepotBuildInfo, DepotConfig
from ..depot.projects import MemoryProjectStore, ProjectStore
from ..settings import build_secret
from .build_service import BuildService, CancelCheck, LogSink, _never

_memory_projects = MemoryProjectStore()


class DepotBuildService(BuildService):
    """Adapter over `depot.DepotBuilder`: configuration only; a builder and an API connection per build."""

    token: str = Field(default="", description=f"Depot organization token; set it with dg.EnvVar({TOKEN_SETTING!r}).")
    api_url: str = Field(default="https://api.depot.dev", description="Depot's API: https://host or http://host:port.")
    region: str = Field(default="us-east-1", description="Region of the projects created for workspaces.")
    platform: Literal["amd64", "arm64"] = Field(default="amd64", description="Builder platform.")
    endpoint_timeout_s: float = Field(default=300.0, description="Longest wait for a builder (transient error after).")
    ready_timeout_s: float = Field(default=60.0, description="Longest wait for the builder's BuildKit to answer.")
    health_interval_s: float = Field(default=5.0, description="Seconds between health reports during a build.")
    cache_keep_gb: int | None = Field(default=None, description="Cache size of new projects (GB); Depot's default.")
    cache_keep_days: int | None = Field(default=None, description="Cache age of new projects (days); Depot's default.")
    organization_id: str | None = Field(default=None, description="Depot organization, for dashboard links.")
    project_prefix: str = Field(default="starforge", description="New projects are named PREFIX-<workspace>.")
    database_url: str | None = Field(
        default=None, description="Build store URL where each workspace's project id is kept; None: this process only."
    )
    default_workspace: str = Field(default="default", description="Workspace of builds that name none (build-dir).")
    registry_username: str | None = Field(default=None, description="Registry user the builder pushes as.")
    registry_password: str | None = Field(default=None, description="Registry password; set it with dg.EnvVar.")
    insecure_registry: bool = Field(default=False, description="The builder pushes over plain HTTP.")
    network_mode: Literal["none", "host"] = Field(default="none", description="Network of RUN steps.")
    secret_env_prefix: str = Field(
        default="STARFORGE_BUILD_SECRET_", description="A build secret NAME is read from the variable PREFIX+NAME."
    )
    cancel_dir: str = Field(
        default=os.path.join(tempfile.gettempdir(), "starforge-cancel"),
        description="Where cancel() leaves a marker that a run() on this machine stops at.",
    )

    def _config(self) -> DepotConfig:
        if not self.token:
            raise PermanentBuildError(f"no Depot token: set {TOKEN_SETTING}", step="depot")
        return DepotConfig(
            api_url=self.api_url,
            token=self.token,
            region=self.region,
            platform=self.platform,
            endpoint_timeout_s=self.endpoint_timeout_s,
            ready_timeout_s=self.ready_timeout_s,
            health_interval_s=self.health_interval_s,
            cache_keep_gb=self.cache_keep_gb,
            cache_keep_days=self.cache_keep_days,
            project_prefix=self.project_prefix,
            organization_id=self.organization_id,
            network_mode=self.network_mode,
            insecure_registry=self.insecure_registry,
        )

    def _projects(self) -> ProjectStore:
        if not self.database_url:
            return _memory_projects
        from ..store import open_store

        return open_store(self.database_url)

    def _builder(self) -> DepotBuilder:
        credentials = (self.registry_username, self.registry_password or "") if self.registry_username else None
        return DepotBuilder(
            self._config(),
            self._projects(),
            default_workspace=self.default_workspace,
            secret_lookup=lambda name: build_secret(name, self.secret_env_prefix),
            registry_credentials=credentials,
            on_started=self._record,
        )

    def _cancel_marker(self, ticket: BuildTicket) -> Path:
        return Path(self.cancel_dir) / ticket.ref

    def _record(self, spec: BuildSpec, info: DepotBuildInfo) -> None:
        """The Depot build goes on the build record as soon as it exists, so a failed build shows it too."""
        if self.database_url and spec.build_id:
            from ..store import open_store

            open_store(self.database_url).set_backend_build(spec.build_id, info.build_id, info.url)

    def submit(self, spec: BuildSpec) -> BuildTicket:
        return self._builder().submit(spec)

    def run(self, ticket: BuildTicket, on_progress: LogSink, should_cancel: CancelCheck = _never) -> BuildResult:
        marker = self._cancel_marker(ticket)
        try:
            return self._builder().run(ticket, on_progress, should_cancel=lambda: should_cancel() or marker.exists())
        finally:
            marker.unlink(missing_ok=True)

    def cancel(self, ticket: BuildTicket) -> None:
        """Leave a marker the running build checks; it then finishes its Depot build as canceled."""
        marker = self._cancel_marker(ticket)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
