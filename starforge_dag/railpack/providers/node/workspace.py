"""The workspace: the root package and the packages its workspace patterns (or pnpm-workspace.yaml) name."""

from __future__ import annotations

from dataclasses import dataclass, field

from starforge_dag.railpack.context import GenerateContext
from starforge_dag.railpack.providers.node.package_json import PackageJson


@dataclass
class WorkspacePackage:
    """A package of the workspace; the root has the path ''."""

    path: str
    pkg: PackageJson


@dataclass
class Workspace:
    """The root package and the workspace's other packages."""

    root: WorkspacePackage = field(default_factory=lambda: WorkspacePackage("", PackageJson()))
    packages: list[WorkspacePackage] = field(default_factory=list)

    @property
    def all(self) -> list[WorkspacePackage]:
        """The root first, then the packages in the order the patterns found them."""
        return [self.root, *self.packages]

    def has_dependency(self, name: str) -> bool:
        """Any package of the workspace depends on `name`."""
        return any(wp.pkg.has_dependency(name) for wp in self.all)

    def uses_local_file(self) -> bool:
        """Any package has a `file:` dependency."""
        return any(wp.pkg.has_local_dependency() for wp in self.all)


def read_workspace(ctx: GenerateContext, pkg: PackageJson) -> Workspace:
    """The root manifest and every package.json its workspace patterns match."""
    patterns = list(pkg.workspaces)
    if ctx.source.has_file("pnpm-workspace.yaml"):
        data = ctx.source.read_yaml("pnpm-workspace.yaml")
        pnpm = data.get("packages") if isinstance(data, dict) else None
        if isinstance(pnpm, list) and pnpm:
            patterns = [p for p in pnpm if isinstance(p, str)]
    found: list[WorkspacePackage] = []
    for pattern in patterns:
        for match in ctx.source.find_files(_manifest_glob(pattern)):
            data = ctx.source.read_json(match)
            if data is not None:
                found.append(WorkspacePackage(match.rsplit("/", 1)[0], PackageJson.parse(data)))
    return Workspace(WorkspacePackage("", pkg), found)


def _manifest_glob(pattern: str) -> str:
    """A workspace pattern (`packages/*`, `apps/**`, `tools/cli`) as a glob for the manifests under it."""
    if pattern.endswith("/*"):
        return pattern[:-1] + "*/package.json"
    if pattern.endswith("/**"):
        return pattern[:-2] + "**/package.json"
    return pattern.rstrip("/") + "/package.json"
