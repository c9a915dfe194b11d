"""The build job: one run per build, every op typed, the two frontends visible as branches."""

import dagster as dg

from .ops.build import (
    await_build,
    clone_source,
    dockerfile_frontend,
    inspect_repo,
    load_build,
    publish_image,
    railpack_frontend,
    submit_build,
)

BUILD_ID_TAG = "starforge/build_id"
WORKSPACE_TAG = "starforge/workspace"
APP_TAG = "starforge/app"
COMMIT_TAG = "starforge/commit"
TRIGGER_TAG = "starforge/trigger"


@dg.job(
    executor_def=dg.in_process_executor,
    tags={"starforge/kind": "build"},
    description="Clone a pushed commit, build and push its image, and move the app's desired state.",
)
def build_job():
    request = load_build()
    source = clone_source(request)
    dockerfile_source, railpack_source = inspect_repo(request, source)
    specs = [dockerfile_frontend(dockerfile_source), railpack_frontend(railpack_source)]
    result = await_build(submit_build(specs))
    publish_image(result, source)
