"""The `starforge` command as scripts and operators use it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from starforge_dag.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("STARFORGE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("STARFORGE_DATABASE_URL", raising=False)
    monkeypatch.setenv("STARFORGE_GIT_ALLOWED_SCHEMES", "file")
    return tmp_path


def invoke(*args: str):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


def test_apps_build_status_and_logs(env, git_repo):
    repo = git_repo("web")
    sha = repo.commit({"Dockerfile": "FROM scratch\n"})

    added = invoke(
        "apps", "add", "web", "--workspace", "acme", "--repo", repo.url, "--branch", "main", "--watch", "src/**"
    )
    assert added.exit_code == 0 and json.loads(added.output)["watch_paths"] == ["src/**"]
    assert invoke("apps", "add", "web", "--workspace", "acme", "--repo", repo.url).exit_code == 1
    assert "acme/web" in invoke("apps", "list").output

    queued = json.loads(invoke("build", "acme/web").output)
    assert queued["commit"] == sha and queued["created"] and queued["status"] == "queued"
    again = json.loads(invoke("build", "web", "--ref", sha).output)
    assert again["build_id"] == queued["build_id"] and not again["created"]

    status = json.loads(invoke("status", str(queued["build_id"])).output)
    assert status["status"] == "queued" and status["phases"][0]["state"] == "queued"
    assert f"{queued['build_id']}\tqueued\tacme/web" in invoke("status").output
    missing = invoke("build", "acme/web", "--ref", "no-such-branch")
    assert missing.exit_code == 1 and "not found" in missing.output
    assert invoke("logs", "999").exit_code == 1


def test_status_explains_a_failed_build_and_links_its_page(env, git_repo, monkeypatch):
    from starforge_dag.core.states import BuildState
    from starforge_dag.settings import get_settings
    from starforge_dag.store import open_store

    monkeypatch.setenv("STARFORGE_PUBLIC_URL", "https://builds.example")
    repo = git_repo("web")
    sha = repo.commit({"Dockerfile": "FROM scratch\n"})
    invoke("apps", "add", "web", "--workspace", "acme", "--repo", repo.url)
    build_id = json.loads(invoke("build", "acme/web", "--ref", sha).output)["build_id"]
    assert json.loads(invoke("status", str(build_id)).output)["explanation"] is None
    store = open_store(get_settings().resolved_database_url)
    store.request_cancel(build_id, actor="ada", reason="wrong branch")

    status = json.loads(invoke("status", str(build_id)).output)

    assert status["status"] == BuildState.CANCELED.value
    assert status["explanation"]["cls"] == "canceled"
    assert status["explanation"]["title"] == "Canceled by ada: wrong branch"
    assert status["page_url"].startswith(f"https://builds.example/page/{build_id}.")


def test_plan_prints_the_plan_or_says_what_to_do(env, tmp_path):
    app = tmp_path / "site"
    app.mkdir()
    (app / "index.html").write_text("<h1>hi</h1>")
    planned = subprocess.run(
        [sys.executable, "-m", "starforge_dag.cli", "plan", str(app)], capture_output=True, text=True
    )
    assert planned.returncode == 0, planned.stderr
    assert "deploy" in json.loads(planned.stdout)
    empty = tmp_path / "empty"
    empty.mkdir()
    failed = subprocess.run(
        [sys.executable, "-m", "starforge_dag.cli", "plan", str(empty)], capture_output=True, text=True
    )
    assert failed.returncode == 1 and failed.stdout == "" and "Dockerfile" in failed.stderr


def test_demo_carries_the_sample_app_to_desired_state(env):
    """The README's main-job command, on the fake backend (the BuildKit variant runs in the integration tests)."""
    result = subprocess.run(
        [str(REPO / ".venv" / "bin" / "starforge"), "demo", "--backend", "fake"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "STARFORGE_HOME": str(env / "home")},
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "build 1: succeeded" in result.stdout
    assert "desired state of demo/hello: 127.0.0.1:5000/apps/demo/hello:" in result.stdout
    assert "starforge logs 1" in result.stdout


def test_logs_prints_the_build_log_and_follow_stops_when_the_build_ends(env, git_repo):
    from starforge_dag.core.models import LogLine
    from starforge_dag.core.states import BuildState
    from starforge_dag.logs import open_log_store
    from starforge_dag.settings import get_settings
    from starforge_dag.store import open_store

    repo = git_repo("web")
    sha = repo.commit({"Dockerfile": "FROM scratch\n"})
    settings = get_settings()
    store = open_store(settings.resolved_database_url)
    app = store.add_app("acme", "web", repo.url)
    build = store.enqueue(app, "main", sha).build
    with open_log_store(settings.log_store_dsn, settings.resolved_database_url) as logs:
        logs.append([LogLine(build_id=build.id, seq=n, text=f"line {n}") for n in range(3)])
    store.transition(build.id, BuildState.CANCELED, "stop", "test")

    plain = invoke("logs", str(build.id))
    followed = invoke("logs", str(build.id), "-f")

    assert plain.output.splitlines() == ["line 0", "line 1", "line 2"]
    assert followed.exit_code == 0 and followed.output == plain.output


def test_build_dir_prints_one_json_object(env, tmp_path):
    app = tmp_path / "svc"
    app.mkdir()
    (app / "Dockerfile").write_text("FROM 127.0.0.1:5000/base/busybox:latest\nRUN echo hi\n")
    result = subprocess.run(
        [str(REPO / ".venv" / "bin" / "starforge"), "build-dir", str(app), "--image", "127.0.0.1:5000/cli/svc:dev"],
        capture_output=True,
        text=True,
        env={**os.environ, "STARFORGE_BUILD_BACKEND": "fake"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    out = json.loads(line)
    assert out["status"] == "succeeded" and out["image"] == "127.0.0.1:5000/cli/svc:dev"
    assert out["digest"].startswith("sha256:")
    assert "RUN echo hi" in result.stderr


def test_pin_unpin_rollback_desired_state_and_gc_dry_run(env, monkeypatch):
    from datetime import UTC, datetime

    from starforge_dag.core.states import BuildState
    from starforge_dag.settings import get_settings
    from starforge_dag.store import open_store

    store = open_store(get_settings().resolved_database_url)
    app = store.add_app("acme", "web", "https://github.com/acme/web.git", "main")
    builds = []
    for n in range(1, 4):
        build = store.enqueue(app, "main", f"{n:040x}", commit_time=datetime(2026, 1, 1, n, tzinfo=UTC)).build
        for state in (BuildState.CLONING, BuildState.PLANNING, BuildState.BUILDING, BuildState.PUSHING):
            store.transition(build.id, state, state.value, "run:test")
        store.succeed(build.id, f"127.0.0.1:5000/apps/acme/web:{n}", f"sha256:{n:064x}", "ok", "run:test")
        builds.append(build)

    pinned = invoke("pin", "acme/web", "--note", "freeze")
    assert pinned.exit_code == 0 and "\tpin\t127.0.0.1:5000/apps/acme/web@sha256:" in pinned.output
    assert "already pinned" in invoke("pin", "acme/web").output
    current = invoke("desired-state").output
    assert current.startswith("revision 4\n") and "acme/web\t127.0.0.1:5000/apps/acme/web@" in current
    assert "\tpinned" in current
    assert invoke("unpin", "web").exit_code == 0
    refused = invoke("rollback", "acme/web", "999")
    assert refused.exit_code == 1 and "not a build of this app" in refused.output
    monkeypatch.setenv("STARFORGE_RETAIN_BUILDS", "1")
    monkeypatch.setenv("STARFORGE_RETAIN_DESIRED_DAYS", "0")
    dry = invoke("gc", "--dry-run")
    assert dry.exit_code == 0 and "would delete 2 images (2 builds)" in dry.output
    assert store.get_build(builds[0].id).image_deleted_at is None


def test_apps_wait_for_checks_and_the_status_of_waiting_and_refused_builds(env, git_repo):
    from starforge_dag.core.states import BuildState
    from starforge_dag.settings import get_settings
    from starforge_dag.store import open_store

    repo = git_repo("web")
    sha = repo.commit({"Dockerfile": "FROM scratch\n"})
    added = invoke("apps", "add", "web", "--workspace", "acme", "--repo", repo.url, "--wait-for-checks")
    assert added.exit_code == 0 and json.loads(added.output)["wait_for_checks"] is True
    store = open_store(get_settings().resolved_database_url)
    app = store.get_app("web", "acme")
    build = store.enqueue(app, "main", sha, trigger="push", actor="github").build
    assert build.status == BuildState.WAITING
    assert f"{build.id}\twaiting\tacme/web" in invoke("status").output
    store.settle_waiting(build.id, BuildState.CHECKS_FAILED, "not built: check suite 9 of CI concluded failure", "t")
    status = json.loads(invoke("status", str(build.id)).output)
    assert status["status"] == "checks_failed"
    assert status["explanation"]["title"] == "A check suite of the commit did not pass: not built"
    assert status["explanation"]["line"] == "not built: check suite 9 of CI concluded failure"

    updated = invoke("apps", "update", "acme/web", "--no-wait-for-checks")
    assert updated.exit_code == 0 and json.loads(updated.output)["wait_for_checks"] is False
    manual = json.loads(invoke("build", "acme/web", "--ref", sha).output)
    assert manual["status"] == "queued"
