"""Pull-request previews end to end: the emulator's pull_request deliveries, the pipeline, the desired-state feed."""

from __future__ import annotations

from support.pipeline import Pipeline
from support.previews import same_repo_branch

from starforge_dag.core.states import BuildState

DOCKERFILE = "FROM 127.0.0.1:5000/base/busybox:latest\nCOPY . /app\n"


def _feed(world, after: int = 0) -> list[dict]:
    answer = world.api("GET", f"/desired-state?after={after}")
    assert answer.status_code == 200, answer.text
    return answer.json()["changes"]


def test_same_repo_pull_request_builds_a_preview_its_commits_supersede_and_closing_tears_it_down(
    github_world, pipeline: Pipeline
):
    world = github_world
    linked, _ = world.linked_app("web", {"Dockerfile": DOCKERFILE, "app.sh": "echo v1\n"})
    world.store.update_app(linked.app.id, {"previews": True})
    branch = same_repo_branch(world.root, linked.git.bare, linked.repo, "feature")
    sha = branch.commit({"app.sh": "echo preview\n"})

    pull = world.emulator.open_pull_request(linked.repo.id, "feature", sha, author="acme")
    assert world.emulator.deliveries[-1].status_code == 202, world.emulator.deliveries[-1].status
    (result,) = pipeline.drain()
    assert result.success
    (build,) = world.store.list_builds(app_id=linked.app.id)
    assert (build.environment, build.pr_number, build.ref) == ("pr-1", 1, "refs/pull/1/head")
    assert build.commit_sha == sha and build.status == BuildState.SUCCEEDED
    assert world.store.desired_state(linked.app.id) is None  # production is untouched

    (change,) = _feed(world)
    assert (change["environment"], change["build_id"], change["reason"]) == ("pr-1", build.id, "build")
    current = world.api("GET", "/desired-state").json()
    assert current["apps"] == []
    assert [(p["environment"], p["build_id"], p["commit_sha"]) for p in current["previews"]] == [
        ("pr-1", build.id, sha)
    ]

    second = branch.commit({"app.sh": "echo preview 2\n"})
    assert world.emulator.push_pull_request(pull, second).status_code == 202
    (result,) = pipeline.drain()
    assert result.success
    newest = world.store.list_builds(app_id=linked.app.id)[0]
    assert newest.commit_sha == second and newest.environment == "pr-1"

    assert world.emulator.close_pull_request(pull, merged=True).status_code == 200
    changes = _feed(world)
    assert [(c["environment"], c["reason"]) for c in changes] == [
        ("pr-1", "build"),
        ("pr-1", "build"),
        ("pr-1", "preview_closed"),
    ]
    assert changes[-1]["image"] is None and changes[-1]["build_id"] is None
    assert world.api("GET", "/desired-state").json()["previews"] == []
    assert _feed(world, 0) == changes and world.store.desired_state(linked.app.id) is None
