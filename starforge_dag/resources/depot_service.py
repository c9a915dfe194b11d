"""DepotBuildService: builds on Depot's remote BuildKit builders, one Depot project per workspace."""

from __future__ import annotations

from pydantic import Field

from ..builders.wiring import depot_builder
from ..core.errors import PermanentBuildError
from ..core.models import BuildSpec
from ..depot.builder import DepotBuilder, DepotBuildInfo
from ..depot.config import TOKEN_SETTING, DepotConfig
from ..settings import BUILD_SECRET_PREFIX, build_secret
from .build_service import BuildService, options_of
from .build_store import BuildStoreResource
from .registry import RegistryResource


class DepotBuildService(BuildService, DepotConfig):
    """Depot's options plus where projects are kept and images pushed; a builder and an API connection per op."""

    build_store: BuildStoreResource = Field(description="Keeps each workspace's Depot project and each Depot build.")
    registry: RegistryResource | None = Field(
        default=None, description="The registry the builder pushes to; its credentials authenticate pushes."
    )
    default_workspace: str = Field(default="default", description="Workspace of builds that name none (build-dir).")
    secret_env_prefix: str = Field(
        default=BUILD_SECRET_PREFIX, description="A build secret NAME is read from the variable PREFIX+NAME."
    )

    def builder(self) -> DepotBuilder:
        if not self.token:
            raise PermanentBuildError(f"no Depot token: set {TOKEN_SETTING}", step="depot")
        return depot_builder(
            options_of(DepotConfig, self),
            self.build_store.depot(),
            default_workspace=self.default_workspace,
            registry_auth=self.registry.auth() if self.registry else None,
            secret_lookup=lambda name: build_secret(name, self.secret_env_prefix),
            on_started=self._record,
        )

    def _record(self, spec: BuildSpec, info: DepotBuildInfo) -> None:
        """The Depot build goes on the build record as soon as it exists, so a failed build shows it too."""
        if spec.build_id:
            self.build_store.depot().set_backend_build(spec.build_id, info.build_id, info.url)
