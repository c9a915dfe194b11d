"""Previews on the real BuildKit and registry: a fork's approved preview builds without the secret a same-repository
preview gets, and production's desired state stays where it was."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from support.deliveries import GitHub
from support.pipeline import Pipeline, services_settings

from starforge_dag.api import create_app
from starforge_dag.core.states import BuildState
from starforge_dag.logs import open_log_store
from starforge_dag.settings import Settings
from starforge_dag.store import NewValue, open_store

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(tmp_path, services) -> Settings:
    return services_settings(tmp_path / "home", services, build_backend="buildkit", api_token="token")


def _log(settings: Settings, build_id: int) -> list[str]:
    with open_log_store(settings.log_store_dsn, settings.resolved_database_url) as logs:
        return [line.text for line in logs.read(build_id)]


def test_fork_preview_gets_no_secret_and_a_same_repository_preview_gets_the_one_marked(
    settings, pipeline: Pipeline, git_repo, base_image
):
    store = open_store(settings.resolved_database_url)
    repo = git_repo("shop")

    def dockerfile() -> str:  # a step of its own per commit, so the secret's step is never a cached one
        return (
            f"FROM {base_image}\nARG GREETING\nRUN echo greeting=$GREETING {uuid.uuid4().hex}\n"
            "RUN --mount=type=secret,id=PREVIEW_TOKEN "
            "if [ -s /run/secrets/PREVIEW_TOKEN ]; then echo has-secret; else echo no-secret; fi\n"
        )

    repo.commit({"Dockerfile": dockerfile()})
    fork_sha = repo.commit({"Dockerfile": dockerfile()}, "fork change", branch="refs/pull/1/head")
    app = store.add_app("acme", "shop", repo.url, "main", repo_full_name="acme/shop")
    store.update_app(app.id, {"previews": True})
    values = [NewValue("GREETING", "hello"), NewValue("PREVIEW_TOKEN", "t0ken-for-previews", True, True)]
    store.set_variables("acme", "shop", values, "test", settings.secret_box())

    with TestClient(create_app(settings)) as client:
        github = GitHub(client)
        fork = github.pull_request(
            1, fork_sha, head_repo_id=555, head_full_name="mallory/shop", association="NONE", author="mallory"
        )
        assert github.deliver(fork, event="pull_request").json()["status"] == "recorded"
        assert pipeline.drain() == []
        approved = client.post(
            "/apps/acme/shop/previews/1/approve", headers={"Authorization": "Bearer token"}, json={"by": "lead"}
        )
        assert approved.status_code == 202, approved.text
    (result,) = pipeline.drain()
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    build = store.get_build(approved.json()["build"]["id"])
    assert build.status == BuildState.SUCCEEDED and build.fork
    texts = _log(settings, build.id)
    assert build.no_cache  # a fork's build reads no cached layer
    assert any(t.startswith("greeting=hello") for t in texts) and "no-secret" in texts and "has-secret" not in texts

    same_sha = repo.commit({"Dockerfile": dockerfile()}, "feature", branch="refs/pull/2/head")
    with TestClient(create_app(settings)) as client:
        answer = GitHub(client).deliver(GitHub(client).pull_request(2, same_sha), event="pull_request")
        assert answer.status_code == 202, answer.text
    (result,) = pipeline.drain()
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    (ours,) = [b for b in store.list_builds(app_id=app.id) if b.environment == "pr-2"]
    texts = _log(settings, ours.id)
    assert ours.status == BuildState.SUCCEEDED and "has-secret" in texts
    assert not any("t0ken-for-previews" in t for t in texts)
    assert store.desired_state(app.id) is None
    assert sorted(s.environment for s in store.preview_states()) == ["pr-1", "pr-2"]
