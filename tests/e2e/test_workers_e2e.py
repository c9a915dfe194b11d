"""What operators rely on, with builds run by two Celery run workers (Dagster's CeleryRunLauncher on Redis)."""

from __future__ import annotations

import re
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from support.redis_server import RedisServer
from support.stack_client import post_push, wait_for_build

from starforge_dag.dev.stack import Stack, graphql
from starforge_dag.store import open_store

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

TERMINAL = {"succeeded", "failed", "canceled", "superseded", "timed_out"}
IN_PROGRESS = {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"}
STEP_DELAY_S = 1.0
SHORT = "FROM busybox\nCOPY . /app\n"  # three steps: a few seconds
LONG = "FROM busybox\n" + "".join(f"RUN step {i}\n" for i in range(60))  # a minute: long enough to interrupt
LOST_WORKER_DEADLINE_S = 120.0

RUNS_QUERY = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename ... on Runs { results { runId status parentRunId tags { key value } } } ... on Error { message }
  }
}
"""
REEXECUTE_MUTATION = """
mutation Reexecute($parentRunId: String!) {
  launchRunReexecution(reexecutionParams: {parentRunId: $parentRunId, strategy: FROM_FAILURE}) {
    __typename ... on LaunchRunSuccess { run { runId } } ... on Error { message }
  }
}
"""
TERMINATE_MUTATION = """
mutation Terminate($runId: String!) {
  terminateRun(runId: $runId) { __typename ... on TerminateRunFailure { message } ... on Error { message } }
}
"""


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module")
def stack(postgres_database, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {
        "STARFORGE_HOME": str(tmp_path_factory.mktemp("starforge-home")),
        "STARFORGE_DATABASE_URL": postgres_database("starforge_workers_builds"),
        "STARFORGE_DAGSTER_PG_URL": postgres_database("starforge_workers_dagster"),
        "STARFORGE_BUILD_BACKEND": "fake",
        "STARFORGE_FAKE_STEP_DELAY_S": str(STEP_DELAY_S),
        "STARFORGE_GIT_ALLOWED_SCHEMES": "file",
        "STARFORGE_GITHUB_WEBHOOK_SECRET": secrets.token_hex(16),
        "STARFORGE_API_TOKEN": secrets.token_hex(16),
        "STARFORGE_CELERY_BROKER_URL": redis_server.url,
    }
    # One build at a time per worker: two in all, below the queue's limit of 8.
    with Stack(env, workers=2, worker_concurrency=1) as running:
        yield running


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("repos")


def git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.com"}
    env |= {"GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example.com", "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def push_app(
    stack: Stack, root: Path, workspace: str, name: str, dockerfile: str = SHORT, cancel_running: bool = False
) -> int:
    """A new commit on an app's main (registered on its first push), pushed through the webhook; the build id."""
    bare, work = root / f"{workspace}-{name}.git", root / f"{workspace}-{name}"
    first = not bare.exists()
    if first:
        git(root, "init", "-q", "--bare", "-b", "main", str(bare))
        git(root, "clone", "-q", str(bare), str(work))
    (work / "Dockerfile").write_text(dockerfile)
    (work / "app.py").write_text(f"VERSION = {uuid.uuid4().hex!r}\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "Change")
    git(work, "push", "-q", "origin", "HEAD:main")
    url, sha = f"file://{bare}", git(work, "rev-parse", "HEAD")
    if first:
        open_store(stack.settings.resolved_database_url).add_app(
            workspace, name, url, "main", repo_full_name=f"{workspace}/{name}", cancel_running=cancel_running
        )
    answer = post_push(stack, url, f"{workspace}/{name}", sha)
    assert answer.status_code == 202, answer.text
    [build_id] = answer.json()["created"]
    return build_id


def runs(stack: Stack, tags: dict[str, str] | None = None) -> list[dict[str, Any]]:
    filter_ = {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}
    return graphql(stack, RUNS_QUERY, {"filter": filter_})["runsOrError"]["results"]


def tag(run: dict[str, Any], key: str) -> str | None:
    return next((t["value"] for t in run["tags"] if t["key"] == key), None)


def wait_for_phase(stack: Stack, build_id: int, state: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with stack.api() as api:
        while time.monotonic() < deadline:
            build = api.get(f"/builds/{build_id}").json()
            if state in [p["state"] for p in build["phases"]] or build["status"] in TERMINAL:
                return build
            time.sleep(0.25)
    raise AssertionError(f"build {build_id} never reached {state}\n{stack.log_tails()}")


LOGS_QUERY = """
query Logs($runId: ID!) {
  logsForRun(runId: $runId) {
    __typename ... on EventConnection { events { __typename ... on MessageEvent { message } } }
  }
}
"""


def run_messages(stack: Stack, run_id: str) -> list[str]:
    events = graphql(stack, LOGS_QUERY, {"runId": run_id})["logsForRun"].get("events", [])
    return [event.get("message") or "" for event in events]


def run_pid(stack: Stack, run_id: str, timeout: float = 60.0) -> int:
    """The pid of the process executing `run_id`, from the engine event Dagster logs when the run starts there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in run_messages(stack, run_id):
            found = re.search(r"Started process for run \(pid: (\d+)\)", message)
            if found:
                return int(found.group(1))
        time.sleep(0.25)
    raise AssertionError(f"run {run_id} never started a process\n{stack.log_tails()}")


def worker_of(stack: Stack, pid: int) -> str:
    """The worker service `pid` belongs to."""
    for name in stack.worker_names:
        service = stack.services[name]
        assert service.process is not None
        try:
            children = psutil.Process(service.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            continue  # a worker the test killed
        if pid in {p.pid for p in children}:
            return name
    raise AssertionError(f"process {pid} belongs to no worker")


def worker_logs(stack: Stack) -> dict[str, str]:
    return {name: stack.services[name].log_path.read_text(errors="replace") for name in stack.worker_names}


# -- tests -------------------------------------------------------------------------------------


def test_a_burst_runs_on_both_workers_within_the_queue_limits(stack: Stack, repos: Path) -> None:
    build_ids = [push_app(stack, repos, "acme", f"burst-{i}") for i in range(5)]
    build_ids += [push_app(stack, repos, "globex", f"burst-{i}") for i in range(5)]
    most = {"acme": 0, "globex": 0, "all": 0}
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        live = [r for r in runs(stack) if r["status"] in IN_PROGRESS and r["status"] != "QUEUED"]
        for workspace in ("acme", "globex"):
            most[workspace] = max(most[workspace], sum(tag(r, "starforge/workspace") == workspace for r in live))
        most["all"] = max(most["all"], len(live))
        with stack.api() as api:
            if all(api.get(f"/builds/{b}").json()["status"] in TERMINAL for b in build_ids):
                break
        time.sleep(0.2)
    builds = [wait_for_build(stack, b, TERMINAL, 10) for b in build_ids]
    assert [b["status"] for b in builds] == ["succeeded"] * 10, builds
    # The queue admits 8 runs (4 per workspace) although only 2 can execute: the rest wait on Redis, not failed.
    assert most["acme"] <= 4 and most["globex"] <= 4 and most["all"] <= 8, most
    assert most["all"] > 2, most
    done = {name: log.count("succeeded in") for name, log in worker_logs(stack).items()}
    assert all(count > 0 for count in done.values()), done


def test_terminating_a_run_from_the_ui_cancels_its_build(stack: Stack, repos: Path) -> None:
    build_id = push_app(stack, repos, "acme", "terminated", LONG)
    build = wait_for_phase(stack, build_id, "building")
    answer = graphql(stack, TERMINATE_MUTATION, {"runId": build["run_id"]})["terminateRun"]
    assert answer["__typename"] == "TerminateRunSuccess", answer
    ended = wait_for_build(stack, build_id, TERMINAL, 120)
    assert ended["status"] == "canceled", (ended["error"], ended["phases"][-2:])


def test_cancel_and_superseding_push_end_running_builds(stack: Stack, repos: Path) -> None:
    canceled = push_app(stack, repos, "acme", "canceled", LONG)
    wait_for_phase(stack, canceled, "building")
    with stack.api() as api:
        assert api.post(f"/builds/{canceled}/cancel").status_code == 202
    assert wait_for_build(stack, canceled, TERMINAL, 120)["status"] == "canceled"

    older = push_app(stack, repos, "acme", "superseded", LONG, cancel_running=True)
    wait_for_phase(stack, older, "building")
    newer = push_app(stack, repos, "acme", "superseded", SHORT)
    assert wait_for_build(stack, older, TERMINAL, 120)["status"] == "superseded"
    assert wait_for_build(stack, newer, TERMINAL, 120)["status"] == "succeeded"


def test_redis_restarted_during_a_burst_loses_no_build_and_doubles_none(
    stack: Stack, repos: Path, redis_server: RedisServer
) -> None:
    build_ids = [push_app(stack, repos, "initech", f"restart-{i}") for i in range(6)]
    wait_for_phase(stack, build_ids[0], "building")
    redis_server.restart()
    builds = [wait_for_build(stack, b, TERMINAL, 240) for b in build_ids]
    assert [b["status"] for b in builds] == ["succeeded"] * 6, builds
    for build in builds:
        assert [r["status"] for r in runs(stack, {"starforge/build_id": str(build["id"])})] == ["SUCCESS"]


def test_killed_run_process_fails_the_build_and_reexecution_finishes_it(stack: Stack, repos: Path) -> None:
    build_id = push_app(stack, repos, "acme", "killed-run", LONG)
    build = wait_for_phase(stack, build_id, "building")
    process = psutil.Process(run_pid(stack, build["run_id"]))
    worker_of(stack, process.pid)
    killed_at = time.monotonic()
    process.kill()
    failed = wait_for_build(stack, build_id, TERMINAL, LOST_WORKER_DEADLINE_S)
    assert failed["status"] == "failed" and failed["error"], failed
    assert time.monotonic() - killed_at < LOST_WORKER_DEADLINE_S
    assert any("Celery task failed" in m for m in run_messages(stack, build["run_id"]))


def test_killed_worker_fails_the_build_and_the_other_worker_finishes_it(stack: Stack, repos: Path) -> None:
    build_id = push_app(stack, repos, "acme", "killed-worker", LONG)
    build = wait_for_phase(stack, build_id, "building")
    name = worker_of(stack, run_pid(stack, build["run_id"]))
    service = stack.services[name]
    assert service.process is not None
    master = psutil.Process(service.process.pid)
    whole = [master, *master.children(recursive=True)]
    killed_at = time.monotonic()
    for process in whole:
        process.kill()
    psutil.wait_procs(whole, timeout=10)

    failed = wait_for_build(stack, build_id, TERMINAL, LOST_WORKER_DEADLINE_S)
    assert failed["status"] == "failed" and failed["error"], failed
    assert any("no longer answers" in m for m in run_messages(stack, build["run_id"]))
    assert time.monotonic() - killed_at < LOST_WORKER_DEADLINE_S

    launched = graphql(stack, REEXECUTE_MUTATION, {"parentRunId": build["run_id"]})["launchRunReexecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    child = launched["run"]["runId"]
    survivor = next(n for n in stack.worker_names if n != name)
    assert worker_of(stack, run_pid(stack, child)) == survivor
    resumed = wait_for_build(stack, build_id, {"succeeded"}, 240)
    assert resumed["run_id"] == child
    states = [p["state"] for p in resumed["phases"]]
    assert "failed" in states and states[-1] == "succeeded", states
