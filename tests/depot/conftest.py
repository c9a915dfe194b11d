"""The build job on the Depot backend: the Depot emulator in front of the local dockerd, the real registry."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from starforge_dag.definitions import depot_service_for, resources_for
from starforge_dag.emulators.depot import DepotEmulator
from starforge_dag.resources.depot_service import DepotBuildService
from starforge_dag.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dagster"))
from dagster_helpers import services_settings

HEALTH_INTERVAL_S = 0.2


@pytest.fixture
def workspace() -> str:
    """A workspace name of this test only: projects and image names never collide between tests."""
    return f"ws-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def depot_settings(tmp_path: Path, services: dict[str, str], depot_emulator: DepotEmulator, monkeypatch) -> Settings:
    monkeypatch.setenv("STARFORGE_DEPOT_TOKEN", depot_emulator.token)
    return services_settings(
        tmp_path / "home",
        services,
        build_backend="depot",
        depot_api_url=depot_emulator.url,
        api_token="token-for-depot-tests",
    )


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def depot_resources(depot_settings: Settings) -> Callable[..., dict[str, Any]]:
    """The product's resources on the depot backend, with a short health interval (and other overrides)."""

    def make(**overrides: Any) -> dict[str, Any]:
        resources = resources_for(depot_settings)
        assert isinstance(resources["build_service"], DepotBuildService)
        resources["build_service"] = depot_service_for(
            depot_settings, **{"health_interval_s": HEALTH_INTERVAL_S, **overrides}
        )
        return resources

    return make
