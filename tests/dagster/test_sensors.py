"""The queue sensor and the reconciliation that keeps builds true to their runs (invariants 1 and 3)."""

from __future__ import annotations

import time
from datetime import timedelta

import dagster as dg
import pytest
from support.pipeline import DOCKERFILE, RunInThread, watched_fake_backend

from starforge_dag.core.errors import IllegalTransition
from starforge_dag.core.models import BuildResult, BuildSpec, BuildTicket
from starforge_dag.core.states import BuildState
from starforge_dag.dev.runner import tick_queue_sensor, tick_reconcile_sensor
from starforge_dag.jobs import BUILD_ID_TAG, build_job
from starforge_dag.resources.build_service import BuildService
from starforge_dag.resources.build_store import BuildStoreResource
from starforge_dag.sensors import builds as builds_sensors
from starforge_dag.sensors.builds import build_run_canceled_sensor, build_run_failure_sensor


def make_run(instance, build_id: int) -> dg.DagsterRun:
    """A run record for a build, as the sensor's RunRequest would create it."""
    return instance.create_run_for_job(
        build_job,
        run_config={"ops": {"load_build": {"config": {"build_id": build_id}}}},
        tags={BUILD_ID_TAG: str(build_id)},
    )


class CrashingBuilder:
    """A backend with a bug: an unclassified exception, which no op turns into a build state."""

    def submit(self, spec: BuildSpec) -> BuildTicket:
        return BuildTicket(spec=spec, backend="crashing", ref="r")

    def run(self, ticket, on_progress, should_cancel=lambda: False, secrets=None) -> BuildResult:
        raise RuntimeError("segfault in the backend")


class CrashingBuildService(BuildService):
    def builder(self) -> CrashingBuilder:
        return CrashingBuilder()


def test_one_run_request_per_build_keyed_by_build_id(build_store, pipeline, git_repo):
    repo = git_repo("web")
    sha = repo.commit({"Dockerfile": DOCKERFILE})
    build_store.add_app("acme", "web", repo.url, "main", repo_full_name="acme/web")
    other = git_repo("worker")
    other_sha = other.commit({"Dockerfile": DOCKERFILE})
    build_store.add_app("acme", "worker", other.url, "main", repo_full_name="acme/worker")
    first = pipeline.push(repo.url, "acme/web", sha)["builds"][0]
    second = pipeline.push(other.url, "acme/worker", other_sha)["builds"][0]

    result = pipeline.tick()

    assert [r.run_key for r in result.run_requests] == [str(first), str(second)]
    request = result.run_requests[0]
    assert request.tags[BUILD_ID_TAG] == str(first)
    assert request.tags["starforge/workspace"] == "acme" and request.tags["starforge/app"] == "web"
    assert request.tags["starforge/commit"] == sha
    assert request.run_config["ops"]["load_build"]["config"] == {"build_id": first}
    assert sorted(result.dynamic_partitions_requests[0].partition_keys) == ["acme.web", "acme.worker"]
    again = pipeline.tick()
    assert isinstance(again, dg.SkipReason) and "no queued builds" in again.skip_message


def test_newer_push_supersedes_older_queued_build(build_store, pipeline, git_repo):
    repo = git_repo("web")
    app = build_store.add_app("acme", "web", repo.url, "main", repo_full_name="acme/web")
    old = pipeline.push(repo.url, "acme/web", repo.commit({"Dockerfile": DOCKERFILE}))["builds"][0]
    new = pipeline.push(repo.url, "acme/web", repo.commit({"x": "1"}))["builds"][0]

    assert build_store.get_build(old).status == BuildState.SUPERSEDED
    assert build_store.get_build(old).error == f"superseded by build {new}"
    result = pipeline.tick()
    assert [r.run_key for r in result.run_requests] == [str(new)]
    assert build_store.list_builds(app_id=app.id, statuses=["queued"])[0].id == new


def test_unclassified_crash_fails_the_build_at_once(build_store, pipeline, git_repo):
    repo = git_repo("web")
    sha = repo.commit({"Dockerfile": DOCKERFILE})
    build_store.add_app("acme", "web", repo.url, "main", repo_full_name="acme/web")
    build_id = pipeline.push(repo.url, "acme/web", sha)["builds"][0]
    resources = pipeline.resources()
    resources["build_service"] = CrashingBuildService()

    (result,) = pipeline.drain(resources)

    assert not result.success
    build = build_store.get_build(build_id)
    assert build.status == BuildState.FAILED and build.error_step == "await_build"
    assert build.error == "unexpected RuntimeError: segfault in the backend"
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert retries == []


def test_failure_sensor_records_failing_step_and_ignores_superseded_runs(
    build_store, dagster_instance, pipeline, git_repo
):
    repo = git_repo("web")
    sha = repo.commit({"Dockerfile": DOCKERFILE})
    build_store.add_app("acme", "web", repo.url, "main", repo_full_name="acme/web")
    build_id = pipeline.push(repo.url, "acme/web", sha)["builds"][0]
    resources = pipeline.resources()
    resources["build_service"] = CrashingBuildService()
    request = pipeline.tick(resources).run_requests[0]
    result = build_job.execute_in_process(
        run_config=request.run_config,
        tags=request.tags,
        instance=dagster_instance,
        resources=resources,
        raise_on_error=False,
    )
    run = dagster_instance.get_run_by_id(result.run_id)
    failure = [e for e in dagster_instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)][0]

    # A newer run (a re-execution) resumed the build: the old run's failure must not touch it.
    build_store.transition(build_id, BuildState.BUILDING, "re-executed", "test", run_id="someone-else", resume=True)
    ctx = dg.build_run_status_sensor_context(
        sensor_name="build_run_failure_sensor",
        dagster_event=failure.dagster_event,
        dagster_instance=dagster_instance,
        dagster_run=run,
        resources={"build_store": resources["build_store"]},
    ).for_run_failure()
    build_run_failure_sensor(ctx)
    assert build_store.get_build(build_id).status == BuildState.BUILDING

    build_store.attach_run(build_id, run.run_id)
    build_run_failure_sensor(ctx)
    build = build_store.get_build(build_id)
    assert build.status == BuildState.FAILED
    assert build.error_step == "await_build" and "segfault in the backend" in build.error


def test_canceled_run_cancels_its_build(build_store, dagster_instance, pipeline, git_repo):
    repo = git_repo("web")
    build_store.add_app("acme", "web", repo.url, "main", repo_full_name="acme/web")
    build_id = pipeline.push(repo.url, "acme/web", repo.commit({"Dockerfile": DOCKERFILE}))["builds"][0]
    resources = pipeline.resources()
    pipeline.tick(resources)
    run = make_run(dagster_instance, build_id)
    build_store.attach_run(build_id, run.run_id)
    build_store.transition(build_id, BuildState.CLONING, "test", "test", run_id=run.run_id)
    dagster_instance.report_run_canceled(run)
    event = dagster_instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_CANCELED)[0]

    ctx = dg.build_run_status_sensor_context(
        sensor_name="build_run_canceled_sensor",
        dagster_event=event.dagster_event,
        dagster_instance=dagster_instance,
        dagster_run=dagster_instance.get_run_by_id(run.run_id),
        resources={"build_store": resources["build_store"]},
    )
    build_run_canceled_sensor(ctx)

    build = build_store.get_build(build_id)
    assert build.status == BuildState.CANCELED and run.run_id[:8] in build.error


def test_reconcile_ends_builds_whose_runs_vanished_or_overran(
    settings, build_store, dagster_instance, pipeline, git_repo
):
    repo = git_repo("web")
    build_store.add_app("acme", "web", repo.url, "main", repo_full_name="acme/web")
    lost = pipeline.push(repo.url, "acme/web", repo.commit({"Dockerfile": DOCKERFILE}))["builds"][0]
    pipeline.tick()
    build_store.attach_run(lost, "0" * 36)  # a run id the instance never saw (its worker and record are gone)
    build_store.transition(lost, BuildState.CLONING, "test", "test")

    assert isinstance(pipeline.tick(), dg.SkipReason)
    assert build_store.get_build(lost).status == BuildState.CLONING
    result = tick_reconcile_sensor(dagster_instance, pipeline.resources())
    assert result.skip_message == f"reconciled: build {lost}: run missing (failed)"
    assert build_store.get_build(lost).status == BuildState.FAILED
    assert "no longer exists" in build_store.get_build(lost).error

    slow = pipeline.push(repo.url, "acme/web", repo.commit({"y": "1"}))["builds"][0]
    resources = pipeline.resources()
    pipeline.tick(resources)
    run = make_run(dagster_instance, slow)
    build_store.attach_run(slow, run.run_id)
    build_store.transition(slow, BuildState.CLONING, "test", "test", run_id=run.run_id)
    resources["build_store"] = BuildStoreResource(database_url=settings.resolved_database_url, build_timeout_s=0)
    time.sleep(0.01)
    tick_reconcile_sensor(dagster_instance, resources)
    build = build_store.get_build(slow)
    assert build.status == BuildState.TIMED_OUT and "no result after 0s" in build.error
    assert dagster_instance.get_run_by_id(run.run_id).status in (
        dg.DagsterRunStatus.CANCELING,
        dg.DagsterRunStatus.CANCELED,
    )


def test_stale_claim_goes_back_to_the_queue(build_store, pipeline, git_repo):
    repo = git_repo("web")
    build_store.add_app("acme", "web", repo.url, "main", repo_full_name="acme/web")
    build_id = pipeline.push(repo.url, "acme/web", repo.commit({"Dockerfile": DOCKERFILE}))["builds"][0]
    assert [b.id for b in build_store.claim_queued(10, "a crashed tick")] == [build_id]
    assert build_store.claim_queued(10, "another") == []
    assert build_store.stale_claims(build_store.get_build(build_id).created_at + timedelta(hours=1))[0].id == build_id
    build_store.release_claim(build_id)
    result = pipeline.tick()
    assert [r.run_key for r in result.run_requests] == [str(build_id)]


def test_cancel_stops_a_running_build(build_store, dagster_instance, pipeline, git_repo):
    repo = git_repo("web")
    build_store.add_app("acme", "web", repo.url, "main", repo_full_name="acme/web")
    build_id = pipeline.push(repo.url, "acme/web", repo.commit({"Dockerfile": DOCKERFILE}))["builds"][0]
    resources = pipeline.resources()
    resources["build_service"], started = watched_fake_backend(step_delay_s=0.5)
    run = RunInThread(pipeline.tick(resources).run_requests[0], dagster_instance, resources)
    assert started.wait(60)
    build_store.request_cancel(build_id, actor="test", reason="stop it")
    result = run.join()

    assert not result.success
    assert dagster_instance.get_run_by_id(result.run_id).status == dg.DagsterRunStatus.CANCELED
    build = build_store.get_build(build_id)
    assert build.status == BuildState.CANCELED and build.error == "stop it"
    with pytest.raises(IllegalTransition):
        build_store.request_cancel(build_id, actor="test")


def test_timeout_counts_from_the_resumed_attempt_not_the_first_push(build_store, dagster_instance, pipeline, git_repo):
    """A failed build re-executed hours later is a fresh attempt: the old clock must not time it out."""
    import sqlalchemy as sa

    from starforge_dag.store.schema import builds

    repo = git_repo("web")
    build_store.add_app("acme", "web", repo.url, "main", repo_full_name="acme/web")
    build_id = pipeline.push(repo.url, "acme/web", repo.commit({"Dockerfile": DOCKERFILE}))["builds"][0]
    resources = pipeline.resources()
    pipeline.tick(resources)
    parent = make_run(dagster_instance, build_id)
    build_store.transition(build_id, BuildState.CLONING, "go", "test", run_id=parent.run_id)
    build_store.transition(build_id, BuildState.FAILED, "broken", "test", run_id=parent.run_id)
    hours_ago = build_store.get_build(build_id).created_at - timedelta(hours=5)
    with build_store.engine.begin() as conn:
        conn.execute(
            sa.update(builds).where(builds.c.id == build_id).values(created_at=hours_ago, started_at=hours_ago)
        )
    child = make_run(dagster_instance, build_id)
    build_store.transition(build_id, BuildState.BUILDING, "re-executed", "test", run_id=child.run_id, resume=True)

    tick_reconcile_sensor(dagster_instance, resources)  # default timeout: one hour

    assert build_store.get_build(build_id).status == BuildState.BUILDING
    assert dagster_instance.get_run_by_id(child.run_id).status == dg.DagsterRunStatus.NOT_STARTED


def test_build_superseded_after_its_claim_ends_its_run_as_canceled(build_store, dagster_instance, pipeline, git_repo):
    """Issue 7.10: a newer push lands between the sensor's claim and the run's start."""
    repo = git_repo("web")
    build_store.add_app("acme", "web", repo.url, "main", repo_full_name="acme/web")
    old = pipeline.push(repo.url, "acme/web", repo.commit({"Dockerfile": DOCKERFILE}))["builds"][0]
    resources = pipeline.resources()
    request = pipeline.tick(resources).run_requests[0]
    new = pipeline.push(repo.url, "acme/web", repo.commit({"x": "1"}))["builds"][0]

    result = build_job.execute_in_process(
        run_config=request.run_config,
        tags=request.tags,
        instance=dagster_instance,
        resources=resources,
        raise_on_error=False,
    )

    assert dagster_instance.get_run_by_id(result.run_id).status == dg.DagsterRunStatus.CANCELED
    build = build_store.get_build(old)
    assert build.status == BuildState.SUPERSEDED and build.error == f"superseded by build {new}"


def test_running_build_superseded_by_a_newer_push_ends_its_run_as_canceled(
    build_store, dagster_instance, pipeline, git_repo
):
    repo = git_repo("web")
    build_store.add_app("acme", "web", repo.url, "main", repo_full_name="acme/web", cancel_running=True)
    old = pipeline.push(repo.url, "acme/web", repo.commit({"Dockerfile": DOCKERFILE}))["builds"][0]
    resources = pipeline.resources()
    resources["build_service"], started = watched_fake_backend(step_delay_s=0.2)
    run = RunInThread(pipeline.tick(resources).run_requests[0], dagster_instance, resources)
    assert started.wait(60)
    new = pipeline.push(repo.url, "acme/web", repo.commit({"x": "1"}))["builds"][0]
    result = run.join()

    assert dagster_instance.get_run_by_id(result.run_id).status == dg.DagsterRunStatus.CANCELED
    build = build_store.get_build(old)
    assert build.status == BuildState.SUPERSEDED and build.error == f"superseded by build {new}"


def test_a_daemon_tick_waits_for_the_next_push_a_direct_call_answers_at_once(
    build_store, pipeline, git_repo, monkeypatch
):
    repo = git_repo("web")
    sha = repo.commit({"Dockerfile": DOCKERFILE})
    build_store.add_app("acme", "web", repo.url, "main", repo_full_name="acme/web")
    resources = pipeline.resources(
        build_store=pipeline.resources()["build_store"].model_copy(update={"queue_wait_s": 60})
    )

    def never(_seconds: float) -> None:
        raise AssertionError("a direct evaluation must not wait")

    monkeypatch.setattr(builds_sensors.time, "sleep", never)
    skipped = tick_queue_sensor(pipeline.instance, resources)
    assert isinstance(skipped, dg.SkipReason)

    pushed: list[int] = []

    def push_while_waiting(_seconds: float) -> None:
        if not pushed:  # the queue was found empty once: the push arrives during the tick
            pushed.append(pipeline.push(repo.url, "acme/web", sha)["builds"][0])

    monkeypatch.setattr(builds_sensors.time, "sleep", push_while_waiting)
    # The daemon evaluates sensors with a reference to its instance, not the instance itself.
    with dg.build_sensor_context(
        instance_ref=pipeline.instance.get_ref(), resources=resources, sensor_name="build_queue_sensor"
    ) as context:
        result = builds_sensors.build_queue_sensor(context)
    assert isinstance(result, dg.SensorResult), result
    assert [r.run_key for r in result.run_requests] == [str(pushed[0])]


class _Clock:
    """time.monotonic and time.sleep for claim_or_wait: sleeping advances the clock, nothing else does."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class _ScriptedQueue:
    """A queue whose builds arrive at given times; claim_queued claims what has arrived, at most `limit`."""

    def __init__(self, clock: _Clock, arrivals: list[float]) -> None:
        self.clock, self.arrivals, self.claims = clock, sorted(arrivals), []

    def claim_queued(self, limit: int, claimer: str) -> list[float]:
        ready = [t for t in self.arrivals if t <= self.clock.now][:limit]
        self.arrivals = [t for t in self.arrivals if t not in ready]
        self.claims.append((self.clock.now, limit, len(ready)))
        return ready


@pytest.mark.parametrize(
    ("arrivals", "limit", "claimed", "returned_at"),
    [
        # nothing comes: the tick gives up at its deadline
        ([], 20, 0, 3.0),
        # one push during the wait: claimed, then QUEUE_SETTLE_S with nothing new
        ([1.0], 20, 1, 1.3),
        # a burst spread over 0.5 s: one tick claims all of it, and returns QUEUE_SETTLE_S after the last
        ([1.0, 1.05, 1.2, 1.35, 1.5], 20, 5, 1.8),
        # a push after a pause longer than the settle window belongs to the next tick
        ([1.0, 1.6], 20, 1, 1.3),
        # the claim limit ends the tick at once
        ([1.0, 1.0, 1.0, 1.1], 3, 3, 1.0),
        # builds already queued when the tick starts: settled the same way
        ([0.0, 0.0], 20, 2, 0.3),
    ],
)
def test_a_waiting_tick_claims_a_whole_burst_and_returns_when_it_settles(
    monkeypatch, arrivals, limit, claimed, returned_at
):
    clock = _Clock()
    monkeypatch.setattr(builds_sensors.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(builds_sensors.time, "sleep", clock.sleep)
    start = clock.now
    queue = _ScriptedQueue(clock, [start + t for t in arrivals])

    result = builds_sensors.claim_or_wait(queue, limit, "sensor:test", wait_s=3.0)

    assert len(result) == claimed
    assert clock.now - start == pytest.approx(returned_at, abs=0.11)
    assert all(asked >= 1 for _, asked, _ in queue.claims), "never asks the store for zero builds"
    assert sum(got for _, _, got in queue.claims) == claimed


def test_a_direct_tick_claims_once_and_never_settles(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(builds_sensors.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(builds_sensors.time, "sleep", clock.sleep)
    queue = _ScriptedQueue(clock, [clock.now, clock.now + 0.05])

    assert len(builds_sensors.claim_or_wait(queue, 20, "sensor:test", wait_s=0.0)) == 1
    assert len(queue.claims) == 1
