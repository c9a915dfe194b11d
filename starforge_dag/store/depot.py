"""Depot's records in the build store: each workspace's project, and which Depot build a build ran as."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import sqlalchemy as sa

from ..core.models import DepotProject, utcnow
from . import schema as t
from .rows import StoreBase


def _lock_key(workspace: str) -> int:
    """A stable signed 64-bit key for Postgres' advisory lock on one workspace's project."""
    return int.from_bytes(hashlib.sha256(f"depot-project:{workspace}".encode()).digest()[:8], "big", signed=True)


class DepotRecords(StoreBase):
    """The build store's side of depot.projects.ProjectStore, and the backend build of each build."""

    def depot_project(self, workspace: str) -> DepotProject | None:
        with self.engine.connect() as conn:
            return self._get(conn, workspace)

    @staticmethod
    def _get(conn: sa.Connection, workspace: str) -> DepotProject | None:
        row = conn.execute(sa.select(t.depot_projects).where(t.depot_projects.c.workspace == workspace)).first()
        if row is None:
            return None
        m = row._mapping
        return DepotProject(
            project_id=m["project_id"], name=m["name"], region=m["region"], organization_id=m["organization_id"]
        )

    def ensure_depot_project(self, workspace: str, create: Callable[[], DepotProject]) -> DepotProject:
        """Create the workspace's project once: racing first builds wait on one lock and reuse its project.

        Postgres: an advisory transaction lock per workspace; SQLite: BEGIN IMMEDIATE excludes other writers.
        The primary key on workspace backs both up.
        """
        with self._tx() as conn:
            if self.is_postgres:
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key(workspace))))
            known = self._get(conn, workspace)
            if known is not None:
                return known
            project = create()
            conn.execute(
                t.depot_projects.insert().values(
                    workspace=workspace,
                    project_id=project.project_id,
                    name=project.name,
                    region=project.region,
                    organization_id=project.organization_id,
                    created_at=utcnow(),
                )
            )
            return project

    def set_backend_build(self, build_id: int, backend_build_id: str, url: str | None) -> bool:
        """Record the Depot build of a build's current attempt; False when no such build (one-off builds)."""
        with self._tx() as conn:
            result = conn.execute(
                t.builds.update()
                .where(t.builds.c.id == build_id)
                .values(backend_build_id=backend_build_id, backend_url=url, updated_at=utcnow())
            )
            return bool(result.rowcount)
