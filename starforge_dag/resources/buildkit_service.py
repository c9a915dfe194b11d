"""BuildKitBuildService: builds on a self-hosted buildkitd or a Docker daemon's embedded BuildKit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from ..builders.wiring import BuildKitOptions, buildkit_builder
from ..settings import BUILD_SECRET_PREFIX, build_secret
from .build_service import BuildService, options_of
from .registry import RegistryResource

if TYPE_CHECKING:  # the BuildKit client (grpc, protobuf, h2) loads when a build needs it, not with the definitions
    from ..buildkit.builder import BuildKitBuilder


class BuildKitBuildService(BuildService, BuildKitOptions):
    """Configuration for a BuildKitBuilder, opened per op: the build logic lives in `buildkit.builder`."""

    registry: RegistryResource | None = Field(
        default=None, description="The registry images are pushed to; its credentials authenticate pushes."
    )
    secret_env_prefix: str = Field(
        default=BUILD_SECRET_PREFIX, description="A build secret NAME is read from the variable PREFIX+NAME."
    )

    def builder(self) -> BuildKitBuilder:
        return buildkit_builder(
            options_of(BuildKitOptions, self),
            registry_auth=self.registry.auth() if self.registry else None,
            secret_lookup=lambda name: build_secret(name, self.secret_env_prefix),
        )
