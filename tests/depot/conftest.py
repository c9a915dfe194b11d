"""The build job on the Depot backend: the Depot emulator in front of the local dockerd, the real registry (the
instance and pipeline fixtures are in tests/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.pipeline import Pipeline, services_settings

from starforge_dag.definitions import depot_service_for
from starforge_dag.emulators.depot import DepotEmulator
from starforge_dag.resources.depot_service import DepotBuildService
from starforge_dag.settings import Settings

HEALTH_INTERVAL_S = 0.2


@pytest.fixture
def workspace() -> str:
    """A workspace name of this test only: projects and image names never collide between tests."""
    return f"ws-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def settings(tmp_path: Path, services: dict[str, str], depot_emulator: DepotEmulator, monkeypatch) -> Settings:
    """The depot backend against this test's emulator, the token through the environment as in production."""
    monkeypatch.setenv("STARFORGE_DEPOT_TOKEN", depot_emulator.token)
    return services_settings(
        tmp_path / "home",
        services,
        build_backend="depot",
        depot_api_url=depot_emulator.url,
        api_token="token-for-depot-tests",
    )


@pytest.fixture
def depot_resources(pipeline: Pipeline) -> Callable[..., dict[str, Any]]:
    """The product's resources on the depot backend, with a short health interval (and other overrides)."""

    def make(**overrides: Any) -> dict[str, Any]:
        assert isinstance(pipeline.resources()["build_service"], DepotBuildService)
        service = depot_service_for(pipeline.settings, **{"health_interval_s": HEALTH_INTERVAL_S, **overrides})
        return pipeline.resources(build_service=service)

    return make


@pytest.fixture
def depot_env(settings: Settings, monkeypatch) -> Settings:
    """The depot settings as environment variables (a re-executed run reads them like a code location)."""
    for name, value in {
        "STARFORGE_HOME": str(settings.home),
        "STARFORGE_BUILD_BACKEND": "depot",
        "STARFORGE_DEPOT_API_URL": settings.depot_api_url,
        "STARFORGE_REGISTRY": settings.registry,
        "STARFORGE_BUILDER_IMAGE": settings.builder_image,
        "STARFORGE_RUNTIME_IMAGE": settings.runtime_image,
        "STARFORGE_GIT_ALLOWED_SCHEMES": "file",
    }.items():
        monkeypatch.setenv(name, value)
    return settings
