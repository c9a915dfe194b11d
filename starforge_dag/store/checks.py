"""Builds waiting for their commit's checks: finding them, and settling them once the verdict is in."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from ..core.models import Build
from ..core.states import BuildState
from . import schema as t
from .rows import BUILD_SELECT, StoreBase, get_build, to_build
from .transitions import locked_state, set_state

# What a waiting build may become; anything else is the state machine's business.
SETTLED = (BuildState.QUEUED, BuildState.CHECKS_FAILED, BuildState.TIMED_OUT)


class Checks(StoreBase):
    """The `waiting` builds of apps with `wait_for_checks`."""

    def waiting_builds(
        self,
        *,
        after_id: int = 0,
        limit: int = 50,
        commit_sha: str | None = None,
        app_ids: Sequence[int] | None = None,
    ) -> list[Build]:
        """Waiting builds in id order after `after_id` (a pass resumes where the last one stopped)."""
        query = (
            BUILD_SELECT.where(t.builds.c.status == BuildState.WAITING.value, t.builds.c.id > after_id)
            .order_by(t.builds.c.id)
            .limit(limit)
        )
        if commit_sha is not None:
            query = query.where(t.builds.c.commit_sha == commit_sha)
        if app_ids is not None:
            query = query.where(t.builds.c.app_id.in_(list(app_ids)))
        with self.engine.connect() as conn:
            return [to_build(r) for r in conn.execute(query)]

    def settle_waiting(self, build_id: int, to: BuildState, reason: str, actor: str) -> Build | None:
        """Queue or end a build that still waits; None when it no longer does (superseded or canceled meanwhile)."""
        if to not in SETTLED:
            raise ValueError(f"a waiting build does not become {to.value}")
        with self._tx() as conn:
            if locked_state(conn, build_id) != BuildState.WAITING:
                return None
            set_state(conn, build_id, BuildState.WAITING, to, reason, actor)
            return get_build(conn, build_id)

    def waits_for_checks(self, app_id: int) -> bool:
        with self.engine.connect() as conn:
            return bool(conn.execute(sa.select(t.apps.c.wait_for_checks).where(t.apps.c.id == app_id)).scalar())
