"""What a running build needs from the run: a cheap cancel check, and tags that lead to the backend's build."""

from __future__ import annotations

import time
from collections.abc import Callable

import dagster as dg

from ..core.models import BuildResult
from ..resources.build_store import BuildStoreResource
from ..store.retry import is_connectivity_error

BACKEND_BUILD_TAG = "starforge/backend_build_id"
BACKEND_URL_TAG = "starforge/backend_url"


def cancel_check(store: BuildStoreResource, build_id: int, every_s: float = 1.0) -> Callable[[], bool]:
    """Backends poll this on every status update: ask the database at most once a second; a blip is not a cancel."""
    last_asked, canceled = -every_s, False

    def check() -> bool:
        nonlocal last_asked, canceled
        now = time.monotonic()
        if not canceled and now - last_asked >= every_s:
            last_asked = now
            try:
                canceled = store.store().cancel_state(build_id) is not None
            except Exception as exc:
                if not is_connectivity_error(exc):
                    raise
        return canceled

    return check


def tag_backend_build(context: dg.OpExecutionContext, store: BuildStoreResource, build_id: int) -> None:
    """Tag the run with the backend's build (a Depot build), so an operator can go from the run to it.

    Best effort: the build's own outcome matters more than a tag, so a database blip only logs.
    """
    try:
        build = store.store().get_build(build_id)
    except Exception as exc:
        context.log.warning(f"could not read build {build_id} to tag the run with its backend build: {exc}")
        return
    tags = {BACKEND_BUILD_TAG: build.backend_build_id or "", BACKEND_URL_TAG: build.backend_url or ""}
    tags = {key: value for key, value in tags.items() if value}
    if tags and any(context.run.tags.get(key) != value for key, value in tags.items()):
        context.instance.add_run_tags(context.run_id, tags)


def result_metadata(result: BuildResult) -> dict[str, dg.RawMetadataValue]:
    """What the UI shows of a finished build: digest, timing, cache use and the backend's build."""
    metadata: dict[str, dg.RawMetadataValue] = {
        "digest": result.image.digest or "",
        "duration_s": round(result.duration_s, 3),
        "steps": result.steps_total,
        "cached_steps": result.steps_cached,
    }
    if result.backend_build_id:
        metadata["backend_build_id"] = result.backend_build_id
    if result.backend_url:
        metadata["backend_url"] = dg.MetadataValue.url(result.backend_url)
    return metadata
