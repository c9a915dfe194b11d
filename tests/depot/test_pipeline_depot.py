"""build_job on DepotBuildService against the Depot emulator: webhook → Depot build → pushed image → desired state."""

from __future__ import annotations

import json
import threading
import uuid

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from starforge_dag.api import create_app
from starforge_dag.cli import main
from starforge_dag.core.models import ImageRef
from starforge_dag.core.states import BuildState
from starforge_dag.emulators.depot import BuildRecord, DepotEmulator
from starforge_dag.ops.backend_build import BACKEND_BUILD_TAG, BACKEND_URL_TAG
from starforge_dag.store import open_store

pytestmark = pytest.mark.integration


def failures(result) -> list[str]:
    return [e.message or "" for e in result.all_events if e.is_failure]


def assert_lifecycle(build: BuildRecord, *, success: bool) -> None:
    """Depot's order: created → endpoint → released → finished, health reported, the real outcome."""
    assert build.finished, build
    assert build.result == ("success" if success else "error"), build
    assert build.health_reports >= 1
    if build.endpoint_at is not None:
        assert build.created_at <= build.endpoint_at <= build.released_at <= build.finished_at  # type: ignore[operator]
    assert build.released


def dockerfile_app(git_repo, base_image: str, name: str, run: str = "echo built-on-depot") -> tuple[str, str]:
    repo = git_repo(name)
    files = {"Dockerfile": f"FROM {base_image}\nWORKDIR /srv\nCOPY . .\nRUN {run}\n", "nonce.txt": uuid.uuid4().hex}
    sha = repo.commit(files)  # new content: the shared daemon has nothing after FROM cached, so steps really run
    return repo.url, sha


def test_dockerfile_app_builds_on_depot_and_moves_desired_state(
    settings, depot_resources, depot_emulator: DepotEmulator, pipeline, git_repo, base_image, workspace
):
    store = open_store(settings.resolved_database_url)
    url, sha = dockerfile_app(git_repo, base_image, "shop")
    app = store.add_app(workspace, "shop", url, "main", repo_full_name=f"{workspace}/shop")
    resources = depot_resources()

    build_id = pipeline.push(url, f"{workspace}/shop", sha)["builds"][0]
    (result,) = pipeline.drain(resources)

    assert result.success, failures(result)
    build = store.get_build(build_id)
    assert build.status == BuildState.SUCCEEDED
    (depot_build,) = depot_emulator.builds()
    assert_lifecycle(depot_build, success=True)
    assert depot_build.solves[-1].exporters == ["image"] and depot_build.solves[-1].pushed
    registry_digest = resources["registry"].manifest_digest(ImageRef.parse(build.image_ref))
    assert build.image_digest == registry_digest == depot_build.solves[-1].digest
    assert store.desired_state(app.id).image_digest == registry_digest

    # The operator can go from the build and the run to the Depot build.
    org, project = depot_emulator.organization_id, depot_build.project_id
    dashboard = f"https://depot.dev/orgs/{org}/projects/{project}/builds/{depot_build.build_id}"
    assert (build.backend_build_id, build.backend_url) == (depot_build.build_id, dashboard)
    run = pipeline.instance.get_run_by_id(result.run_id)
    assert run.tags[BACKEND_BUILD_TAG] == depot_build.build_id and run.tags[BACKEND_URL_TAG] == dashboard
    metadata = [
        e.event_specific_data.metadata
        for e in result.all_events
        if e.event_type_value == "STEP_OUTPUT" and e.step_key == "await_build"
    ][0]
    assert metadata["backend_build_id"].value == depot_build.build_id
    assert metadata["backend_url"].value == dashboard
    with TestClient(create_app(settings)) as client:
        auth = {"Authorization": f"Bearer {settings.api_token.get_secret_value()}"}
        answer = client.get(f"/builds/{build_id}", headers=auth).json()
    assert (answer["backend_build_id"], answer["backend_url"]) == (depot_build.build_id, dashboard)
    status = CliRunner().invoke(main, ["status", str(build_id)], env={"STARFORGE_HOME": str(settings.home)})
    assert json.loads(status.output)["backend_url"] == dashboard


def test_planned_app_is_solved_as_llb_on_the_depot_builder(
    settings, depot_resources, depot_emulator, pipeline, git_repo, workspace
):
    store = open_store(settings.resolved_database_url)
    repo = git_repo("tool")
    sha = repo.commit(
        {"start.sh": "#!/bin/sh\necho serving\n", "railpack.json": '{"deploy": {"variables": {"A": "b"}}}'}
    )
    app = store.add_app(workspace, "tool", repo.url, "main", repo_full_name=f"{workspace}/tool")
    resources = depot_resources()

    pipeline.push(repo.url, f"{workspace}/tool", sha)
    (result,) = pipeline.drain(resources)

    assert result.success, failures(result)
    assert result.output_for_node("railpack_frontend").frontend == "llb"
    (depot_build,) = depot_emulator.builds()
    assert_lifecycle(depot_build, success=True)
    desired = store.desired_state(app.id)
    assert desired.image_digest == depot_build.solves[-1].digest
    assert desired.image_digest == resources["registry"].manifest_digest(ImageRef.parse(desired.image_ref))


def test_failing_run_step_is_a_user_error_and_the_depot_build_finishes_with_it(
    settings, depot_resources, depot_emulator, pipeline, git_repo, base_image, workspace
):
    store = open_store(settings.resolved_database_url)
    url, sha = dockerfile_app(git_repo, base_image, "bad", run="echo about to fail && exit 3")
    app = store.add_app(workspace, "bad", url, "main", repo_full_name=f"{workspace}/bad")

    build_id = pipeline.push(url, f"{workspace}/bad", sha)["builds"][0]
    (result,) = pipeline.drain(depot_resources())

    assert not result.success
    build = store.get_build(build_id)
    assert build.status == BuildState.FAILED
    assert "exit code: 3" in build.error and "RUN echo about to fail" in build.error_step
    (depot_build,) = depot_emulator.builds()  # a user error is not retried
    assert_lifecycle(depot_build, success=False)
    assert "exit code: 3" in depot_build.error
    assert store.desired_state(app.id) is None


def test_cancel_stops_the_solve_and_finishes_the_depot_build_as_canceled(
    settings, depot_resources, depot_emulator, pipeline, git_repo, base_image, workspace
):
    store = open_store(settings.resolved_database_url)
    url, sha = dockerfile_app(git_repo, base_image, "slow", run="echo sleeping && sleep 120")
    store.add_app(workspace, "slow", url, "main", repo_full_name=f"{workspace}/slow")
    build_id = pipeline.push(url, f"{workspace}/slow", sha)["builds"][0]
    results: list = []
    runner = threading.Thread(target=lambda: results.extend(pipeline.drain(depot_resources())))
    runner.start()

    def sleeping(emulator: DepotEmulator) -> bool:
        return any("sleep 120" in s.name and s.started_at for b in emulator.builds() for s in b.steps.values())

    assert depot_emulator.wait_for(sleeping, timeout=60)
    store.request_cancel(build_id, actor="test")
    runner.join(timeout=30)

    assert not runner.is_alive(), "the solve did not stop within seconds of the cancel"
    assert store.get_build(build_id).status == BuildState.CANCELED
    (depot_build,) = depot_emulator.builds()
    assert_lifecycle(depot_build, success=False)
    assert depot_build.error.startswith("canceled")


def test_a_slow_builder_and_the_not_found_race_still_build(
    settings, depot_resources, depot_emulator, pipeline, git_repo, base_image, workspace
):
    store = open_store(settings.resolved_database_url)
    url, sha = dockerfile_app(git_repo, base_image, "patient")
    store.add_app(workspace, "patient", url, "main", repo_full_name=f"{workspace}/patient")
    depot_emulator.faults.pending_messages = 3
    depot_emulator.faults.pending_delay_s = 0.4
    depot_emulator.faults.not_found_first_endpoint = True

    build_id = pipeline.push(url, f"{workspace}/patient", sha)["builds"][0]
    (result,) = pipeline.drain(depot_resources())

    assert result.success, failures(result)
    (depot_build,) = depot_emulator.builds()  # NOT_FOUND is retried within the same Depot build
    assert depot_build.endpoint_requests == 2
    assert_lifecycle(depot_build, success=True)
    assert store.get_build(build_id).backend_build_id == depot_build.build_id


@pytest.mark.parametrize("fault", ["unavailable", "dropped_endpoint"])
def test_transient_faults_retry_with_a_new_depot_build_and_finish_the_old_one(
    fault, settings, depot_resources, depot_emulator, pipeline, git_repo, base_image, workspace
):
    store = open_store(settings.resolved_database_url)
    url, sha = dockerfile_app(git_repo, base_image, "flaky")
    store.add_app(workspace, "flaky", url, "main", repo_full_name=f"{workspace}/flaky")
    if fault == "unavailable":
        depot_emulator.faults.unavailable_once = {"GetEndpoint"}
    else:
        depot_emulator.faults.drop_endpoint_during_solve = True

    build_id = pipeline.push(url, f"{workspace}/flaky", sha)["builds"][0]
    (result,) = pipeline.drain(depot_resources())

    assert result.success, failures(result)
    first, second = sorted(depot_emulator.builds(), key=lambda b: b.created_at)
    assert first.finished and first.result == "error" and first.released
    assert "unavailable" in first.error.lower()
    assert_lifecycle(second, success=True)
    build = store.get_build(build_id)
    assert build.status == BuildState.SUCCEEDED and build.backend_build_id == second.build_id


def test_a_refused_token_fails_for_good_naming_the_setting(
    settings, depot_resources, depot_emulator, pipeline, git_repo, base_image, workspace
):
    store = open_store(settings.resolved_database_url)
    url, sha = dockerfile_app(git_repo, base_image, "denied")
    store.add_app(workspace, "denied", url, "main", repo_full_name=f"{workspace}/denied")
    depot_emulator.faults.reject_tokens = True

    build_id = pipeline.push(url, f"{workspace}/denied", sha)["builds"][0]
    (result,) = pipeline.drain(depot_resources())

    assert not result.success
    build = store.get_build(build_id)
    assert build.status == BuildState.FAILED
    assert "STARFORGE_DEPOT_TOKEN" in build.error and "UNAUTHENTICATED" in build.error
    assert depot_emulator.calls("CreateProject") == 1  # permanent: not retried
    assert depot_emulator.builds() == []


def test_two_workspaces_get_two_projects_and_each_reuses_its_own(
    settings, depot_resources, depot_emulator, pipeline, git_repo, base_image, workspace
):
    store = open_store(settings.resolved_database_url)
    other = workspace + "-b"
    repos = {}
    for ws in (workspace, other):
        repo = repos[ws] = git_repo(f"app-{ws}")
        sha = repo.commit({"Dockerfile": f"FROM {base_image}\nRUN echo {ws}\n"})
        store.add_app(ws, "app", repo.url, "main", repo_full_name=f"{ws}/app")
        pipeline.push(repo.url, f"{ws}/app", sha)
    resources = depot_resources()
    assert all(r.success for r in pipeline.drain(resources))
    projects = {p.name: p.project_id for p in depot_emulator.projects()}
    assert set(projects) == {f"starforge-{workspace}", f"starforge-{other}"}

    sha = repos[workspace].commit({"y.txt": "another commit"})
    pipeline.push(repos[workspace].url, f"{workspace}/app", sha)
    assert all(r.success for r in pipeline.drain(resources))

    assert len(depot_emulator.projects()) == 2
    by_project = [b.project_id for b in sorted(depot_emulator.builds(), key=lambda b: b.created_at)]
    assert by_project.count(projects[f"starforge-{workspace}"]) == 2
