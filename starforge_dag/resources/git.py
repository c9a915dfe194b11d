"""Source checkouts as a resource: configuration only (work directory, URL policy, deadline)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import dagster as dg
from pydantic import Field

from ..core.inputs import RepoUrlPolicy
from ..git.checkout import CHECKOUT_TIMEOUT_S, SourceTree, checkout
from ..git.command import HOST_VARIABLES
from ..settings import environ_subset


class GitResource(dg.ConfigurableResource):
    """Shallow, exact-commit checkouts under a work directory (one per build, reused on re-execution)."""

    workdir: str = Field(description="Where build checkouts live.")
    allowed_schemes: list[str] = Field(default=["https"], description="URL schemes git may use (repos and submodules).")
    allowed_hosts: list[str] = Field(
        default=["github.com"], description="Hosts git may reach: names, `*.domain`, `host:port`, or `*` for any."
    )
    timeout_s: float = Field(default=CHECKOUT_TIMEOUT_S, description="Deadline of one checkout's git commands.")

    def checkout(
        self, build_id: int, url: str, sha: str, root_dir: str = "", auth_config: Mapping[str, str] | None = None
    ) -> SourceTree:
        dest = Path(self.workdir) / f"build-{build_id}"
        policy = RepoUrlPolicy(schemes=tuple(self.allowed_schemes), hosts=tuple(self.allowed_hosts))
        return checkout(
            url,
            sha,
            dest,
            policy=policy,
            root_dir=root_dir,
            timeout_s=self.timeout_s,
            auth_config=auth_config,
            host_env=environ_subset(HOST_VARIABLES),
        )
