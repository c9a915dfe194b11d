"""Operating the Depot backend: a fake in users' own tests, re-execution from failure, and no secret anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest
from fastapi.testclient import TestClient
from support.deliveries import WEBHOOK_SECRET
from support.pipeline import Pipeline, environment_build_job

from starforge_dag.api import create_app
from starforge_dag.core.states import BuildState
from starforge_dag.definitions import resources_for
from starforge_dag.jobs import build_job
from starforge_dag.ops.build import LoadBuildConfig
from starforge_dag.resources.depot_service import DepotBuildService
from starforge_dag.resources.fake_build_service import FakeBuildService
from starforge_dag.resources.registry import RegistryResource
from starforge_dag.settings import Settings
from starforge_dag.store import open_store


def test_users_swap_the_depot_resource_for_a_fake_in_their_own_tests(
    tmp_path: Path, git_repo, base_image, dagster_instance
):
    """The README's example: the product's resources on the depot backend, build_service replaced, same job."""
    settings = Settings(
        home=tmp_path / "home",
        build_backend="depot",
        github_webhook_secret=WEBHOOK_SECRET,
        api_token="t",
        git_allowed_schemes="file",
    )
    store = open_store(settings.resolved_database_url)
    repo = git_repo("web")
    sha = repo.commit({"Dockerfile": f"FROM {base_image}\nRUN echo hi\n"})
    app = store.add_app("acme", "web", repo.url, "main")
    build = store.enqueue(app, "main", sha).build
    resources = resources_for(settings)
    assert isinstance(resources["build_service"], DepotBuildService)  # no token, no Depot: never called below
    # The fake pushes nothing, so the registry check is off too.
    resources["registry"] = RegistryResource(prefix=settings.registry, verify_pushes=False)

    result = build_job.execute_in_process(
        run_config=dg.RunConfig(ops={"load_build": LoadBuildConfig(build_id=build.id)}),
        resources={**resources, "build_service": FakeBuildService()},
        instance=dagster_instance,
    )
    defs = dg.Definitions(jobs=[build_job], resources={**resources, "build_service": FakeBuildService()})
    second = store.enqueue(app, "main", repo.commit({"x": "y"})).build
    via_defs = defs.resolve_job_def("build_job").execute_in_process(
        run_config=dg.RunConfig(ops={"load_build": LoadBuildConfig(build_id=second.id)}), instance=dagster_instance
    )

    assert result.success and via_defs.success
    assert store.get_build(build.id).status == BuildState.SUCCEEDED
    assert store.get_build(second.id).status == BuildState.SUCCEEDED
    assert store.get_build(build.id).backend_build_id is None


def depot_build_job() -> dg.JobDefinition:
    """This module's own code-location job: Dagster caches a reconstructable job's definition per function, and
    each module's re-execution runs against its own test's settings."""
    return environment_build_job()


@pytest.mark.integration
def test_reexecuting_a_failed_depot_run_from_failure_finishes_the_same_build(
    depot_env, depot_emulator, dagster_instance, pipeline: Pipeline, git_repo, base_image, workspace
):
    store = open_store(depot_env.resolved_database_url)
    repo = git_repo("again")
    sha = repo.commit({"Dockerfile": f"FROM {base_image}\nRUN echo again\n"})
    app = store.add_app(workspace, "again", repo.url, "main", repo_full_name=f"{workspace}/again")
    build_id = pipeline.push(repo.url, f"{workspace}/again", sha)["builds"][0]
    depot_emulator.faults.reject_tokens = True
    job = dg.reconstructable(depot_build_job)  # runs as a code location runs them: outputs kept for re-execution

    run_config = {"ops": {"load_build": {"config": {"build_id": build_id}}}}
    with dg.execute_job(job, instance=dagster_instance, run_config=run_config, raise_on_error=False) as failed:
        assert not failed.success
        failed_id = failed.run_id
    assert store.get_build(build_id).status == BuildState.FAILED

    depot_emulator.faults.reject_tokens = False
    with dg.execute_job(
        job,
        instance=dagster_instance,
        reexecution_options=dg.ReexecutionOptions.from_failure(failed_id, dagster_instance),
    ) as rerun:
        assert rerun.success, [e.message for e in rerun.all_events if e.is_failure]
        executed = {e.step_key for e in rerun.all_events if e.event_type_value == "STEP_SUCCESS"}
        rerun_id = rerun.run_id

    assert "load_build" not in executed and {"submit_build", "await_build", "publish_image"} <= executed
    build = store.get_build(build_id)
    assert build.status == BuildState.SUCCEEDED and build.run_id == rerun_id
    (depot_build,) = depot_emulator.builds()
    assert depot_build.result == "success" and build.backend_build_id == depot_build.build_id
    assert store.desired_state(app.id).commit_sha == sha


@pytest.mark.integration
def test_no_secret_reaches_run_config_tags_events_logs_or_the_api(
    pipeline: Pipeline, depot_emulator, git_repo, base_image, workspace, monkeypatch, capfd
):
    registry_password = "registry-password-that-must-not-leak"
    monkeypatch.setenv("STARFORGE_REGISTRY_PASSWORD", registry_password)
    settings = pipeline.settings.model_copy(update={"registry_username": "pusher"})
    pipeline = pipeline.using(settings)
    store = open_store(settings.resolved_database_url)
    repo = git_repo("quiet")
    sha = repo.commit({"Dockerfile": f"FROM {base_image}\nRUN echo quiet\n"})
    store.add_app(workspace, "quiet", repo.url, "main", repo_full_name=f"{workspace}/quiet")
    depot_emulator.faults.unavailable_once = {"GetEndpoint"}  # a failed attempt's messages are scanned too
    build_id = pipeline.push(repo.url, f"{workspace}/quiet", sha)["builds"][0]

    (result,) = pipeline.drain()
    assert result.success

    run = pipeline.instance.get_run_by_id(result.run_id)
    texts = [json.dumps(run.run_config, default=str), json.dumps(run.tags)]
    texts += [repr(entry) for entry in pipeline.instance.all_logs(result.run_id)]
    with TestClient(create_app(settings)) as client:
        auth = {"Authorization": f"Bearer {settings.api_token.get_secret_value()}"}
        texts += [client.get(f"/builds/{build_id}", headers=auth).text]
        texts += [client.get(f"/builds/{build_id}/logs", headers=auth).text]
    captured = capfd.readouterr()
    texts += [captured.out, captured.err]
    everything = "\n".join(texts)

    assert "Depot build" in everything and str(build_id) in everything  # the scan sees real output
    secrets = {depot_emulator.token, registry_password, *depot_emulator._build_tokens}
    assert len(depot_emulator._build_tokens) == 2
    for secret in secrets:
        assert secret not in everything
    assert "PRIVATE KEY" not in everything
