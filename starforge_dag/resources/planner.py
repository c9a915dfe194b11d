"""The Railpack-compatible planner as a resource: base images are configuration."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Literal

import dagster as dg
from pydantic import BaseModel, Field

from ..core.errors import UserBuildError


class PlannedBuild(BaseModel):
    """A plan, the LLB that realises it, and what the UI shows about it."""

    plan: dict[str, Any]
    providers: list[str]
    start_command: str | None
    warnings: list[str]
    definition: bytes
    image_config: dict[str, Any]
    secrets: list[str]


class PlannerResource(dg.ConfigurableResource):
    """Plans apps without a Dockerfile; builder/runtime images stand in for Railpack's own."""

    builder_image: str = Field(description="Image every build step runs in.")
    runtime_image: str = Field(description="Base image of the deployed image.")
    network: Literal["none", "host", "sandbox"] = Field(
        default="none",
        description="Network of build steps: none, host (needs the network.host entitlement) or sandbox.",
    )

    def plan(
        self,
        app_dir: str,
        env: Mapping[str, str] | None = None,
        secret_names: Collection[str] = (),
        hash_values: Mapping[str, str] | None = None,
    ) -> PlannedBuild:
        """Plan with the app's variables (`secret_names` are secret) over the host's RAILPACK_* defaults.

        A step's cache key follows `hash_values` (by default the values themselves): pass keyed fingerprints so the
        definition a remote builder sees cannot be used to test guesses of a secret.
        """
        from ..railpack.generate import PlanError, generate_plan
        from ..railpack.llb import plan_to_llb
        from ..settings import railpack_environ

        try:
            result = generate_plan(
                app_dir,
                env=env,
                builder_image=self.builder_image,
                runtime_image=self.runtime_image,
                secrets=secret_names,
                platform_options=railpack_environ(),
            )
        except PlanError as exc:
            raise UserBuildError(exc.message, step="plan") from None
        llb = plan_to_llb(
            result.plan,
            builder_image=self.builder_image,
            runtime_image=self.runtime_image,
            network=self.network,
            secret_values=env if hash_values is None else hash_values,
        )
        return PlannedBuild(
            plan=result.plan.model_dump(mode="json", by_alias=True, exclude_none=True),
            providers=list(result.info.get("detectedProviders", [])),
            start_command=result.plan.deploy.start_command,
            warnings=list(result.info.get("warnings", [])),
            definition=llb.definition,
            image_config=llb.image_config,
            secrets=list(result.plan.secrets),
        )
