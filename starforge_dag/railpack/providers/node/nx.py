"""Nx workspaces: which Next.js app of the workspace is built and started."""

from __future__ import annotations

from starforge_dag.railpack.context import GenerateContext
from starforge_dag.railpack.providers.node.frameworks import is_next_app
from starforge_dag.railpack.providers.node.workspace import Workspace, WorkspacePackage


def _project(wp: WorkspacePackage) -> str:
    return wp.pkg.name or (wp.path.rsplit("/", 1)[-1] if wp.path else "")


def nx_deploy_package(ctx: GenerateContext, workspace: Workspace) -> tuple[WorkspacePackage, str] | None:
    """The Next.js app to deploy and its Nx project name: the only one, or the one RAILPACK_NX_APP names."""
    if not ctx.source.has_file("nx.json") or not workspace.has_dependency("nx"):
        return None
    apps = [wp for wp in workspace.all if is_next_app(ctx, wp)]
    if not apps:
        return None
    if selector := ctx.env.railpack("NX_APP"):
        for wp in apps:
            base = wp.path.rsplit("/", 1)[-1] if wp.path else ""
            if selector in {wp.pkg.name, wp.path, base} or wp.pkg.name.rsplit("/", 1)[-1] == selector:
                return wp, _project(wp)
        ctx.warn(f"RAILPACK_NX_APP={selector} did not match any Next.js app package")
        return None
    if len(apps) == 1:
        return apps[0], _project(apps[0])
    names = ", ".join(_project(wp) for wp in apps)
    ctx.warn(f"Multiple Next.js apps found in the Nx workspace ({names}); set RAILPACK_NX_APP to choose one.")
    return None
