"""The build store as a resource: configuration only, connections per process."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from ..store import BuildStore, open_store
from ..store.depot import DepotRecords
from ..store.github import GitHubStore
from ..variables.crypto import SecretBox, secret_box
from ..variables.delivery import BuildVariables


class BuildStoreResource(dg.ConfigurableResource):
    """Builds, transitions, the queue and desired state (SQLite or Postgres); other resources nest it."""

    database_url: str = Field(description="SQLAlchemy URL of the build store.")
    build_timeout_s: int = Field(default=3600, description="A build not finished this long after enqueue times out.")
    claims_per_tick: int = Field(default=25, description="Most queued builds one sensor tick turns into runs.")
    queue_wait_s: float = Field(
        default=0.0, description="How long a daemon's tick of the build-queue sensor waits for a build to be queued."
    )
    secrets_key: str = Field(
        default="", description="Fernet keys of secret variables (an EnvVar); empty: the key file under `home`."
    )
    home: str = Field(default=".starforge", description="STARFORGE_HOME, where the embedded secrets key file lives.")

    def store(self) -> BuildStore:
        return open_store(self.database_url)

    def github(self) -> GitHubStore:
        """The GitHub tables (installations, linked repositories, commit statuses) on the same database."""
        return self.store().github()

    def depot(self) -> DepotRecords:
        """Each workspace's Depot project and each build's Depot build."""
        return self.store()

    def secret_box(self) -> SecretBox:
        return secret_box(self.secrets_key, Path(self.home))

    def build_variables(self, build_id: int) -> BuildVariables:
        """The variable versions the build was queued with (also on a re-execution), secrets opened for it alone."""
        return BuildVariables.of(self.store().build_variables(build_id, self.secret_box()))
