"""The deploy history in Dagster: changes made outside build runs become `app_image` materializations; and the
schedule of image retention."""

from __future__ import annotations

import dagster as dg

from ..assets import APP_PARTITIONS, app_image, app_partition_key, change_materialization
from ..core.feed import RunProgress, changes_to_report
from ..core.models import PRODUCTION, DesiredChange
from ..ops.retention import CollectImagesConfig, collect_images_job
from ..resources.build_store import BuildStoreResource

FEED_BATCH = 200


def _progress(instance: dg.DagsterInstance, run_id: str) -> RunProgress:
    run = instance.get_run_by_id(run_id)
    if run is None:
        return RunProgress.UNKNOWN
    return RunProgress.ENDED if run.is_finished else RunProgress.RUNNING


def _materialized_revisions(instance: dg.DagsterInstance, changes: list[DesiredChange]) -> set[int]:
    """Revisions the build runs already recorded on the apps' partitions."""
    found: set[int] = set()
    for key in sorted({app_partition_key(c.workspace, c.app) for c in changes if c.run_id}):
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=app_image.key, asset_partitions=[key]), limit=100
        ).records
        for record in records:
            materialization = record.asset_materialization
            value = materialization.metadata.get("revision") if materialization else None
            if value is not None:
                found.add(int(str(value.value)))
    return found


@dg.sensor(
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Reports rollbacks, pins, unpins and force-push rewinds as app_image materializations, in feed order.",
)
def desired_state_sensor(context: dg.SensorEvaluationContext, build_store: BuildStoreResource):
    after = int(context.cursor) if context.cursor else 0
    changes = build_store.store().changes_after(after, FEED_BATCH, environment=PRODUCTION)
    if not changes:
        return dg.SkipReason(f"no desired-state change after revision {after}")
    runs = {c.run_id: _progress(context.instance, c.run_id) for c in changes if c.run_id}
    report, cursor = changes_to_report(changes, runs, _materialized_revisions(context.instance, changes))
    if cursor is None:
        return dg.SkipReason(f"revision {changes[0].revision} is still being recorded by its build run")
    known = set(context.instance.get_dynamic_partitions(APP_PARTITIONS.name or "apps"))
    new_keys = sorted({app_partition_key(c.workspace, c.app) for c in report} - known)
    for change in report:
        context.log.info(
            f"revision {change.revision}: {change.workspace}/{change.app} {change.reason} by {change.actor}"
        )
    return dg.SensorResult(
        asset_events=[change_materialization(c) for c in report],
        dynamic_partitions_requests=[APP_PARTITIONS.build_add_request(new_keys)] if new_keys else [],
        cursor=str(cursor),
    )


def image_retention_schedule(keep_builds: int, keep_days: float) -> dg.ScheduleDefinition:
    """Nightly retention with the configured policy (STARFORGE_RETAIN_BUILDS, STARFORGE_RETAIN_DESIRED_DAYS)."""
    return dg.ScheduleDefinition(
        name="image_retention_schedule",
        job=collect_images_job,
        cron_schedule="17 3 * * *",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        run_config=dg.RunConfig(
            ops={"collect_images": CollectImagesConfig(keep_builds=keep_builds, keep_desired_days=keep_days)}
        ),
        description=f"Deletes pushed images beyond the newest {keep_builds} successful builds per app, "
        f"never one desired in the last {keep_days:g} days.",
    )
