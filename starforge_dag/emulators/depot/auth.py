"""Token checks of the Depot services: organization tokens, build tokens, and the status codes Depot answers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from .records import BuildRecord, ProjectRecord
from .rpc import bearer

if TYPE_CHECKING:
    from .server import DepotEmulator


class Auth:
    """Token checks shared by the Depot services."""

    def __init__(self, emulator: DepotEmulator):
        self.emulator = emulator

    def enter(self, method: str, context: grpc.ServicerContext) -> str:
        """Apply the scripted faults for `method`, then return the caller's bearer token."""
        fail, reject = self.emulator._count_call(method)
        if fail:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"{method}: service temporarily unavailable")
        token = bearer(context)
        if token is None:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing bearer token")
        if reject:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid token")
        assert token is not None  # context.abort raised above
        return token

    def organization(self, method: str, context: grpc.ServicerContext) -> str:
        """The id of the organization whose token the caller holds; a build token is not enough."""
        return self._holder(method, context, build=False)

    def own_build(self, method: str, context: grpc.ServicerContext) -> str:
        """The id of the build whose token the caller holds; an organization token is not enough."""
        return self._holder(method, context, build=True)

    def _holder(self, method: str, context: grpc.ServicerContext, *, build: bool) -> str:
        token = self.enter(method, context)
        emulator = self.emulator
        with emulator._cond:
            org = emulator._org_tokens.get(token)
            own = emulator._build_tokens.get(token)
        wanted, other = (own, org) if build else (org, own)
        if wanted is not None:
            return wanted
        if other is not None:
            denied = "this method needs the build's token" if build else "a build token cannot call this method"
            context.abort(grpc.StatusCode.PERMISSION_DENIED, denied)
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid token")
        raise AssertionError("unreachable")

    def build(self, method: str, context: grpc.ServicerContext, build_id: str, *, org_allowed: bool) -> BuildRecord:
        """The build `build_id`, if the caller's token is that build's (or, where allowed, its organization's)."""
        token = self.enter(method, context)
        emulator = self.emulator
        with emulator._cond:
            own = emulator._build_tokens.get(token)
            org = emulator._org_tokens.get(token)
            build = emulator._builds.get(build_id)
        if own is None and org is None:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid token")
        if not build_id:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "build_id is required")
        if own is not None:
            if own != build_id:
                context.abort(grpc.StatusCode.PERMISSION_DENIED, "token is not valid for this build")
            assert build is not None
            return build
        if not org_allowed:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "this method needs the build's token")
        if build is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"build {build_id} not found")
        assert build is not None
        if build.organization_id != org:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "build belongs to another organization")
        return build

    def project(self, org: str, project_id: str, context: grpc.ServicerContext) -> ProjectRecord:
        """The live project `project_id` of the caller's organization."""
        if not project_id:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "project_id is required")
        with self.emulator._cond:
            project = self.emulator._projects.get(project_id)
        if project is None or project.deleted:
            context.abort(grpc.StatusCode.NOT_FOUND, f"project {project_id} not found")
        assert project is not None
        if project.organization_id != org:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "project belongs to another organization")
        return project
