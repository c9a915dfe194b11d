"""An app's variables and secrets reach its builds through the whole job, on BuildKit and through Depot.

Plain variables become build args of the ARGs a Dockerfile declares, secrets reach only `RUN --mount=type=secret`,
and the pushed image, the stores, Dagster's storage and every API answer hold no secret value.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from fastapi.testclient import TestClient
from support.images import every_byte, image_config, image_files
from support.pipeline import Pipeline, environment_build_job, services_settings

from starforge_dag.api import create_app
from starforge_dag.core.models import Build
from starforge_dag.core.states import BuildState
from starforge_dag.definitions import depot_service_for, resources_for
from starforge_dag.dev.runner import drain_queue
from starforge_dag.logs import open_log_store
from starforge_dag.settings import Settings
from starforge_dag.store import NewValue, open_store

pytestmark = pytest.mark.integration

API_TOKEN = "token-for-the-variables-tests"
DOCKERFILE = """\
FROM {base}
ARG GREETING
ARG NPM_TOKEN
RUN --mount=type=secret,id=NPM_TOKEN sha256sum /run/secrets/NPM_TOKEN | cut -d" " -f1 > /token.sha \\
 && echo "$GREETING" > /greeting && echo "installing with $(cat /run/secrets/NPM_TOKEN)" && echo {nonce}
"""


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(params=["buildkit", "depot"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, services: dict[str, str], monkeypatch):
    """Settings and the product's resources on one backend (the Depot emulator fronts the same daemon)."""
    if request.param == "buildkit":
        settings = services_settings(tmp_path / "home", services, build_backend="buildkit", api_token=API_TOKEN)
        return settings, resources_for(settings)
    emulator = request.getfixturevalue("depot_emulator")
    monkeypatch.setenv("STARFORGE_DEPOT_TOKEN", emulator.token)
    settings = services_settings(
        tmp_path / "home", services, build_backend="depot", depot_api_url=emulator.url, api_token=API_TOKEN
    )
    resources = resources_for(settings)
    resources["build_service"] = depot_service_for(settings, health_interval_s=0.2)
    return settings, resources


@pytest.fixture
def dagster_home(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    """A Dagster instance whose storage and compute logs are files under one directory, to scan."""
    root = tmp_path / "dagster"
    root.mkdir()
    (root / "dagster.yaml").write_text("")
    with dg.instance_for_test(temp_dir=str(root)) as instance:
        yield instance


def push(settings: Settings, instance: dg.DagsterInstance, repo_url: str, full_name: str, sha: str) -> dict:
    return Pipeline(settings, instance).push(repo_url, full_name, sha)


def set_vars(settings: Settings, workspace: str, app: str | None, **values: tuple[str, bool]) -> None:
    store = open_store(settings.resolved_database_url)
    news = [NewValue(name, value, secret) for name, (value, secret) in values.items()]
    store.set_variables(workspace, app, news, "test", settings.secret_box())


def built(settings: Settings, instance: dg.DagsterInstance, resources: dict[str, Any], build_id: int) -> Build:
    results = drain_queue(instance, resources)
    assert results and all(r.success for r in results), [
        e.message for r in results for e in r.all_events if e.is_failure
    ]
    build = open_store(settings.resolved_database_url).get_build(build_id)
    assert build.status == BuildState.SUCCEEDED, build.error
    return build


def log_text(settings: Settings, build_id: int) -> str:
    with open_log_store(settings.log_store_dsn, settings.resolved_database_url) as logs:
        return "\n".join(line.text for line in logs.read(build_id))


def test_a_dockerfile_app_gets_its_variable_as_a_build_arg_and_its_secret_only_through_a_secret_mount(
    backend, dagster_home, git_repo, base_image
) -> None:
    settings, resources = backend
    store = open_store(settings.resolved_database_url)
    workspace, other = f"ws-{uuid.uuid4().hex[:8]}", f"ws-{uuid.uuid4().hex[:8]}"
    token, others_token = f"npm_{uuid.uuid4().hex}", f"npm_{uuid.uuid4().hex}"
    repo = git_repo("web")
    sha = repo.commit({"Dockerfile": DOCKERFILE.format(base=base_image, nonce=uuid.uuid4().hex)})
    for ws in (workspace, other):
        store.add_app(ws, "web", repo.url, "main", repo_full_name=f"{ws}/web")
    set_vars(settings, workspace, None, GREETING=("from-the-workspace", False))
    set_vars(settings, workspace, "web", GREETING=("hello-from-the-app", False), NPM_TOKEN=(token, True))
    set_vars(settings, other, "web", GREETING=("the-other-workspace", False), NPM_TOKEN=(others_token, True))

    build_ids = push(settings, dagster_home, repo.url, f"{workspace}/web", sha)["builds"]  # the repository of both apps
    assert len(build_ids) == 2
    results = drain_queue(dagster_home, resources)
    assert len(results) == 2 and all(r.success for r in results)
    builds = {b.workspace: b for b in (store.get_build(i) for i in build_ids)}
    build, others = builds[workspace], builds[other]
    assert build.status == others.status == BuildState.SUCCEEDED

    files = image_files(build.image_ref)
    assert files["/greeting"] == b"hello-from-the-app\n", "the app's variable wins over its workspace's"
    assert files["/token.sha"].strip() == sha256(token).encode(), "the secret reached the RUN step's mount"
    assert image_files(others.image_ref)["/token.sha"].strip() == sha256(others_token).encode()
    assert image_files(others.image_ref)["/greeting"] == b"the-other-workspace\n"
    pushed = every_byte(build.image_ref)
    assert b"hello-from-the-app" in pushed  # the scan sees what is in the image
    assert token.encode() not in pushed, "no layer, config or history entry holds the secret"
    assert others_token.encode() not in pushed + every_byte(others.image_ref)
    history = json.dumps(image_config(build.image_ref)["history"])
    assert "sha256sum" in history and token not in history
    assert token not in log_text(settings, others.id) and "installing with *****" in log_text(settings, others.id)

    log = log_text(settings, build.id)
    assert "installing with *****" in log, log
    assert token not in log and others_token not in log
    assert "NPM_TOKEN is a secret and is not passed as a build argument" in log
    assert "--mount=type=secret,id=NPM_TOKEN" in log


def test_a_planned_app_reads_a_variable_and_a_secret_and_a_changed_secret_re_runs_its_step(
    backend, dagster_home, git_repo
) -> None:
    settings, resources = backend
    store = open_store(settings.resolved_database_url)
    workspace = f"ws-{uuid.uuid4().hex[:8]}"
    repo = git_repo("tool")
    sha = repo.commit({"start.sh": "#!/bin/sh\ncat greeting.txt\n", "nonce.txt": uuid.uuid4().hex})
    app = store.add_app(workspace, "tool", repo.url, "main", repo_full_name=f"{workspace}/tool")
    greeting, token = f"hello-{uuid.uuid4().hex[:8]}", f"npm_{uuid.uuid4().hex}"
    command = 'printf %s "$API_TOKEN" | sha256sum | cut -d" " -f1 > token.sha && printf %s "$GREETING" > greeting.txt'
    set_vars(
        settings,
        workspace,
        "tool",
        GREETING=(greeting, False),
        API_TOKEN=(token, True),
        RAILPACK_BUILD_CMD=(command, False),
        RAILPACK_START_CMD=("sh start.sh", False),
    )

    def build_once(first: bool) -> tuple[Build, bool]:
        if first:
            build_id = push(settings, dagster_home, repo.url, f"{workspace}/tool", sha)["builds"][0]
        else:
            build_id = store.enqueue(app, "main", sha, trigger="manual", actor="test").build.id
        build = built(settings, dagster_home, resources, build_id)
        log = log_text(settings, build.id)
        assert token not in log
        step = [line for line in log.splitlines() if "sha256sum" in line]
        assert step, log
        return build, any(line.startswith("CACHED ") for line in step)

    first, cached = build_once(first=True)
    files = image_files(first.image_ref)
    assert files["/app/greeting.txt"] == greeting.encode()
    assert files["/app/token.sha"].strip() == sha256(token).encode()
    assert not cached
    _, cached = build_once(first=False)
    assert cached, "nothing changed, so the step comes from the cache"

    rotated = f"npm_{uuid.uuid4().hex}"
    set_vars(settings, workspace, "tool", API_TOKEN=(rotated, True))
    changed, cached = build_once(first=False)
    assert not cached, "a changed secret re-runs the step that uses it"
    assert image_files(changed.image_ref)["/app/token.sha"].strip() == sha256(rotated).encode()
    for value in (token, rotated):
        assert value.encode() not in every_byte(changed.image_ref) + every_byte(first.image_ref)


def _scan(needle: str, roots: list[Path], texts: dict[str, str]) -> list[str]:
    """Where `needle` occurs: file paths under the roots (bytes, any format) and named texts."""
    hits = [str(p) for root in roots for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]
    return hits + [name for name, text in texts.items() if needle in text]


def _database_dump(url: str) -> str:
    """Every row of every table of the build store, as text (what a backup of it would hold)."""
    assert url.startswith("sqlite:///")
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        return "\n".join(db.iterdump())


def _api_answers(settings: Settings, build: Build) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    paths = [
        f"/builds/{build.id}",
        f"/builds/{build.id}/logs",
        f"/builds/{build.id}/logs?follow=true",
        "/builds",
        "/apps",
        f"/apps/{build.workspace}/{build.app}",
        f"/apps/{build.workspace}/{build.app}/variables",
        f"/workspaces/{build.workspace}/variables",
        "/desired-state",
        f"/apps/{build.workspace}/{build.app}/desired-state",
        "/openapi.json",
    ]
    with TestClient(create_app(settings)) as client:
        answers = {path: client.get(path, headers=headers) for path in paths}
    for path, answer in answers.items():
        assert answer.status_code == 200, (path, answer.status_code, answer.text)
    return {path: answer.text for path, answer in answers.items()}


def test_no_secret_value_is_anywhere_but_in_the_build_that_used_it(
    tmp_path: Path, backend, dagster_home, git_repo, base_image, capfd
) -> None:
    settings, resources = backend
    store = open_store(settings.resolved_database_url)
    workspace = f"ws-{uuid.uuid4().hex[:8]}"
    token = f"npm_{uuid.uuid4().hex}"
    multi_line = f"-----BEGIN KEY-----\n{uuid.uuid4().hex}\n{uuid.uuid4().hex}\n-----END KEY-----"
    repo = git_repo("leaky")
    sha = repo.commit(
        {
            "Dockerfile": f"FROM {base_image}\n"
            "RUN --mount=type=secret,id=NPM_TOKEN --mount=type=secret,id=SIGNING_KEY "
            "cat /run/secrets/NPM_TOKEN /run/secrets/SIGNING_KEY && sha256sum /run/secrets/NPM_TOKEN"
            f" && echo {uuid.uuid4().hex}\n"
        }
    )
    store.add_app(workspace, "leaky", repo.url, "main", repo_full_name=f"{workspace}/leaky")
    set_vars(settings, workspace, "leaky", NPM_TOKEN=(token, True), SIGNING_KEY=(multi_line, True))
    build = built(
        settings,
        dagster_home,
        resources,
        push(settings, dagster_home, repo.url, f"{workspace}/leaky", sha)["builds"][0],
    )

    printed = capfd.readouterr()
    runs = dagster_home.get_runs()
    texts = {
        "build store dump": _database_dump(settings.resolved_database_url),
        "run config and tags": json.dumps([(r.run_config, r.tags) for r in runs], default=str),
        "stdout and stderr": printed.out + printed.err,
        **_api_answers(settings, build),
    }
    dagster_dir = Path(dagster_home.root_directory)
    secrets = [token, *(line for line in multi_line.splitlines() if len(line) >= 4)]
    for value in secrets:
        assert _scan(value, [dagster_dir], texts) == []
    assert "*****" in log_text(settings, build.id)
    assert token.encode() not in every_byte(build.image_ref)

    # The same scan finds a value where one is put on purpose, so its silence above means something.
    (dagster_dir / "planted.txt").write_text(f"planted {token}")
    assert _scan(token, [dagster_dir], {**texts, "planted": multi_line}) == [str(dagster_dir / "planted.txt")]
    assert _scan(multi_line.splitlines()[1], [dagster_dir], {"planted": multi_line}) == ["planted"]


def variables_build_job() -> dg.JobDefinition:
    """This module's own code-location job: Dagster caches a reconstructable job's definition per function, and
    each module's re-execution runs against its own test's settings."""
    return environment_build_job()


def test_re_executing_a_failed_build_uses_the_variable_versions_it_was_queued_with(
    depot_env: Settings, depot_emulator, dagster_home, git_repo, base_image, workspace
) -> None:
    settings = depot_env
    store = open_store(settings.resolved_database_url)
    repo = git_repo("again")
    sha = repo.commit({"Dockerfile": DOCKERFILE.format(base=base_image, nonce=uuid.uuid4().hex)})
    store.add_app(workspace, "again", repo.url, "main", repo_full_name=f"{workspace}/again")
    queued_token, later_token = f"npm_{uuid.uuid4().hex}", f"npm_{uuid.uuid4().hex}"
    set_vars(settings, workspace, "again", GREETING=("as-queued", False), NPM_TOKEN=(queued_token, True))
    build_id = push(settings, dagster_home, repo.url, f"{workspace}/again", sha)["builds"][0]

    depot_emulator.faults.reject_tokens = True
    job = dg.reconstructable(variables_build_job)
    run_config = {"ops": {"load_build": {"config": {"build_id": build_id}}}}
    with dg.execute_job(job, instance=dagster_home, run_config=run_config, raise_on_error=False) as failed:
        assert not failed.success
        failed_id = failed.run_id
    assert store.get_build(build_id).status == BuildState.FAILED, [e.message for e in failed.all_events if e.is_failure]

    set_vars(settings, workspace, "again", GREETING=("changed-later", False), NPM_TOKEN=(later_token, True))
    depot_emulator.faults.reject_tokens = False
    options = dg.ReexecutionOptions.from_failure(failed_id, dagster_home)
    with dg.execute_job(job, instance=dagster_home, reexecution_options=options) as rerun:
        assert rerun.success, [e.message for e in rerun.all_events if e.is_failure]

    build = store.get_build(build_id)
    assert build.status == BuildState.SUCCEEDED
    files = image_files(build.image_ref)
    assert files["/greeting"] == b"as-queued\n"
    assert files["/token.sha"].strip() == sha256(queued_token).encode()
