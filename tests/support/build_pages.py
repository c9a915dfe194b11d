"""Helpers of the build page tests: builds moved through their phases in the store, their log lines written."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from starforge_dag.core.models import App, Build, LogLine
from starforge_dag.core.states import BuildState
from starforge_dag.logs import open_log_store
from starforge_dag.settings import Settings
from starforge_dag.store import BuildStore

WORKING = (BuildState.CLONING, BuildState.PLANNING, BuildState.BUILDING)


def sha(n: int) -> str:
    """A commit id distinct per n, also in its first 12 digits."""
    return hashlib.sha1(str(n).encode()).hexdigest()


class Builds:
    """Builds of one app moved by hand through the store, as the build job would move them."""

    def __init__(self, build_store: BuildStore, settings: Settings, app: App):
        self.store, self.settings, self.app = build_store, settings, app
        self._next = 1

    def queued(self, n: int | None = None) -> Build:
        if n is None:
            n, self._next = self._next, self._next + 1
        return self.store.enqueue(self.app, "main", sha(n), trigger="manual", actor="ada").build

    def running(self, n: int | None = None) -> Build:
        build = self.queued(n)
        for state in WORKING:
            self.store.transition(build.id, state, f"entering {state.value}", "run:0a1b2c3d/await_build")
        return build

    def failed(self, error: str, step: str | None = None, lines: Sequence[str] = ()) -> Build:
        build = self.running()
        self.log(build.id, lines)
        self.store.finish(build.id, BuildState.FAILED, error, "run:0a1b2c3d/await_build", error_step=step)
        return self.store.get_build(build.id)

    def succeeded(self, build: Build | None = None) -> Build:
        build = build or self.running()
        self.store.transition(build.id, BuildState.PUSHING, "pushing", "run:0a1b2c3d/await_build")
        digest = f"sha256:{build.id:064x}"
        self.store.succeed(build.id, f"127.0.0.1:5000/apps/acme/web:{build.commit_sha}", digest, "image pushed", "run")
        return self.store.get_build(build.id)

    def log(self, build_id: int, texts: Sequence[str], stream: str = "stdout") -> None:
        with open_log_store(self.settings.log_store_dsn, self.settings.resolved_database_url) as logs:
            start = logs.last_seq(build_id) + 1
            logs.append(
                [
                    LogLine(build_id=build_id, seq=start + i, stream=stream, text=text)  # type: ignore[arg-type]
                    for i, text in enumerate(texts)
                ]
            )
