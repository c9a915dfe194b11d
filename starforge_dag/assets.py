"""The app_image asset: one partition per app, one materialization per desired-state change (the deploy history)."""

from typing import Any

import dagster as dg

from .core.models import DesiredChange

APP_PARTITIONS_NAME = "apps"
APP_PARTITIONS = dg.DynamicPartitionsDefinition(name=APP_PARTITIONS_NAME)

app_image = dg.AssetSpec(
    "app_image",
    partitions_def=APP_PARTITIONS,
    kinds={"docker", "oci"},
    group_name="deploy",
    description=(
        "The pushed, verified image of each app. Every desired-state change (build, rewind, rollback, pin, unpin) is "
        "a materialization: the partition's history is the app's deployment history."
    ),
)


def app_partition_key(workspace: str, app: str) -> str:
    return f"{workspace}.{app}"


def change_metadata(change: DesiredChange | None, held_by_pin: bool = False) -> dict[str, Any]:
    """The desired-state change a materialization records: revision, reason, actor and the pinned image."""
    if change is None:
        return {"held_by_pin": held_by_pin}
    return {
        "revision": change.revision,
        "reason": change.reason,
        "actor": change.actor,
        "note": change.note,
        "pinned": change.pinned_image,
        "app_pinned": change.pinned,
        "held_by_pin": held_by_pin,
    }


def change_materialization(change: DesiredChange) -> dg.AssetMaterialization:
    """A change made outside a build run (rollback, pin, unpin, a force-push reusing an image) as a materialization."""
    return dg.AssetMaterialization(
        asset_key=app_image.key,
        partition=app_partition_key(change.workspace, change.app),
        description=f"{change.workspace}/{change.app}: {change.reason} by {change.actor}: {change.note}",
        metadata={
            "digest": change.image_digest,
            "image": change.image_ref,
            "commit": change.commit_sha,
            "build_id": change.build_id,
            **change_metadata(change),
        },
    )
