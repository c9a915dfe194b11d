"""One Depot project per workspace, kept in the build store: created once even when first builds race."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from starforge_dag.depot.builder import DepotBuilder, DepotConfig
from starforge_dag.depot.projects import project_name
from starforge_dag.emulators.depot import DepotEmulator
from starforge_dag.store import BuildStore

pytestmark = pytest.mark.integration


def test_concurrent_first_builds_of_a_workspace_create_exactly_one_project(database_url, depot_emulator):
    config = DepotConfig(api_url=depot_emulator.url, token=depot_emulator.token, region="eu-central-1", cache_keep_gb=7)
    start = threading.Barrier(8)

    def first_build(_: int) -> str:
        depot = DepotBuilder(config, BuildStore(database_url))  # each as if in its own run worker
        start.wait()
        return depot.project_for("Acme Corp").project_id

    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(first_build, range(8)))

    (project,) = depot_emulator.projects()
    assert ids == {project.project_id}
    assert (project.name, project.region_id, project.keep_gb) == ("starforge-acme-corp", "eu-central-1", 7)
    assert depot_emulator.calls("CreateProject") == 1


def test_a_known_workspace_reuses_its_project_without_asking_depot(database_url, depot_emulator: DepotEmulator):
    config = DepotConfig(api_url=depot_emulator.url, token=depot_emulator.token)
    first = DepotBuilder(config, BuildStore(database_url)).project_for("web")
    again = DepotBuilder(config, BuildStore(database_url)).project_for("web")
    other = DepotBuilder(config, BuildStore(database_url)).project_for("api")

    assert again == first and other.project_id != first.project_id
    assert first.organization_id == depot_emulator.organization_id
    assert depot_emulator.calls("CreateProject") == 2


def test_project_names_are_readable_and_stable():
    assert project_name("Acme Corp/Prod") == "starforge-acme-corp-prod"
    assert project_name("", prefix="") == "default"
