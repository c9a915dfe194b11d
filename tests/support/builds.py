"""Builds carried through a real build store to the state a test starts from."""

from __future__ import annotations

from starforge_dag.core.models import App, Build
from starforge_dag.core.states import BuildState
from starforge_dag.store import BuildStore
from support.facts import at, sha


def pushing_build(store: BuildStore, app: App, n: int) -> Build:
    """A manual build of commit n carried to `pushing`, ready to succeed."""
    build = store.enqueue(app, "main", sha(n), trigger="manual", actor="ada", commit_time=at(n)).build
    for state in (BuildState.CLONING, BuildState.PLANNING, BuildState.BUILDING, BuildState.PUSHING):
        store.transition(build.id, state, state.value, "run:test")
    return build


def image_of(build_id: int, repository: str = "127.0.0.1:5000/apps/acme/web") -> tuple[str, str]:
    """A made-up image reference and digest for a build that pushed nothing real."""
    return f"{repository}:{build_id}", f"sha256:{build_id:064x}"


def succeed(store: BuildStore, build: Build, run_id: str | None = "run-test", image: tuple[str, str] | None = None):
    ref, digest = image or image_of(build.id)
    return store.succeed(build.id, ref, digest, "image pushed", "run:test", run_id=run_id)
