"""Source checkouts as a resource: configuration only."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from ..git.checkout import ALLOWED_SCHEMES, SourceTree, checkout


class GitSource(dg.ConfigurableResource):
    """Shallow, exact-commit checkouts under a work directory (one per build, reused on re-execution)."""

    workdir: str = Field(description="Where build checkouts live.")
    allowed_schemes: list[str] = Field(default=list(ALLOWED_SCHEMES), description="Repository URL schemes allowed.")

    def checkout(self, build_id: int, url: str, sha: str, root_dir: str = "") -> SourceTree:
        dest = Path(self.workdir) / f"build-{build_id}"
        return checkout(url, sha, dest, root_dir=root_dir, allowed_schemes=tuple(self.allowed_schemes))
