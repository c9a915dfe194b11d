"""Turn queued builds into runs, and keep every build's state true to its run (invariant 3)."""

from datetime import timedelta

import dagster as dg

from ..assets import APP_PARTITIONS, APP_PARTITIONS_NAME, app_partition_key
from ..core.models import Build, utcnow
from ..core.states import BuildState
from ..jobs import APP_TAG, BUILD_ID_TAG, COMMIT_TAG, TRIGGER_TAG, WORKSPACE_TAG, build_job
from ..ops.build import LoadBuildConfig
from ..resources.build_store import BuildStoreResource
from ..store import BuildStore

STALE_CLAIM = timedelta(minutes=2)
_FINISHED = {
    dg.DagsterRunStatus.FAILURE: BuildState.FAILED,
    dg.DagsterRunStatus.CANCELED: BuildState.CANCELED,
    dg.DagsterRunStatus.SUCCESS: BuildState.FAILED,  # a successful run always ends its build; if not, say so
}


def run_tags(build: Build, timeout_s: int) -> dict[str, str]:
    """Ids only: secrets never go into tags or run config (invariant 4)."""
    return {
        BUILD_ID_TAG: str(build.id),
        WORKSPACE_TAG: build.workspace,
        APP_TAG: build.app,
        COMMIT_TAG: build.commit_sha,
        TRIGGER_TAG: build.trigger.value,
        "dagster/max_runtime": str(timeout_s + 60),
    }


def reconcile(store: BuildStore, instance: dg.DagsterInstance, timeout_s: int, actor: str) -> list[str]:
    """End builds whose run is gone, finished or over time; deliver cancel requests; free stale claims."""
    notes: list[str] = []
    now = utcnow()
    for build, state in store.cancel_requests():
        run = instance.get_run_by_id(build.run_id) if build.run_id else None
        if run is not None and not run.is_finished:
            instance.run_coordinator.cancel_run(run.run_id)
            notes.append(f"asked run {run.run_id[:8]} of build {build.id} to stop ({state.value})")
    for build in store.stale_claims(now - STALE_CLAIM):
        runs = instance.get_runs(filters=dg.RunsFilter(tags={BUILD_ID_TAG: str(build.id)}), limit=1)
        if runs:
            store.attach_run(build.id, runs[0].run_id)
        else:
            store.release_claim(build.id)
            notes.append(f"build {build.id} claimed but never launched: back in the queue")
    for build in store.active_builds():
        if build.status == BuildState.QUEUED and build.run_id is None:
            continue
        run = instance.get_run_by_id(build.run_id) if build.run_id else None
        if build.run_id and run is None:
            store.finish(build.id, BuildState.FAILED, f"its run {build.run_id} no longer exists", actor)
            notes.append(f"build {build.id}: run missing")
        elif run is not None and run.status in _FINISHED:
            cancel = store.cancel_state(build.id)
            state = cancel or _FINISHED[run.status]
            reason = f"run {run.run_id[:8]} ended {run.status.value} without finishing the build"
            if store.finish(build.id, state, reason, actor, run_id=run.run_id, only_run_id=run.run_id):
                notes.append(f"build {build.id}: {state.value}")
        elif (now - build.attempt_started_at).total_seconds() > timeout_s and store.finish(
            build.id, BuildState.TIMED_OUT, f"no result after {timeout_s}s", actor
        ):
            if run is not None and not run.is_finished:
                instance.run_coordinator.cancel_run(run.run_id)
            notes.append(f"build {build.id}: timed out")
    return notes


@dg.sensor(
    job=build_job,
    minimum_interval_seconds=1,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Claims queued builds (one run per build, run_key = build id) and reconciles running ones.",
)
def build_queue_sensor(context: dg.SensorEvaluationContext, build_store: BuildStoreResource):
    store = build_store.store()
    actor = f"sensor:{context.sensor_name}"
    notes = reconcile(store, context.instance, build_store.build_timeout_s, actor)
    for note in notes:
        context.log.info(note)
    claimed = store.claim_queued(build_store.claims_per_tick, claimer=actor)
    if not claimed:
        return dg.SkipReason("no queued builds" + (f"; reconciled: {'; '.join(notes)}" if notes else ""))
    known = set(context.instance.get_dynamic_partitions(APP_PARTITIONS_NAME))
    new_keys = sorted({app_partition_key(b.workspace, b.app) for b in claimed} - known)
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=str(build.id),
                run_config=dg.RunConfig(ops={"load_build": LoadBuildConfig(build_id=build.id)}),
                tags=run_tags(build, build_store.build_timeout_s),
            )
            for build in claimed
        ],
        dynamic_partitions_requests=[APP_PARTITIONS.build_add_request(new_keys)] if new_keys else [],
        cursor=str(max(b.id for b in claimed)),
    )


def end_build_of_run(
    context: dg.RunStatusSensorContext,
    build_store: BuildStoreResource,
    state: BuildState,
    reason: str,
    step: str | None = None,
) -> None:
    """End the run's build, in the state a cancel request asked for if any; a newer run's build is left alone."""
    value = context.dagster_run.tags.get(BUILD_ID_TAG)
    if not value:
        return
    store = build_store.store()
    run_id = context.dagster_run.run_id
    store.finish(
        int(value),
        store.cancel_state(int(value)) or state,
        reason,
        f"sensor:{context.sensor_name}",
        run_id=run_id,
        error_step=step,
        only_run_id=run_id,
    )


@dg.run_failure_sensor(
    monitored_jobs=[build_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A failed build run fails its build with the failing step and error.",
)
def build_run_failure_sensor(context: dg.RunFailureSensorContext, build_store: BuildStoreResource):
    failures = context.get_step_failure_events()
    if failures:
        step = failures[0].step_key
        error = failures[0].step_failure_data.error
        message = error.message.strip() if error else "step failed"
    else:
        step, message = None, context.failure_event.message or "run failed"
    end_build_of_run(context, build_store, BuildState.FAILED, message, step)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.CANCELED,
    monitored_jobs=[build_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A canceled build run cancels (or supersedes) its build.",
)
def build_run_canceled_sensor(context: dg.RunStatusSensorContext, build_store: BuildStoreResource):
    end_build_of_run(context, build_store, BuildState.CANCELED, f"run {context.dagster_run.run_id[:8]} was canceled")
