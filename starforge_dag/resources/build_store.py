"""The build store and source checkout as resources: configuration only, connections per process."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from ..core.checkout import ALLOWED_SCHEMES, SourceTree, checkout
from ..store import BuildStore, open_store


class BuildStoreResource(dg.ConfigurableResource):
    """Builds, transitions, the queue and desired state (SQLite or Postgres)."""

    database_url: str = Field(description="SQLAlchemy URL of the build store.")
    build_timeout_s: int = Field(default=3600, description="A build not finished this long after enqueue times out.")
    claims_per_tick: int = Field(default=25, description="Most queued builds one sensor tick turns into runs.")

    def store(self) -> BuildStore:
        return open_store(self.database_url)


class GitResource(dg.ConfigurableResource):
    """Shallow, exact-commit checkouts under a work directory (one per build, reused on re-execution)."""

    workdir: str = Field(description="Where build checkouts live.")
    allowed_schemes: list[str] = Field(default=list(ALLOWED_SCHEMES), description="Repository URL schemes allowed.")

    def checkout(self, build_id: int, url: str, sha: str, root_dir: str = "") -> SourceTree:
        dest = Path(self.workdir) / f"build-{build_id}"
        return checkout(url, sha, dest, root_dir=root_dir, allowed_schemes=tuple(self.allowed_schemes))
