"""Changes made outside build runs become app_image materializations, once each, in feed order."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from starforge_dag.core.states import BuildState
from starforge_dag.resources.build_store import BuildStoreResource
from starforge_dag.sensors.desired import desired_state_sensor


def _succeeded(store, app, n: int, run_id: str | None):
    build = store.enqueue(app, "main", f"{n:040x}", commit_time=datetime(2026, 1, 1, n, tzinfo=UTC)).build
    for state in (BuildState.CLONING, BuildState.PLANNING, BuildState.BUILDING, BuildState.PUSHING):
        store.transition(build.id, state, state.value, "run:test")
    store.succeed(build.id, f"127.0.0.1:5000/apps/acme/web:{n}", f"sha256:{n:064x}", "ok", "run:test", run_id=run_id)
    return build


def test_rollbacks_and_pins_are_materialized_once_and_a_lost_run_change_is_not_missed(
    settings, build_store, dagster_instance
):
    app = build_store.add_app("acme", "web", "https://github.com/acme/web.git", "main")
    one = _succeeded(build_store, app, 1, run_id="run-that-never-existed")
    _succeeded(build_store, app, 2, run_id=None)
    build_store.rollback(app.id, one.id, "grace", "bad release")
    build_store.pin(app.id, "grace")
    resource = BuildStoreResource(database_url=settings.resolved_database_url)

    result = desired_state_sensor(dg.build_sensor_context(instance=dagster_instance, cursor=None), build_store=resource)

    assert isinstance(result, dg.SensorResult) and result.cursor == "4"
    events = result.asset_events
    assert [e.metadata["revision"].value for e in events] == [1, 2, 3, 4]
    assert [e.metadata["reason"].value for e in events] == ["build", "build", "rollback", "pin"]
    assert events[2].metadata["actor"].value == "grace" and events[2].partition == "acme.web"
    again = desired_state_sensor(dg.build_sensor_context(instance=dagster_instance, cursor="4"), build_store=resource)
    assert isinstance(again, dg.SkipReason)


def test_the_retention_job_counts_what_it_would_delete(build_store, pipeline):
    from starforge_dag.ops.retention import CollectImagesConfig, collect_images_job

    app = build_store.add_app("acme", "web", "https://github.com/acme/web.git", "main")
    for n in range(1, 5):
        _succeeded(build_store, app, n, run_id=None)
    result = collect_images_job.execute_in_process(
        run_config=dg.RunConfig(
            ops={"collect_images": CollectImagesConfig(keep_builds=2, keep_desired_days=0, dry_run=True)}
        ),
        resources=pipeline.resources(),
    )
    assert result.success and result.output_for_node("collect_images") == 2
    assert all(b.image_deleted_at is None for b in build_store.list_builds(app_id=app.id))
