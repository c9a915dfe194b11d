"""Depot's options, declared once: the Depot build service's configuration and the builder's input."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

TOKEN_SETTING = "STARFORGE_DEPOT_TOKEN"
Platform = Literal["amd64", "arm64"]


class DepotConfig(BaseModel):
    """How to reach Depot and what to ask it for; `token` is the organization token."""

    model_config = ConfigDict(frozen=True)

    api_url: str = Field(default="https://api.depot.dev", description="Depot's API: https://host or http://host:port.")
    token: str = Field(
        default="", repr=False, description=f"Depot organization token (set it through {TOKEN_SETTING})."
    )
    region: str = Field(default="us-east-1", description="Region of the projects created for workspaces.")
    platform: Platform = Field(default="amd64", description="Builder platform.")
    endpoint_timeout_s: float = Field(default=300.0, description="Longest wait for a builder (transient error after).")
    ready_timeout_s: float = Field(default=60.0, description="Longest wait for the builder's BuildKit to answer.")
    not_found_grace_s: float = Field(default=5.0, description="How long a just-created build may be unknown to Depot.")
    health_interval_s: float = Field(default=5.0, description="Seconds between health reports during a build.")
    cache_keep_gb: int | None = Field(default=None, description="Cache size of new projects (GB); Depot's default.")
    cache_keep_days: int | None = Field(default=None, description="Cache age of new projects (days); Depot's default.")
    project_prefix: str = Field(default="starforge", description="New projects are named PREFIX-<workspace>.")
    organization_id: str | None = Field(default=None, description="Depot organization, for dashboard links.")
    dashboard_base: str = Field(default="https://depot.dev", description="Base URL of Depot's dashboard links.")
    network_mode: Literal["none", "host"] = Field(default="none", description="Network of RUN steps.")
    insecure_registry: bool = Field(default=False, description="The builder pushes over plain HTTP.")
    call_timeout_s: float = Field(default=30.0, description="Deadline of one Depot API call.")

    @field_validator("platform", mode="before")
    @classmethod
    def _known_platform(cls, value: object) -> object:
        if value not in get_args(Platform):
            raise ValueError(f"Depot platform {value!r}: use amd64 or arm64")
        return value
