"""The one place that assembles Definitions and picks adapters from the environment."""

from __future__ import annotations

import os
import socket

import dagster as dg

from .assets import app_image
from .jobs import build_job
from .ops.retention import collect_images_job
from .resources.build_service import BuildService
from .resources.build_store import BuildStoreResource
from .resources.fake_build_service import FakeBuildService
from .resources.git import GitSource
from .resources.log_store import LogStore
from .resources.planner import Planner
from .resources.registry import ImageRegistry
from .sensors.builds import build_queue_sensor, build_run_canceled_sensor, build_run_failure_sensor
from .sensors.desired import desired_state_sensor, image_retention_schedule
from .settings import Settings, get_settings


def _from_env(name: str, value: str | None) -> str | dg.EnvVar | None:
    """Secrets and DSNs reach resources as EnvVars, so the UI shows the variable's name, never its value."""
    return dg.EnvVar(name) if os.environ.get(name) else value


def docker_reachable(addr: str) -> bool:
    if not addr.startswith("docker://") and not addr.startswith("unix://"):
        return False
    path = addr.split("://", 1)[1]
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(1)
            sock.connect(path)
        return True
    except OSError:
        return False


def resolve_backend(settings: Settings) -> str:
    backend = settings.build_backend
    if backend == "auto":
        backend = "buildkit" if docker_reachable(settings.buildkit_addr) else "fake"
    if backend not in ("buildkit", "fake", "depot"):
        raise ValueError(f"STARFORGE_BUILD_BACKEND={backend!r}: use buildkit, depot, fake or auto")
    if backend == "depot":
        raise ValueError("STARFORGE_BUILD_BACKEND=depot is not available in this release; use buildkit or fake")
    return backend


def build_service_for(settings: Settings) -> BuildService:
    if resolve_backend(settings) == "fake":
        return FakeBuildService(
            outcome=settings.fake_outcome,
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
        registry_password=_from_env("STARFORGE_REGISTRY_PASSWORD", None),
        network_mode=settings.build_network,
    )


def resources_for(settings: Settings) -> dict[str, object]:
    """Same keys in every environment; only the adapters behind them change."""
    database_url = _from_env("STARFORGE_DATABASE_URL", settings.resolved_database_url)
    backend = resolve_backend(settings)
    return {
        "build_service": build_service_for(settings),
        "build_store": BuildStoreResource(database_url=database_url, build_timeout_s=settings.build_timeout_s),
        "log_store": LogStore(
            dsn=_from_env("STARFORGE_LOG_STORE_DSN", settings.log_store_dsn), database_url=database_url
        ),
        "git": GitSource(
            workdir=str(settings.workdir),
            allowed_schemes=list(settings.git_policy.schemes),
            allowed_hosts=list(settings.git_policy.hosts),
            timeout_s=settings.git_checkout_timeout_s,
        ),
        "registry": ImageRegistry(
            prefix=settings.registry,
            verify_pushes=backend != "fake",
            username=settings.registry_username,
            password=_from_env("STARFORGE_REGISTRY_PASSWORD", None),
        ),
        "planner": Planner(
            builder_image=settings.builder_image, runtime_image=settings.runtime_image, network=settings.build_network
        ),
    }


@dg.definitions
def defs() -> dg.Definitions:
    settings = get_settings()
    return dg.Definitions(
        assets=[app_image],
        jobs=[build_job, collect_images_job],
        sensors=[build_queue_sensor, build_run_failure_sensor, build_run_canceled_sensor, desired_state_sensor],
        schedules=[image_retention_schedule(settings.retain_builds, settings.retain_desired_days)],
        resources=resources_for(settings),
    )
