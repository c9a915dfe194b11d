"""Small helpers of the build store tests."""

from __future__ import annotations


def sha(n: int) -> str:
    """A well-formed commit id, distinct per n."""
    return f"{n:040x}"


def commit_time(n: int):
    """The commit time of commit n: later commits are newer."""
    from datetime import UTC, datetime, timedelta

    return datetime(2026, 11, 1, 12, 0, tzinfo=UTC) + timedelta(minutes=n)


def pushing_build(store, app, n: int):
    """A manual build of commit n carried to `pushing`, ready to succeed."""
    from starforge_dag.core.states import BuildState

    build = store.enqueue(app, "main", sha(n), trigger="manual", actor="ada", commit_time=commit_time(n)).build
    for state in (BuildState.CLONING, BuildState.PLANNING, BuildState.BUILDING, BuildState.PUSHING):
        store.transition(build.id, state, state.value, "run:test")
    return build


def image_of(build_id: int, repository: str = "127.0.0.1:5000/apps/acme/web") -> tuple[str, str]:
    """A made-up image reference and digest for a build that pushed nothing real."""
    return f"{repository}:{build_id}", f"sha256:{build_id:064x}"


def succeed(store, build, run_id: str | None = "run-test", image: tuple[str, str] | None = None):
    ref, digest = image or image_of(build.id)
    return store.succeed(build.id, ref, digest, "image pushed", "run:test", run_id=run_id)
