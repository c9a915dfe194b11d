"""The build store: apps, the queue, transitions and desired state composed into one object."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ..core.errors import IllegalTransition
from ..core.models import App, Build
from ..core.states import ACTIVE, BuildState
from . import schema as t
from .apps import Apps
from .checks import Checks
from .depot import DepotRecords
from .desired import Desired
from .github import GitHubStore
from .notifications import Notifications
from .previews import Previews
from .push_lookup import PushLookups
from .queue import Queue
from .rows import BUILD_SELECT, as_utc, get_build, to_build
from .tokens import Tokens
from .transitions import Transitions
from .variables import Variables


class BuildStore(
    Apps, Queue, PushLookups, Transitions, Desired, DepotRecords, Variables, Tokens, Notifications, Checks, Previews
):
    """All build-state reads and writes; every state change goes through `check_transition`."""

    def github(self) -> GitHubStore:
        """The GitHub tables (installations, linked repositories, commit statuses) on the same database."""
        return GitHubStore(self.engine)

    def get_build(self, build_id: int) -> Build:
        with self.engine.connect() as conn:
            return get_build(conn, build_id)

    def list_builds(
        self,
        app_id: int | None = None,
        limit: int = 50,
        statuses: Sequence[BuildState | str] | None = None,
        workspace: str | None = None,
    ) -> list[Build]:
        query = BUILD_SELECT.order_by(t.builds.c.id.desc()).limit(limit)
        if app_id is not None:
            query = query.where(t.builds.c.app_id == app_id)
        if workspace is not None:
            query = query.where(t.workspaces.c.name == workspace)
        if statuses is not None:
            query = query.where(t.builds.c.status.in_([BuildState(s).value for s in statuses]))
        with self.engine.connect() as conn:
            return [to_build(r) for r in conn.execute(query)]

    def active_builds(self) -> list[Build]:
        return self.list_builds(limit=10_000, statuses=sorted(ACTIVE))

    def remove_app(self, app_id: int, actor: str) -> tuple[App, list[Build]]:
        """Archive the app, then stop its queued and running builds; history and desired state stay."""
        app = self.archive_app(app_id)
        stopped = []
        for build in self.list_builds(app_id=app_id, limit=10_000, statuses=sorted(ACTIVE)):
            try:
                stopped.append(self.request_cancel(build.id, actor, reason=f"app {app.workspace}/{app.name} removed"))
            except IllegalTransition:
                pass  # it ended meanwhile
        return app, stopped

    def set_commit_time(self, build_id: int, commit_time: datetime, message: str = "", author: str = "") -> None:
        """The clone's commit time, for builds whose push did not say (manual builds): the push's time orders.

        The commit's subject line and author always come from the checkout, the one source that cannot be spoofed
        by a delivery."""
        with self._tx() as conn:
            conn.execute(
                t.builds.update()
                .where(t.builds.c.id == build_id, t.builds.c.commit_time.is_(None))
                .values(commit_time=as_utc(commit_time))
            )
            if message or author:
                conn.execute(
                    t.builds.update()
                    .where(t.builds.c.id == build_id)
                    .values(commit_message=message or None, commit_author=author or None)
                )


def open_store(url: str) -> BuildStore:
    """The store for a database URL: cheap to call, as the engine (and its upgraded schema) is shared per process."""
    return BuildStore(url)
