"""The build job end to end in process: webhook → sensor → job → app_image → desired state."""

from __future__ import annotations

import dagster as dg
from support.pipeline import DOCKERFILE

from starforge_dag.assets import app_image
from starforge_dag.core.states import BuildState
from starforge_dag.logs import open_log_store
from starforge_dag.resources.fake_build_service import FakeBuildService


def _step_events(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    return {
        e.step_key: e.event_type_value
        for e in result.all_events
        if e.event_type_value in ("STEP_SUCCESS", "STEP_SKIPPED", "STEP_FAILURE")
    }


def _log_lines(settings, build_id):
    with open_log_store(settings.log_store_dsn, settings.resolved_database_url) as logs:
        return logs.read(build_id)


def test_push_becomes_image_asset_and_desired_state(settings, build_store, dagster_instance, pipeline, git_repo):
    repo = git_repo("web")
    sha = repo.commit({"Dockerfile": DOCKERFILE, "app.sh": "echo hi\n"})
    app = build_store.add_app("acme", "web", repo.url, "main", repo_full_name="acme/web")

    queued = pipeline.push(repo.url, "acme/web", sha)
    (result,) = pipeline.drain()

    assert result.success
    build = build_store.get_build(queued["builds"][0])
    assert build.status == BuildState.SUCCEEDED and build.run_id == result.run_id
    assert [t.to_state.value for t in build_store.transitions(build.id)] == [
        "queued",
        "cloning",
        "planning",
        "building",
        "pushing",
        "succeeded",
    ]
    steps = _step_events(result)
    assert steps["dockerfile_frontend"] == "STEP_SUCCESS"
    assert steps["railpack_frontend"] == "STEP_SKIPPED"

    desired = build_store.desired_state(app.id)
    assert desired.commit_sha == sha and desired.build_id == build.id
    assert desired.image_digest == build.image_digest and desired.image_digest.startswith("sha256:")
    assert desired.image_ref == f"127.0.0.1:5000/apps/acme/web:{sha}"

    event = dagster_instance.get_latest_materialization_event(app_image.key)
    materialization = event.asset_materialization
    assert materialization.partition == "acme.web"
    assert materialization.metadata["digest"].value == build.image_digest
    assert materialization.metadata["commit"].value == sha
    assert materialization.metadata["build_id"].value == build.id
    assert materialization.metadata["revision"].value == desired.revision == 1
    assert materialization.metadata["reason"].value == "build"
    assert materialization.metadata["pinned"].value == f"127.0.0.1:5000/apps/acme/web@{build.image_digest}"
    assert "acme.web" in dagster_instance.get_dynamic_partitions("apps")

    lines = _log_lines(settings, build.id)
    assert [line.seq for line in lines] == list(range(len(lines)))
    assert any("[1/4] FROM 127.0.0.1:5000/base/busybox:latest" in line.text for line in lines)
    assert lines[-1].text.startswith("pushed ")


def test_repo_without_dockerfile_takes_the_railpack_branch(build_store, pipeline, git_repo):
    repo = git_repo("site")
    sha = repo.commit({"index.html": "<h1>hello</h1>\n"})
    app = build_store.add_app("acme", "site", repo.url, "main", repo_full_name="acme/site")

    pipeline.push(repo.url, "acme/site", sha)
    (result,) = pipeline.drain()

    assert result.success
    steps = _step_events(result)
    assert steps["railpack_frontend"] == "STEP_SUCCESS" and steps["dockerfile_frontend"] == "STEP_SKIPPED"
    spec = result.output_for_node("railpack_frontend")
    assert spec.frontend == "llb" and spec.llb_definition and spec.image_config
    planned = [
        e for e in result.all_events if e.event_type_value == "STEP_OUTPUT" and e.step_key == "railpack_frontend"
    ][0]
    metadata = planned.event_specific_data.metadata
    assert metadata["providers"].value == "staticfile"
    assert "deploy" in metadata["plan"].value
    assert build_store.desired_state(app.id).commit_sha == sha


def test_repo_nothing_recognizes_fails_with_what_to_do(build_store, pipeline, git_repo):
    repo = git_repo("mystery")
    sha = repo.commit({"notes.txt": "no code here\n"})
    app = build_store.add_app("acme", "mystery", repo.url, "main", repo_full_name="acme/mystery")

    queued = pipeline.push(repo.url, "acme/mystery", sha)
    (result,) = pipeline.drain()

    assert not result.success
    build = build_store.get_build(queued["builds"][0])
    assert build.status == BuildState.FAILED
    assert build.error_step == "plan"
    assert "Dockerfile" in build.error and "railpack.json" in build.error
    assert build_store.desired_state(app.id) is None


def test_failing_build_step_fails_the_build_with_its_message(settings, build_store, pipeline, git_repo):
    repo = git_repo("broken")
    sha = repo.commit({"Dockerfile": DOCKERFILE})
    app = build_store.add_app("acme", "broken", repo.url, "main", repo_full_name="acme/broken")

    queued = pipeline.push(repo.url, "acme/broken", sha)
    (result,) = pipeline.drain(pipeline.resources(build_service=FakeBuildService(outcome="user_error")))

    assert not result.success
    build = build_store.get_build(queued["builds"][0])
    assert build.status == BuildState.FAILED
    assert build.error_step == "[4/4] RUN echo hello"
    assert "exit code: 1" in build.error
    assert build_store.desired_state(app.id) is None
    stderr = [line.text for line in _log_lines(settings, build.id) if line.stream == "stderr"]
    assert stderr and "exit code: 1" in stderr[-1]


def test_desired_state_never_moves_to_an_older_commit(build_store, dagster_instance, pipeline, git_repo):
    """Invariant 2: the newer commit's build finishes first; the older one's must not win afterwards."""
    repo = git_repo("api")
    older = repo.commit({"Dockerfile": DOCKERFILE, "v": "1"})
    newer = repo.commit({"v": "2"})
    app = build_store.add_app("acme", "api", repo.url, "main", repo_full_name="acme/api")
    old_build = build_store.enqueue(app, "refs/tags/v1", older).build  # another ref, so it is not superseded
    new_build = build_store.enqueue(app, "main", newer).build
    resources = pipeline.resources()

    tick = pipeline.tick(resources)
    requests = {int(r.run_key): r for r in tick.run_requests}
    dagster_instance.add_dynamic_partitions("apps", ["acme.api"])
    from starforge_dag.jobs import build_job

    for build_id in (new_build.id, old_build.id):  # newest first
        r = requests[build_id]
        assert build_job.execute_in_process(
            run_config=r.run_config, tags=r.tags, instance=dagster_instance, resources=resources
        ).success

    assert build_store.get_build(old_build.id).status == BuildState.SUCCEEDED
    desired = build_store.desired_state(app.id)
    assert desired.commit_sha == newer and desired.build_id == new_build.id
    latest = dagster_instance.get_latest_materialization_event(app_image.key).asset_materialization
    assert latest.metadata["commit"].value == older
    assert latest.metadata["desired_state_updated"].value is False


def test_a_failed_step_explains_the_failure_in_its_metadata(build_store, pipeline, git_repo):
    repo = git_repo("broken")
    sha = repo.commit({"Dockerfile": DOCKERFILE})
    build_store.add_app("acme", "broken", repo.url, "main", repo_full_name="acme/broken")

    pipeline.push(repo.url, "acme/broken", sha)
    (result,) = pipeline.drain(pipeline.resources(build_service=FakeBuildService(outcome="user_error")))

    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert failure.step_key == "await_build"
    metadata = failure.step_failure_data.user_failure_data.metadata
    assert metadata["failure_class"].value == "run_failed"
    assert metadata["explanation"].value == "`RUN echo hello` failed with exit code 1"
    assert "log lines just above" in metadata["hint"].value
    assert "exit code: 1" in metadata["log_line"].value
