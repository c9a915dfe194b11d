"""Image retention as a job: the plan and the deletions live in `deploy.operations`; this op runs them and counts."""

import dagster as dg
from pydantic import Field

from ..core.retention import RetentionPolicy
from ..deploy.operations import collect_images as collect
from ..resources.build_store import BuildStoreResource
from ..resources.registry import RegistryResource


class CollectImagesConfig(dg.Config):
    keep_builds: int = Field(default=10, ge=1, description="Keep the images of the newest N successful builds.")
    keep_desired_days: float = Field(default=7.0, ge=0, description="Never delete an image desired in these days.")
    dry_run: bool = Field(default=False, description="Only say what would be deleted.")


@dg.op(out=dg.Out(int, description="How many images were deleted (or would be, dry)."))
def collect_images(
    context: dg.OpExecutionContext,
    config: CollectImagesConfig,
    build_store: BuildStoreResource,
    registry: RegistryResource,
) -> int:
    """Delete pushed images retention no longer keeps, through the registry's API."""
    report = collect(
        build_store.store(),
        RetentionPolicy(config.keep_builds, config.keep_desired_days),
        dry_run=config.dry_run,
        auth=registry.auth(),
        on_event=context.log.info,
    )
    context.add_output_metadata(
        {
            "deleted_images": len(report.deleted),
            "already_gone": len(report.already_gone),
            "failed": len(report.failed),
            "builds_affected": report.deleted_builds,
            "dry_run": report.dry_run,
        }
    )
    if report.failed:
        context.log.warning(f"{len(report.failed)} deletions failed: {report.failed[0][1]}")
    return len(report.deleted)


@dg.job(tags={"starforge/kind": "retention"}, description="Delete pushed images beyond retention (images per app).")
def collect_images_job():
    collect_images()
