"""`starforge vars`, `starforge apps update|remove|show` and `starforge secrets rotate-key` as operators use them."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from starforge_dag.cli import main
from starforge_dag.settings import get_settings
from starforge_dag.store import open_store

SECRET = "ghp_cli-secret-7e6d5c4b"


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("STARFORGE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("STARFORGE_DATABASE_URL", raising=False)
    monkeypatch.delenv("STARFORGE_SECRETS_KEY", raising=False)
    monkeypatch.setenv("STARFORGE_GIT_ALLOWED_SCHEMES", "file")
    return tmp_path


def invoke(*args: str, stdin: str | None = None):
    return CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)


@pytest.fixture
def web(env, git_repo):
    repo = git_repo("web")
    repo.commit({"Dockerfile": "FROM scratch\n"})
    assert invoke("apps", "add", "web", "--workspace", "acme", "--repo", repo.url).exit_code == 0
    return repo


def test_a_secret_read_from_standard_input_is_set_and_never_printed(web) -> None:
    done = invoke("vars", "set", "acme/web", "GREETING=hello", "NPM_TOKEN", "--secret", stdin=SECRET + "\n")
    assert done.exit_code == 0 and SECRET not in done.output
    listed = invoke("vars", "list", "acme/web")
    assert listed.exit_code == 0 and SECRET not in listed.output
    assert "NPM_TOKEN\t(secret)\tv1" in listed.output
    store = open_store(get_settings().resolved_database_url)
    app = store.get_app("web", "acme")
    build = store.enqueue(app, "main", "1" * 40).build
    values = {v.name: v.value.get_secret_value() for v in store.build_variables(build.id, get_settings().secret_box())}
    assert values == {"GREETING": "hello", "NPM_TOKEN": SECRET}  # the trailing newline of stdin is not the value
    shown = invoke("apps", "show", "acme/web")
    assert SECRET not in shown.output and [v["name"] for v in json.loads(shown.output)["variables"]] == [
        "GREETING",
        "NPM_TOKEN",
    ]


def test_workspace_variables_unset_and_refusals(web) -> None:
    assert invoke("vars", "set", "--workspace", "acme", "REGION=eu").exit_code == 0
    assert "REGION\teu\tv1" in invoke("vars", "list", "--workspace", "acme").output
    refused = invoke("vars", "set", "acme/web", "GOOD=1", "STARFORGE_X=2")
    assert refused.exit_code == 1 and "reserved" in refused.output
    assert invoke("vars", "list", "acme/web").output == ""
    assert invoke("vars", "set", "acme/web", "A", "B").exit_code == 1  # only one value from stdin
    assert invoke("vars", "set", "acme/web", "GOOD=1").exit_code == 0
    assert "removed" in invoke("vars", "unset", "acme/web", "GOOD").output
    assert invoke("vars", "unset", "acme/web", "GOOD").exit_code == 1
    assert "removed" in invoke("vars", "unset", "--workspace", "acme", "REGION").output


def test_update_show_and_remove_an_app(web) -> None:
    updated = invoke("apps", "update", "acme/web", "--target", "runtime", "--build-timeout", "120", "--no-auto-build")
    assert updated.exit_code == 0
    out = json.loads(updated.output)
    assert (out["target"], out["build_timeout_s"], out["auto_build"]) == ("runtime", 120, False)
    cleared = json.loads(invoke("apps", "update", "acme/web", "--target", "", "--build-timeout", "0").output)
    assert cleared["target"] is None and cleared["build_timeout_s"] is None
    bad = invoke("apps", "update", "acme/web", "--root-dir", "../etc")
    assert bad.exit_code == 1 and "root_dir" in bad.output
    queued = json.loads(invoke("build", "acme/web").output)
    removed = json.loads(invoke("apps", "remove", "acme/web").output)
    assert removed["stopped"] == [queued["build_id"]] and removed["archived_at"]
    refused = CliRunner().invoke(main, ["build", "acme/web"])
    assert refused.exit_code != 0 and "removed" in str(refused.exception)
    assert invoke("apps", "update", "acme/web", "--branch", "dev").exit_code == 1
    assert json.loads(invoke("apps", "show", "acme/web").output)["archived_at"] == removed["archived_at"]


def test_rotate_key_puts_a_new_key_first_and_every_secret_opens_under_it(web, env) -> None:
    invoke("vars", "set", "acme/web", "NPM_TOKEN", "--secret", stdin=SECRET)
    key_file = env / "home" / "secrets.key"
    old = key_file.read_text().split()
    rotated = invoke("secrets", "rotate-key")
    assert rotated.exit_code == 0 and "re-encrypted 2" in rotated.output
    keys = key_file.read_text().split()
    assert keys[1:] == old and len(keys) == 2 and oct(key_file.stat().st_mode & 0o777) == "0o600"
    from starforge_dag.variables.crypto import SecretBox

    store = open_store(get_settings().resolved_database_url)
    build = store.enqueue(store.get_app("web", "acme"), "main", "1" * 40).build
    (only,) = store.build_variables(build.id, SecretBox([keys[0]]))
    assert only.value.get_secret_value() == SECRET
