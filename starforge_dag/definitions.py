"""The one place that assembles Definitions and picks adapters from the environment."""

from __future__ import annotations

from typing import Any

import dagster as dg

from .assets import app_image
from .backend import resolve_backend
from .jobs import build_job
from .ops.retention import collect_images_job
from .resources.build_service import BuildService
from .resources.build_store import BuildStoreResource
from .resources.fake_build_service import FakeBuildService, Outcome
from .resources.git import GitResource
from .resources.github import GitHubAppResource
from .resources.log_store import LogStoreResource
from .resources.planner import PlannerResource
from .resources.registry import RegistryResource
from .sensors.builds import (
    build_queue_sensor,
    build_reconcile_sensor,
    build_run_canceled_sensor,
    build_run_failure_sensor,
)
from .sensors.desired import desired_state_sensor, image_retention_schedule
from .sensors.github import commit_status_sensor, github_reconcile_sensor_every
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


def build_service_for(settings: Settings, backend: str | None = None) -> BuildService:
    backend = backend or resolve_backend(settings)
    if backend == "depot":
        return depot_service_for(settings)
    if backend == "fake":
        return FakeBuildService(
            outcome=Outcome(settings.fake_outcome),
            fail_until_file=settings.fake_fail_until_file,
            step_delay_s=settings.fake_step_delay_s,
        )
    from .resources.buildkit_service import BuildKitBuildService

    return BuildKitBuildService(
        address=settings.buildkit_addr,
        tls_ca=settings.buildkit_tls_ca,
        tls_cert=settings.buildkit_tls_cert,
        tls_key=settings.buildkit_tls_key,
        tls_server_name=settings.buildkit_tls_server_name,
        registry_username=settings.registry_username,
        registry_password=_secret(settings, "registry_password"),
        network_mode=settings.build_network,
    )


def depot_service_for(settings: Settings, **overrides: Any) -> BuildService:
    """Depot: the token is an EnvVar (the UI shows its name); each workspace's project id lives in the build store."""
    from .resources.depot_service import DepotBuildService

    fields: dict[str, Any] = dict(
        token=_secret(settings, "depot_token") or dg.EnvVar("STARFORGE_DEPOT_TOKEN"),
        api_url=settings.depot_api_url,
        region=settings.depot_region,
        platform=settings.depot_platform,
        endpoint_timeout_s=settings.depot_endpoint_timeout_s,
        organization_id=settings.depot_org,
        cache_keep_gb=settings.depot_cache_keep_gb,
        database_url=_by_name(settings, "database_url", settings.resolved_database_url),
        default_workspace=settings.default_workspace,
        registry_username=settings.registry_username,
        registry_password=_secret(settings, "registry_password"),
        network_mode=settings.build_network,
    )
    return DepotBuildService(**{**fields, **overrides})


def resources_for(settings: Settings) -> dict[str, object]:
    """Same keys in every environment; only the adapters behind them change."""
    database_url = _by_name(settings, "database_url", settings.resolved_database_url)
    backend = resolve_backend(settings)
    return {
        "build_service": build_service_for(settings, backend),
        "build_store": BuildStoreResource(database_url=database_url, build_timeout_s=settings.build_timeout_s),
        "log_store": LogStoreResource(
            dsn=_by_name(settings, "log_store_dsn", settings.log_store_dsn), database_url=database_url
        ),
        "git": GitResource(
            workdir=str(settings.workdir),
            allowed_schemes=list(settings.git_policy.schemes),
            allowed_hosts=list(settings.git_policy.hosts),
            timeout_s=settings.git_checkout_timeout_s,
        ),
        "registry": RegistryResource(
            prefix=settings.registry,
            verify_pushes=backend != "fake",
            username=settings.registry_username,
            password=_secret(settings, "registry_password"),
        ),
        "github": GitHubAppResource(
            app_id=settings.github_app_id,
            private_key=_secret(settings, "github_app_private_key"),
            api_url=settings.github_api_url,
            status_context=settings.github_status_context,
            public_url=settings.public_url,
            dagster_url=settings.dagster_url,
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
            github_reconcile_sensor_every(settings.github_reconcile_interval_s),
            desired_state_sensor,
        ],
        schedules=[image_retention_schedule(settings.retain_builds, settings.retain_desired_days)],
        resources=resources_for(settings),
    )
