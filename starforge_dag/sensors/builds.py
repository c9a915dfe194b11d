"""Turn queued builds into runs, and keep every build's state true to its run (invariant 3)."""

import time
from datetime import timedelta

import dagster as dg

from ..assets import APP_PARTITIONS, APP_PARTITIONS_NAME, app_partition_key
from ..core.models import Build, utcnow
from ..core.reconcile import AttachRun, CancelRun, EndBuild, ReconcileInput, ReleaseClaim, RunState, StopBuild, decide
from ..core.states import BuildState
from ..jobs import APP_TAG, BUILD_ID_TAG, COMMIT_TAG, TRIGGER_TAG, WORKSPACE_TAG, build_job
from ..ops.build import LoadBuildConfig
from ..resources.build_store import BuildStoreResource
from ..store import BuildStore

STALE_CLAIM = timedelta(minutes=2)
QUEUE_POLL_S = 0.1  # one indexed query on the queue each time
QUEUE_SETTLE_S = 0.3  # a waiting tick that found builds returns once none has come for this long
_RUN_STATES = {
    dg.DagsterRunStatus.SUCCESS: RunState.SUCCESS,
    dg.DagsterRunStatus.FAILURE: RunState.FAILURE,
    dg.DagsterRunStatus.CANCELED: RunState.CANCELED,
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


def _run_state(instance: dg.DagsterInstance, run_id: str) -> RunState | None:
    run = instance.get_run_by_id(run_id)
    return None if run is None else _RUN_STATES.get(run.status, RunState.ACTIVE)


def reconcile(store: BuildStore, instance: dg.DagsterInstance, timeout_s: int, actor: str) -> list[str]:
    """Read builds and their runs, let `core.reconcile.decide` say what to do, and do it; returns notes."""
    now = utcnow()
    cancel_requests = store.cancel_requests()
    stale = store.stale_claims(now - STALE_CLAIM)
    active = store.active_builds()
    run_ids = {b.run_id for b in active if b.run_id} | {b.run_id for b, _ in cancel_requests if b.run_id}
    runs_by_build = {}
    for build in stale:
        found = instance.get_runs(filters=dg.RunsFilter(tags={BUILD_ID_TAG: str(build.id)}), limit=1)
        if found:
            runs_by_build[build.id] = found[0].run_id
    # A run terminated from the UI under the Celery launcher keeps retrying its interrupted step: stop the build.
    canceling = {
        run.run_id
        for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.CANCELING]))
        if run.run_id in run_ids
    }
    decision = ReconcileInput(
        now=now,
        timeout_s=timeout_s,
        active=active,
        runs={run_id: _run_state(instance, run_id) for run_id in run_ids},
        cancel_requests=cancel_requests,
        stale_claims=stale,
        runs_by_build=runs_by_build,
        canceling_runs=frozenset(canceling),
    )
    notes: list[str] = []
    for action in decide(decision):
        match action:
            case CancelRun(run_id=run_id, note=note):
                instance.run_coordinator.cancel_run(run_id)
                notes.append(note)
            case AttachRun(build_id=build_id, run_id=run_id):
                store.attach_run(build_id, run_id)
            case StopBuild(build_id=build_id, reason=reason, note=note):
                store.request_cancel(build_id, actor, reason)
                notes.append(note)
            case ReleaseClaim(build_id=build_id, note=note):
                store.release_claim(build_id)
                notes.append(note)
            case EndBuild():
                ended = store.finish(
                    action.build_id,
                    action.state,
                    action.reason,
                    actor,
                    run_id=action.run_id,
                    only_run_id=action.only_run_id,
                )
                if ended is not None:
                    if action.cancel_run_id:
                        instance.run_coordinator.cancel_run(action.cancel_run_id)
                    notes.append(f"{action.note} ({ended.status.value})")
    return notes


def claim_or_wait(store: BuildStore, limit: int, claimer: str, wait_s: float) -> list[Build]:
    """Queued builds, claimed; with none, keep looking every QUEUE_POLL_S for up to `wait_s`.

    The daemon starts a sensor's next tick about 5 s after the previous one started (its own loop): a tick that
    waits for the next push turns it into a run as soon as it is queued instead of at the next tick. Pushes come
    in bursts (a merge to several apps, a script): once a waiting tick has found builds, it keeps claiming until
    no new one has come for QUEUE_SETTLE_S, so the rest of a burst does not wait for the next tick.
    """
    deadline = time.monotonic() + wait_s
    claimed: list[Build] = []
    last_found = 0.0
    while True:
        found = store.claim_queued(limit - len(claimed), claimer=claimer)
        now = time.monotonic()
        if found:
            claimed += found
            last_found = now
        if wait_s <= 0 or len(claimed) >= limit or now + QUEUE_POLL_S > deadline:
            return claimed
        if claimed and now - last_found >= QUEUE_SETTLE_S:
            return claimed
        time.sleep(QUEUE_POLL_S)


@dg.sensor(
    job=build_job,
    minimum_interval_seconds=1,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Claims queued builds: one run per build, run_key = build id.",
)
def build_queue_sensor(context: dg.SensorEvaluationContext, build_store: BuildStoreResource):
    # The daemon hands its evaluations a reference to its instance; a direct call (tests, `drain_queue`) never waits.
    wait_s = build_store.queue_wait_s if context.instance_ref is not None else 0.0
    claimed = claim_or_wait(build_store.store(), build_store.claims_per_tick, f"sensor:{context.sensor_name}", wait_s)
    if not claimed:
        return dg.SkipReason("no queued builds")
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
    )


@dg.sensor(
    minimum_interval_seconds=1,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Ends builds whose runs ended, vanished or overran, cancels runs asked to stop, and requeues stale "
    "claims.",
)
def build_reconcile_sensor(context: dg.SensorEvaluationContext, build_store: BuildStoreResource):
    notes = reconcile(
        build_store.store(), context.instance, build_store.build_timeout_s, f"sensor:{context.sensor_name}"
    )
    for note in notes:
        context.log.info(note)
    return dg.SkipReason(f"reconciled: {'; '.join(notes)}" if notes else "every build agrees with its run")


def end_build_of_run(
    context: dg.RunStatusSensorContext,
    build_store: BuildStoreResource,
    state: BuildState,
    reason: str,
    step: str | None = None,
) -> None:
    """End the run's build (in the state a cancel request asked for, if any); a newer run's build is left alone."""
    value = context.dagster_run.tags.get(BUILD_ID_TAG)
    if not value:
        return
    store = build_store.store()
    run_id = context.dagster_run.run_id
    store.finish(
        int(value),
        state,
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
