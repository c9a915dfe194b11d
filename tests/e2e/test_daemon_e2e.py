"""The pipeline as operators run it: API, dagster-daemon and dagster-webserver as processes on Postgres."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.stack_client import post_push, wait_for_build

from starforge_dag.dev.stack import Stack, graphql
from starforge_dag.store import open_store

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

TERMINAL = {"succeeded", "failed", "canceled", "superseded", "timed_out"}
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
BUILD_TIMEOUT_S = 240.0
DOCKERFILE = 'FROM busybox\nCOPY . /app\nRUN make\nCMD ["sh", "/app/start.sh"]\n'

RUN_QUERY = """
query Run($runId: ID!) {
  runOrError(runId: $runId) { __typename ... on Run { runId status parentRunId } ... on Error { message } }
}
"""
RUNS_QUERY = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) { __typename ... on Runs { results { runId status parentRunId } } ... on Error { message } }
}
"""
MATERIALIZATIONS_QUERY = """
query Materializations($partition: String!) {
  assetOrError(assetKey: {path: ["app_image"]}) {
    __typename
    ... on Asset {
      assetMaterializations(partitions: [$partition]) {
        partition runId
        metadataEntries { label ... on TextMetadataEntry { text } ... on IntMetadataEntry { intValue } }
      }
    }
  }
}
"""
REEXECUTE_MUTATION = """
mutation Reexecute($parentRunId: String!) {
  launchRunReexecution(reexecutionParams: {parentRunId: $parentRunId, strategy: FROM_FAILURE}) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on Error { message }
  }
}
"""
TICKS_QUERY = """
query Ticks($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename ... on Sensor { sensorState { ticks(limit: 5) { timestamp status } } }
  }
}
"""


# -- real services -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def databases(postgres_database) -> dict[str, str]:
    """Fresh Postgres databases for the build store and for Dagster storage."""
    return {"builds": postgres_database("starforge_e2e_builds"), "dagster": postgres_database("starforge_e2e_dagster")}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("starforge-home")


@pytest.fixture(scope="module")
def fixed_marker(home: Path) -> Path:
    """Builds fail with a user error until this file exists (the fake backend's switch)."""
    return home / "build-fixed"


@pytest.fixture(scope="module")
def stack(databases: dict[str, str], home: Path, fixed_marker: Path) -> Iterator[Stack]:
    env = {
        "STARFORGE_HOME": str(home),
        "STARFORGE_DATABASE_URL": databases["builds"],
        "STARFORGE_DAGSTER_PG_URL": databases["dagster"],
        "STARFORGE_BUILD_BACKEND": "fake",
        "STARFORGE_GIT_ALLOWED_SCHEMES": "file",
        "STARFORGE_GITHUB_WEBHOOK_SECRET": secrets.token_hex(16),
        "STARFORGE_API_TOKEN": secrets.token_hex(16),
        "STARFORGE_FAKE_FAIL_UNTIL_FILE": str(fixed_marker),
    }
    with Stack(env) as running:
        yield running
    open_store(databases["builds"]).engine.dispose()


# -- git ---------------------------------------------------------------------------------------


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Ada",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Ada",
        "GIT_COMMITTER_EMAIL": "ada@example.com",
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def push_commit(root: Path, name: str) -> tuple[str, str]:
    """A new commit with a Dockerfile on main of a bare repo under root; returns (file:// URL, sha)."""
    bare, work = root / f"{name}.git", root / f"{name}-work"
    if not bare.exists():
        git(root, "init", "-q", "--bare", "-b", "main", str(bare))
        git(root, "clone", "-q", str(bare), str(work))
    (work / "Dockerfile").write_text(DOCKERFILE)
    (work / "start.sh").write_text("#!/bin/sh\necho hello\n")
    (work / "app.py").write_text(f"VERSION = {uuid.uuid4().hex!r}\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", f"Change {name}")
    git(work, "push", "-q", "origin", "HEAD:main")
    return f"file://{bare}", git(work, "rev-parse", "HEAD")


def register_app(stack: Stack, name: str, repo_url: str) -> None:
    open_store(stack.settings.resolved_database_url).add_app(
        "acme", name, repo_url, "main", repo_full_name=f"acme/{name}"
    )


# -- Dagster, seen through the webserver --------------------------------------------------------


def runs_of_build(stack: Stack, build_id: int) -> list[dict[str, Any]]:
    tags = [{"key": "starforge/build_id", "value": str(build_id)}]
    return graphql(stack, RUNS_QUERY, {"filter": {"tags": tags}})["runsOrError"]["results"]


def wait_for_run(stack: Stack, run_id: str, statuses: set[str], timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = graphql(stack, RUN_QUERY, {"runId": run_id})["runOrError"]
        if run.get("status") in statuses:
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} is {run.get('status')}, not in {statuses}\n{stack.log_tails()}")


def wait_for_sensor_tick(stack: Stack, after: float, timeout: float = 60.0) -> None:
    """Block until build_queue_sensor finished a tick that started after `after` (epoch seconds)."""
    selector = {
        "repositoryLocationName": "starforge",
        "repositoryName": "__repository__",
        "sensorName": "build_queue_sensor",
    }
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ticks = graphql(stack, TICKS_QUERY, {"selector": selector})["sensorOrError"]["sensorState"]["ticks"]
        if any(t["timestamp"] > after and t["status"] in ("SKIPPED", "SUCCESS") for t in ticks):
            return
        time.sleep(0.5)
    raise AssertionError(f"build_queue_sensor did not tick within {timeout:g}s\n{stack.log_tails()}")


def metadata(materialization: dict[str, Any]) -> dict[str, Any]:
    return {e["label"]: e.get("text", e.get("intValue")) for e in materialization["metadataEntries"]}


def phase_states(build: dict[str, Any]) -> list[str]:
    return [p["state"] for p in build["phases"]]


# -- tests -------------------------------------------------------------------------------------


def test_push_builds_through_the_daemon_and_moves_desired_state(stack: Stack, home: Path, fixed_marker: Path) -> None:
    fixed_marker.touch()
    repo_url, sha = push_commit(home, "shop")
    register_app(stack, "shop", repo_url)

    answer = post_push(stack, repo_url, "acme/shop", sha)
    assert answer.status_code == 202, answer.text
    [build_id] = answer.json()["created"]

    build = wait_for_build(stack, build_id, TERMINAL, BUILD_TIMEOUT_S)
    assert build["status"] == "succeeded", build
    assert phase_states(build) == ["queued", "cloning", "planning", "building", "pushing", "succeeded"]
    with stack.api() as api:
        desired = api.get("/apps/acme/shop/desired-state").json()
    assert (desired["commit_sha"], desired["build_id"]) == (sha, build_id)
    assert desired["image_ref"].endswith(f"/acme/shop:{sha}")
    assert desired["image_digest"] == build["image_digest"]

    # The build ends inside its run's last step; the run and its materialization are recorded just after.
    run = wait_for_run(stack, build["run_id"], FINISHED)
    assert [(r["runId"], r["status"]) for r in runs_of_build(stack, build_id)] == [(run["runId"], "SUCCESS")]
    asset = graphql(stack, MATERIALIZATIONS_QUERY, {"partition": "acme.shop"})["assetOrError"]
    [materialization] = asset["assetMaterializations"]
    assert materialization["runId"] == run["runId"]
    assert {k: v for k, v in metadata(materialization).items() if k in ("digest", "commit", "build_id")} == {
        "digest": build["image_digest"],
        "commit": sha,
        "build_id": build_id,
    }


def test_failed_build_resumes_when_its_run_is_reexecuted_from_failure(
    stack: Stack, home: Path, fixed_marker: Path
) -> None:
    fixed_marker.unlink(missing_ok=True)
    repo_url, sha = push_commit(home, "broken")
    register_app(stack, "broken", repo_url)
    [build_id] = post_push(stack, repo_url, "acme/broken", sha).json()["created"]

    failed = wait_for_build(stack, build_id, TERMINAL, BUILD_TIMEOUT_S)
    assert failed["status"] == "failed", failed
    assert failed["error_step"].endswith("RUN make"), failed
    parent = wait_for_run(stack, failed["run_id"], FINISHED)
    assert parent["status"] == "FAILURE"
    with stack.api() as api:
        assert api.get("/apps/acme/broken/desired-state").status_code == 404

    fixed_marker.touch()
    launched = graphql(stack, REEXECUTE_MUTATION, {"parentRunId": parent["runId"]})["launchRunReexecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    child_id = launched["run"]["runId"]

    resumed = wait_for_build(stack, build_id, {"succeeded"}, BUILD_TIMEOUT_S)
    assert resumed["run_id"] == child_id
    states = phase_states(resumed)
    failed_at = states.index("failed")
    assert "building" in states[failed_at + 1 : -1] and states[-1] == "succeeded", states
    child = wait_for_run(stack, child_id, FINISHED)
    assert (child["status"], child["parentRunId"]) == ("SUCCESS", parent["runId"])
    with stack.api() as api:
        desired = api.get("/apps/acme/broken/desired-state").json()
    assert (desired["commit_sha"], desired["build_id"]) == (sha, build_id)


def test_redelivered_push_is_answered_without_a_second_build_or_run(
    stack: Stack, home: Path, fixed_marker: Path
) -> None:
    fixed_marker.touch()
    repo_url, sha = push_commit(home, "api")
    register_app(stack, "api", repo_url)
    delivery = str(uuid.uuid4())

    first = post_push(stack, repo_url, "acme/api", sha, delivery_id=delivery)
    again = post_push(stack, repo_url, "acme/api", sha, delivery_id=delivery)
    assert first.status_code == 202 and again.status_code == 200
    [build_id] = first.json()["created"]
    assert (again.json()["status"], again.json()["builds"], again.json()["created"]) == ("redelivery", [build_id], [])
    build = wait_for_build(stack, build_id, TERMINAL, BUILD_TIMEOUT_S)
    assert build["status"] == "succeeded", build
    wait_for_run(stack, build["run_id"], FINISHED)

    # Once the build has ended, a re-queued delivery would make a new build: give the sensor a tick to launch it.
    redelivered_at = time.time()
    late = post_push(stack, repo_url, "acme/api", sha, delivery_id=delivery)
    assert (late.status_code, late.json()["builds"]) == (200, [build_id])
    wait_for_sensor_tick(stack, after=redelivered_at)
    with stack.api() as api:
        builds = api.get("/builds", params={"app": "acme/api"}).json()
    assert [b["id"] for b in builds] == [build_id]
    assert [r["status"] for r in runs_of_build(stack, build_id)] == ["SUCCESS"]
