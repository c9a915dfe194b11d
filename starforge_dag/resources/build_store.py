"""The build store as a resource: configuration only, connections per process."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from ..store import BuildStore, open_store
from ..store.depot import DepotRecords
from ..store.github import GitHubStore


class BuildStoreResource(dg.ConfigurableResource):
    """Builds, transitions, the queue and desired state (SQLite or Postgres); other resources nest it."""

    database_url: str = Field(description="SQLAlchemy URL of the build store.")
    build_timeout_s: int = Field(default=3600, description="A build not finished this long after enqueue times out.")
    claims_per_tick: int = Field(default=25, description="Most queued builds one sensor tick turns into runs.")

    def store(self) -> BuildStore:
        return open_store(self.database_url)

    def github(self) -> GitHubStore:
        """The GitHub tables (installations, linked repositories, commit statuses) on the same database."""
        return GitHubStore(self.store().engine)

    def depot(self) -> DepotRecords:
        """Each workspace's Depot project and each build's Depot build."""
        return self.store()
