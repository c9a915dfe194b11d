"""One Depot project per workspace: how it is named and where its id is kept."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Protocol

from ..core.models import DepotProject


def project_name(workspace: str, prefix: str = "starforge") -> str:
    """A readable, stable project name: Depot's dashboard lists projects by name."""
    slug = re.sub(r"[^a-z0-9-]+", "-", workspace.lower()).strip("-")[:80] or "default"
    return f"{prefix}-{slug}" if prefix else slug


class ProjectStore(Protocol):
    def depot_project(self, workspace: str) -> DepotProject | None: ...

    def ensure_depot_project(self, workspace: str, create: Callable[[], DepotProject]) -> DepotProject: ...


class MemoryProjectStore:
    """Projects remembered for the life of the process."""

    def __init__(self) -> None:
        self._projects: dict[str, DepotProject] = {}
        self._lock = threading.Lock()

    def depot_project(self, workspace: str) -> DepotProject | None:
        return self._projects.get(workspace)

    def ensure_depot_project(self, workspace: str, create: Callable[[], DepotProject]) -> DepotProject:
        with self._lock:
            if workspace not in self._projects:
                self._projects[workspace] = create()
            return self._projects[workspace]
