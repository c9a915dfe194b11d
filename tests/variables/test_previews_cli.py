"""`starforge apps update --previews/--preview-label` and `starforge vars set --secret --for-previews`: what a
pull request's preview build of the app then gets."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from starforge_dag.cli import main
from starforge_dag.core.previews import PullRequest
from starforge_dag.settings import get_settings
from starforge_dag.store import open_store


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("STARFORGE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("STARFORGE_DATABASE_URL", raising=False)
    monkeypatch.delenv("STARFORGE_SECRETS_KEY", raising=False)
    monkeypatch.setenv("STARFORGE_GIT_ALLOWED_SCHEMES", "file")
    return tmp_path


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _pull(number: int, head_repo_id: int) -> PullRequest:
    return PullRequest("opened", number, f"{number:040x}", 5, head_repo_id, None, "f", "ada", "OWNER", "ada")


def test_previews_and_the_secrets_they_get_are_set_from_the_cli(env, git_repo) -> None:
    repo = git_repo("web")
    repo.commit({"Dockerfile": "FROM scratch\n"})
    assert invoke("apps", "add", "web", "--workspace", "acme", "--repo", repo.url).exit_code == 0
    done = invoke("apps", "update", "acme/web", "--previews", "--preview-label", "safe to preview")
    assert done.exit_code == 0, done.output
    shown = json.loads(done.output)
    assert shown["previews"] is True and shown["preview_label"] == "safe to preview"
    assert invoke("vars", "set", "acme/web", "PLAIN=1").exit_code == 0
    assert invoke("vars", "set", "acme/web", "SHARED=s1", "--secret", "--for-previews").exit_code == 0
    assert invoke("vars", "set", "acme/web", "PRIVATE=s2", "--secret").exit_code == 0
    refused = invoke("vars", "set", "acme/web", "X=1", "--for-previews")
    assert refused.exit_code == 1 and "--for-previews marks secrets" in refused.output

    store = open_store(get_settings().resolved_database_url)
    app = store.get_app("web", "acme")
    box = get_settings().secret_box()
    same = store.record_pull_request("d-1", [app], _pull(1, 5)).results[0].build
    fork = store.record_pull_request("d-2", [app], _pull(2, 6)).results[0]
    assert same is not None and [v.name for v in store.build_variables(same.id, box)] == ["PLAIN", "SHARED"]
    assert fork.action == "held" and fork.build is None
    approved, record = store.approve_preview(app, 2, "ops")
    assert record.approved_by == "ops" and record.approved_sha == approved.commit_sha and not record.held
    assert [v.name for v in store.build_variables(approved.id, box)] == ["PLAIN"]
    production = store.enqueue(app, "main", "9" * 40).build
    assert [v.name for v in store.build_variables(production.id, box)] == ["PLAIN", "PRIVATE", "SHARED"]

    cleared = invoke("apps", "update", "acme/web", "--no-previews", "--preview-label", "")
    assert json.loads(cleared.output)["previews"] is False and json.loads(cleared.output)["preview_label"] is None
