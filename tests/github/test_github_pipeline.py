"""GitHub for real customers, end to end: private clones through the App, statuses, installation events."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from support.pipeline import Pipeline

from starforge_dag.core.models import utcnow
from starforge_dag.core.states import BuildState
from starforge_dag.logs import open_log_store

DOCKERFILE = "FROM 127.0.0.1:5000/base/busybox:latest\nCOPY . /app\n"


def test_private_repo_builds_through_the_app_reports_statuses_and_leaks_no_secret(github_world, pipeline: Pipeline):
    world = github_world
    linked, first = world.linked_app("web", {"Dockerfile": DOCKERFILE, "app.sh": "echo hi\n"})
    sha = world.push(linked, {"app.sh": "echo v2\n"}, "second")
    delivery = world.emulator.deliveries[-1]
    assert delivery.status_code == 202, delivery.status

    (result,) = pipeline.drain()
    assert result.success
    (build,) = world.store.list_builds(app_id=linked.app.id)
    assert build.commit_sha == sha and build.status == BuildState.SUCCEEDED
    world.drain_statuses()

    recorded = world.emulator.statuses_for(linked.repo.id, sha)
    assert [s.state for s in recorded][-1] == "success"
    assert all(s.state == "pending" for s in recorded[:-1])
    assert recorded[-1].context == "starforge/acme/web"
    link = recorded[-1].target_url
    assert link.startswith(f"https://starforge.example.invalid/page/{build.id}.")
    assert world.settings.page_links().build_of(link.rsplit("/", 1)[-1], utcnow()) == build.id
    assert world.api("GET", link.removeprefix("https://starforge.example.invalid")).status_code == 200
    assert world.emulator.statuses_for(linked.repo.id, first) == []

    # Secrets scan: the App key, every JWT and installation token the emulator saw or issued.
    secrets = [line for line in world.emulator.private_key.splitlines() if len(line) > 40]
    secrets += world.emulator.jwts_seen + world.emulator.issued_tokens()
    assert world.emulator.jwts_seen and world.emulator.issued_tokens()
    haystacks = {".git/config": (world.settings.workdir / f"build-{build.id}" / ".git" / "config").read_text()}
    run = pipeline.instance.get_run_by_id(result.run_id)
    haystacks["run config"] = json.dumps(run.run_config, default=str)
    haystacks["tags"] = json.dumps(run.tags)
    haystacks["events"] = "\n".join(repr(e) for e in pipeline.instance.all_logs(result.run_id))
    with open_log_store(world.settings.log_store_dsn, world.settings.resolved_database_url) as logs:
        haystacks["build log"] = "\n".join(line.text for line in logs.read(build.id))
    haystacks["API build"] = world.api("GET", f"/builds/{build.id}").text
    haystacks["API apps"] = world.api("GET", "/apps").text
    haystacks["webhook answers"] = "".join(d.status for d in world.emulator.deliveries)
    hits = [(where, s[:12]) for where, text in haystacks.items() for s in secrets if s in text]
    assert hits == []
    assert all(len(text) > 0 for text in haystacks.values())  # every place was really read
    assert "x-access-token" not in haystacks[".git/config"]


def test_renamed_repository_still_builds_by_id(github_world, pipeline: Pipeline):
    world = github_world
    linked, _ = world.linked_app("api", {"Dockerfile": DOCKERFILE})
    world.emulator.rename_repo(linked.repo.id, "api-renamed", owner="acme-new")
    sha = world.push(linked, {"x": "1"})
    (result,) = pipeline.drain()
    assert result.success
    (build,) = world.store.list_builds(app_id=linked.app.id)
    assert build.commit_sha == sha and build.status == BuildState.SUCCEEDED


def test_uninstall_pauses_the_app_with_its_reason_and_reinstall_resumes(github_world):
    world = github_world
    linked, first = world.linked_app("shop", {"Dockerfile": DOCKERFILE})
    queued = world.store.enqueue(linked.app, "main", first).build
    world.emulator.uninstall(linked.installation_id)
    assert world.emulator.deliveries[-1].status_code == 200

    (view,) = [a for a in world.api("GET", "/apps").json() if a["name"] == "acme/shop"]
    assert view["paused"] == "paused: the GitHub App was uninstalled on acme"
    canceled = world.store.get_build(queued.id)
    assert canceled.status == BuildState.CANCELED and canceled.error == view["paused"]
    assert world.api("POST", "/apps/acme/shop/builds").status_code == 409

    sha = linked.git.commit({"x": "2"})
    delivery = world.emulator.push(linked.repo.id, "main", "0" * 40, sha)
    assert delivery.status_code == 200  # answered, nothing queued
    assert [b.id for b in world.store.list_builds(app_id=linked.app.id)] == [queued.id]

    world.emulator.install("acme", [linked.repo.id])
    (view,) = [a for a in world.api("GET", "/apps").json() if a["name"] == "acme/shop"]
    assert view["paused"] is None


def test_manual_build_of_a_private_repo_asks_github_for_the_branch_head(github_world):
    world = github_world
    _linked, sha = world.linked_app("manual", {"Dockerfile": DOCKERFILE})
    answer = world.api("POST", "/apps/acme/manual/builds")
    assert answer.status_code == 202, answer.text
    assert answer.json()["build"]["commit_sha"] == sha
    assert world.api("POST", "/apps/acme/manual/builds", json={"ref": "nope"}).status_code == 404


def test_hostile_installation_events_get_a_clear_400_and_change_nothing(github_world):
    import json as _json

    from starforge_dag.github.signature import sign

    world = github_world
    linked, _ = world.linked_app("safe")
    bodies = [
        {"action": "deleted", "installation": {"id": linked.installation_id, "account": {"login": "a\u0000b"}}},
        {"action": "deleted", "installation": {"id": 2**64}},
        {"action": "added", "installation": {"id": 1}, "repositories_added": [{"id": 5, "full_name": "../../x"}]},
        {"action": "deleted"},
    ]
    for body in bodies:
        raw = _json.dumps(body).encode()
        headers = {
            "X-GitHub-Event": "installation_repositories" if body["action"] == "added" else "installation",
            "X-GitHub-Delivery": "d-1",
            "X-Hub-Signature-256": sign(b"emulated-webhook-secret", raw),
            "Content-Type": "application/json",
        }
        answer = httpx.post(world.emulator.webhook_url, content=raw, headers=headers)
        assert answer.status_code == 400, (body, answer.text)
    assert world.gh.app_repo(linked.app.id).paused_reason is None


def test_a_token_revoked_or_expired_behind_the_cache_is_renewed_for_the_clone(github_world, pipeline: Pipeline):
    world = github_world
    linked, _ = world.linked_app("rotated", {"Dockerfile": DOCKERFILE})
    world.app().installation_token(linked.installation_id)  # cached, then made useless behind the cache's back
    world.emulator.expire_tokens()
    sha = world.push(linked, {"x": "1"})  # the webhook path needs no token
    (result,) = pipeline.drain()
    assert result.success
    (build,) = world.store.list_builds(app_id=linked.app.id)
    assert build.commit_sha == sha and build.status == BuildState.SUCCEEDED
    assert len(world.emulator.issued_tokens()) == 2


def test_git_refusing_the_token_renews_it_once_and_clones(github_world, tmp_path: Path):
    from starforge_dag.git.checkout import checkout
    from starforge_dag.github.clone import clone_with_app

    world = github_world
    linked, sha = world.linked_app("gitauth", {"Dockerfile": DOCKERFILE})
    attempts: list[str] = []

    def clone(url: str, auth: dict[str, str] | None):
        attempts.append(url)
        if len(attempts) == 1:
            world.emulator.revoke_tokens()  # between the API lookup and git: only git sees the dead token
        return checkout(url, sha, tmp_path / f"co{len(attempts)}", policy=world.settings.git_policy, auth_config=auth)

    tree = clone_with_app(world.gh, world.app(), linked.app.id, linked.app.repo_url, clone)
    assert tree.commit_sha == sha and len(attempts) == 2
