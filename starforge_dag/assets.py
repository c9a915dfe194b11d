"""The app_image asset: one partition per app, one materialization per successful build."""

import dagster as dg

APP_PARTITIONS_NAME = "apps"
APP_PARTITIONS = dg.DynamicPartitionsDefinition(name=APP_PARTITIONS_NAME)

app_image = dg.AssetSpec(
    "app_image",
    partitions_def=APP_PARTITIONS,
    kinds={"docker", "oci"},
    group_name="deploy",
    description="The pushed, verified image of each app; its latest materialization is what desired state points at.",
)


def app_partition_key(workspace: str, app: str) -> str:
    return f"{workspace}.{app}"
