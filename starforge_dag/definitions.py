"""The one place that assembles Definitions and picks adapters from the environment."""

from __future__ import annotations

from typing import Any

import dagster as dg

from .assets import app_image
from .builders.wiring import buildkit_options, depot_config, fake_options, resolve_backend
from .depot.config import TOKEN_SETTING
from .jobs import build_job
from .ops.retention import collect_images_job
from .resources.build_service import BuildService
from .resources.build_store import BuildStoreResource
from .resources.fake_build_service import FakeBuildService
from .resources.git import GitResource
from .resources.github import GitHubAppResource
from .resources.log_store import LogStoreResource
from .resources.notifications import NotificationsResource
from .resources.planner import PlannerResource
from .resources.registry import RegistryResource
from .sensors.builds import (
    build_queue_sensor,
    build_reconcile_sensor,
    build_run_canceled_sensor,
    build_run_failure_sensor,
)
from .sensors.checks import checks_sensor_for
from .sensors.desired import desired_state_sensor, image_retention_schedule
from .sensors.github import commit_status_sensor, deployment_sensor, github_reconcile_sensor_every
from .sensors.notifications import notification_sensor
from .settings import Settings, get_settings


def _by_name(settings: Settings, field: str, default: str) -> str | dg.EnvVar:
    """A DSN read from the environment reaches resources as an EnvVar (it may hold a password); else the default."""
    name = settings.env_var(field)
    return dg.EnvVar(name) if name else default


def _secret(settings: Settings, field: str) -> dg.EnvVar | None:
    """Secrets reach resources only as EnvVars, so config and the UI show the variable's name, never its value."""
    name = settings.env_var(field)
    if name:
        return dg.EnvVar(name)
    if getattr(settings, field).get_secret_value():
        raise ValueError(f"{field} must come from the environment (STARFORGE_{field.upper()}), never as a value")
    return None


def build_store_for(settings: Settings) -> BuildStoreResource:
    return BuildStoreResource(
        database_url=_by_name(settings, "database_url", settings.resolved_database_url),
        build_timeout_s=settings.build_timeout_s,
        queue_wait_s=settings.sensor_wait_s,
        secrets_key=_secret(settings, "secrets_key") or "",
        home=str(settings.resolved_home),
    )


def registry_for(settings: Settings, backend: str) -> RegistryResource:
    return RegistryResource(
        prefix=settings.registry,
        verify_pushes=backend != "fake",
        username=settings.registry_username,
        password=_secret(settings, "registry_password"),
    )


def build_service_for(settings: Settings, backend: str | None = None) -> BuildService:
    backend = backend or resolve_backend(settings)
    if backend == "depot":
        return depot_service_for(settings)
    if backend == "fake":
        return FakeBuildService(**fake_options(settings).model_dump())
    from .resources.buildkit_service import BuildKitBuildService

    return BuildKitBuildService(**buildkit_options(settings).model_dump(), registry=registry_for(settings, backend))


def depot_service_for(settings: Settings, **overrides: Any) -> BuildService:
    """Depot: the token is an EnvVar (the UI shows its name); each workspace's project id lives in the build store."""
    from .resources.depot_service import DepotBuildService

    fields: dict[str, Any] = dict(
        depot_config(settings).model_dump(exclude={"token"}),
        token=_secret(settings, "depot_token") or dg.EnvVar(TOKEN_SETTING),
        build_store=build_store_for(settings),
        registry=registry_for(settings, "depot"),
        default_workspace=settings.default_workspace,
    )
    return DepotBuildService(**{**fields, **overrides})


def resources_for(settings: Settings) -> dict[str, object]:
    """Same keys in every environment; only the adapters behind them change."""
    backend = resolve_backend(settings)
    build_store = build_store_for(settings)
    return {
        "build_service": build_service_for(settings, backend),
        "build_store": build_store,
        "log_store": LogStoreResource(
            dsn=_by_name(settings, "log_store_dsn", settings.log_store_dsn), build_store=build_store
        ),
        "git": GitResource(
            workdir=str(settings.workdir),
            allowed_schemes=list(settings.git_policy.schemes),
            allowed_hosts=list(settings.git_policy.hosts),
            timeout_s=settings.git_checkout_timeout_s,
        ),
        "registry": registry_for(settings, backend),
        "github": GitHubAppResource(
            app_id=settings.github_app_id,
            private_key=_secret(settings, "github_app_private_key"),
            api_url=settings.github_api_url,
            status_context=settings.github_status_context,
            public_url=settings.public_url,
            dagster_url=settings.dagster_url,
            page_key=_secret(settings, "page_key"),
            home=str(settings.resolved_home),
            page_link_days=settings.page_link_days,
        ),
        "notifications": NotificationsResource(
            home=str(settings.resolved_home),
            secrets_key=_secret(settings, "secrets_key") or "",
            allow_private=settings.webhook_allow_private,
            allowed_cidrs=settings.webhook_allowed_cidrs,
            timeout_s=settings.webhook_timeout_s,
            public_url=settings.public_url,
            page_key=_secret(settings, "page_key"),
            page_link_days=settings.page_link_days,
        ),
        "planner": PlannerResource(
            builder_image=settings.builder_image, runtime_image=settings.runtime_image, network=settings.build_network
        ),
    }


@dg.definitions
def defs() -> dg.Definitions:
    settings = get_settings()
    return dg.Definitions(
        assets=[app_image],
        jobs=[build_job, collect_images_job],
        sensors=[
            build_queue_sensor,
            build_reconcile_sensor,
            build_run_failure_sensor,
            build_run_canceled_sensor,
            commit_status_sensor,
            deployment_sensor,
            github_reconcile_sensor_every(settings.github_reconcile_interval_s),
            checks_sensor_for(settings.checks_timeout_s, settings.checks_grace_s),
            desired_state_sensor,
            notification_sensor,
        ],
        schedules=[image_retention_schedule(settings.retain_builds, settings.retain_desired_days)],
        resources=resources_for(settings),
    )
