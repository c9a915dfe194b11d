"""Pull-request previews end to end: the emulator's pull_request deliveries, the pipeline, the desired-state feed."""

from __future__ import annotations

import json

import httpx
from support.gitrepos import git
from support.pipeline import Pipeline
from support.previews import fork_branch, same_repo_branch

from starforge_dag.core.models import utcnow
from starforge_dag.core.states import BuildState
from starforge_dag.logs import open_log_store
from starforge_dag.store import NewValue

DOCKERFILE = "FROM 127.0.0.1:5000/base/busybox:latest\nCOPY . /app\n"


def _feed(world, after: int = 0) -> list[dict]:
    answer = world.api("GET", f"/desired-state?after={after}&environment=all")
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

    # GitHub saw the preview as deployments of its own environment: each replaced, the last one closed
    world.drain_deployments()
    first_deployment, last_deployment = world.emulator.deployments_for(linked.repo.id, "pr-1")
    assert [d.sha for d in (first_deployment, last_deployment)] == [sha, second]
    assert last_deployment.transient and not last_deployment.production
    states = [[s.state for s in d.statuses] for d in (first_deployment, last_deployment)]
    assert states == [["in_progress", "success", "inactive"], ["in_progress", "success", "inactive"]]
    assert last_deployment.statuses[-1].description == "Preview pr-1 closed"
    assert world.emulator.deployments_for(linked.repo.id, "production") == []


def _variables(world, build_id: int) -> list[str]:
    return [v.name for v in world.store.build_variables(build_id, world.settings.secret_box())]


def _previewing_app(world, name: str):
    linked, _ = world.linked_app(name, {"Dockerfile": DOCKERFILE, "app.sh": "echo v1\n"})
    world.store.update_app(linked.app.id, {"previews": True, "preview_label": "safe-to-preview"})
    values = [
        NewValue("GREETING", "hello"),
        NewValue("PREVIEW_TOKEN", "preview-secret-value", secret=True, for_previews=True),
        NewValue("DB_PASSWORD", "production-only-secret", secret=True),
    ]
    world.store.set_variables("acme", name, values, "test", world.settings.secret_box())
    return linked


def test_fork_pull_request_is_held_approval_builds_it_without_secrets_and_a_new_commit_is_held_again(
    github_world, pipeline: Pipeline
):
    world = github_world
    linked = _previewing_app(world, "shop")
    fork = fork_branch(world.emulator, world.root, linked.git.bare, linked.repo, "mallory")
    sha = fork.commit({"app.sh": "echo from a fork\n"})

    pull = world.emulator.open_pull_request(linked.repo.id, "patch", sha, author="mallory", head_repo_id=fork.repo.id)
    opened = world.emulator.deliveries[-1]
    assert opened.status_code == 200, opened.status
    assert pipeline.drain() == [] and world.store.list_builds(app_id=linked.app.id) == []
    (held,) = world.api("GET", "/apps/acme/shop/previews").json()
    assert held["held"] and held["fork"] and held["head_repo"] == "mallory/shop"
    assert held["author_association"] == "FIRST_TIME_CONTRIBUTOR"

    approved = world.api("POST", "/apps/acme/shop/previews/1/approve", json={"by": "lead"})
    assert approved.status_code == 202, approved.text
    (result,) = pipeline.drain()
    assert result.success
    (build,) = world.store.list_builds(app_id=linked.app.id)
    assert build.fork and build.commit_sha == sha and build.status == BuildState.SUCCEEDED
    assert _variables(world, build.id) == ["GREETING"]  # not even the secret marked for previews
    with open_log_store(world.settings.log_store_dsn, world.settings.resolved_database_url) as logs:
        text = "\n".join(line.text for line in logs.read(build.id))
    assert "preview-secret-value" not in text and "production-only-secret" not in text
    assert [(c["environment"], c["build_id"]) for c in _feed(world)] == [("pr-1", build.id)]
    page = world.api("GET", "/page/" + world.settings.page_links().token(build.id, utcnow())).text
    assert "pr-1: preview of pull request #1 from a fork" in page and "Preview pr-1 runs this image" in page

    newer = fork.commit({"app.sh": "echo sneaky\n"})
    assert world.emulator.push_pull_request(pull, newer).status_code == 200
    assert pipeline.drain() == []
    assert [b.commit_sha for b in world.store.list_builds(app_id=linked.app.id)] == [sha]
    (held,) = world.api("GET", "/apps/acme/shop/previews").json()
    assert held["held"] and held["head_sha"] == newer and held["approved_sha"] == sha

    # The app's label approves the new head; the preview still gets no secret.
    assert world.emulator.label_pull_request(pull, "safe-to-preview", by="acme").status_code == 202
    (result,) = pipeline.drain()
    assert result.success
    latest = world.store.list_builds(app_id=linked.app.id)[0]
    assert latest.commit_sha == newer and latest.fork and _variables(world, latest.id) == ["GREETING"]
    assert world.store.desired_state(linked.app.id) is None


def test_collaborators_same_repository_preview_gets_plain_variables_and_secrets_marked_for_previews_only(
    github_world, pipeline: Pipeline
):
    world = github_world
    linked = _previewing_app(world, "api")
    world.emulator.add_collaborator(linked.repo.id, "bob", "write")
    branch = same_repo_branch(world.root, linked.git.bare, linked.repo, "bob-feature")
    sha = branch.commit({"app.sh": "echo bob\n"})
    world.emulator.open_pull_request(linked.repo.id, "bob-feature", sha, author="bob")
    assert world.emulator.deliveries[-1].status_code == 202, world.emulator.deliveries[-1].status
    (result,) = pipeline.drain()
    assert result.success
    (build,) = world.store.list_builds(app_id=linked.app.id)
    assert not build.fork and _variables(world, build.id) == ["GREETING", "PREVIEW_TOKEN"]

    # A reader (no write access) on a branch of the same repository is held like a fork.
    world.emulator.add_collaborator(linked.repo.id, "rita", "read")
    other = same_repo_branch(world.root, linked.git.bare, linked.repo, "rita-feature")
    world.emulator.open_pull_request(linked.repo.id, "rita-feature", other.commit({"x": "1"}), author="rita")
    assert world.emulator.deliveries[-1].status_code == 200
    assert pipeline.drain() == []
    rita = world.store.preview(linked.app.id, 2)
    assert rita is not None and rita.held and rita.author_association == "CONTRIBUTOR"


def test_production_pushes_and_their_feed_are_unchanged_by_an_open_preview(github_world, pipeline: Pipeline):
    world = github_world
    linked = _previewing_app(world, "site")
    branch = same_repo_branch(world.root, linked.git.bare, linked.repo, "feature")
    pull = world.emulator.open_pull_request(linked.repo.id, "feature", branch.commit({"a": "1"}), author="acme")
    pushed = world.push(linked, {"app.sh": "echo production\n"})
    results = pipeline.drain()
    assert len(results) == 2 and all(r.success for r in results)
    production = world.api("GET", "/desired-state?after=0&environment=production").json()["changes"]
    (change,) = production
    assert change["commit_sha"] == pushed and change["environment"] == "production" and change["reason"] == "build"
    desired = world.store.desired_state(linked.app.id)
    assert desired is not None and desired.commit_sha == pushed
    built = {b.environment: b for b in world.store.list_builds(app_id=linked.app.id)}
    assert _variables(world, built["production"].id) == ["DB_PASSWORD", "GREETING", "PREVIEW_TOKEN"]

    world.emulator.close_pull_request(pull)
    assert world.store.desired_state(linked.app.id) == desired
    assert world.api("GET", "/desired-state?after=0&environment=production").json()["changes"] == production
    everything = world.api("GET", "/desired-state?after=0&environment=all").json()["changes"]
    assert sorted(c["environment"] for c in everything) == ["pr-1", "pr-1", "production"]
    # a deployer that knows nothing of environments asks as it always did and gets production's changes only
    assert world.api("GET", "/desired-state?after=0").json()["changes"] == production
    assert world.api("GET", "/desired-state?after=0&environment=staging").status_code == 422


def test_the_emulator_answers_collaborator_permissions_and_keeps_pull_heads_in_the_base_repository(github_world):
    world = github_world
    linked, _ = world.linked_app("docs", {"Dockerfile": DOCKERFILE})
    world.emulator.add_collaborator(linked.repo.id, "bob", "maintain")
    world.emulator.members["acme"] = {"carol"}
    token = world.app().installation_token(linked.installation_id)

    def permission(user: str) -> dict:
        answer = httpx.get(
            f"{world.emulator.api_url}/repos/acme/docs/collaborators/{user}/permission",
            headers={"Authorization": f"token {token}"},
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    assert [permission(u)["permission"] for u in ("acme", "carol", "bob", "mallory")] == [
        "admin",
        "admin",
        "write",
        "none",
    ]
    unauthenticated = httpx.get(f"{world.emulator.api_url}/repos/acme/docs/collaborators/bob/permission")
    assert unauthenticated.status_code == 401

    fork = fork_branch(world.emulator, world.root, linked.git.bare, linked.repo, "mallory")
    sha = fork.commit({"evil": "1"})
    pull = world.emulator.open_pull_request(linked.repo.id, "patch", sha, author="carol", head_repo_id=fork.repo.id)
    assert git(linked.git.bare, "rev-parse", f"refs/pull/{pull.number}/head") == sha
    body = json.loads(world.emulator.deliveries[-1].body)
    assert body["pull_request"]["author_association"] == "MEMBER"
    assert body["pull_request"]["head"]["repo"]["id"] == fork.repo.id != body["repository"]["id"]
    assert body["pull_request"]["head"]["repo"]["fork"] is True
