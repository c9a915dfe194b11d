"""Depot's `depot.core.v1.ProjectService`: one project per workspace, with its cache policy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc

from ...depot.pb import depot_project_pb2, depot_project_pb2_grpc
from .auth import Auth
from .records import DEFAULT_KEEP_DAYS, DEFAULT_KEEP_GB, REGIONS, ProjectRecord, new_id, now, timestamp
from .rpc import page

if TYPE_CHECKING:
    from .server import DepotEmulator


def project_message(project: ProjectRecord) -> Any:
    return depot_project_pb2.Project(
        project_id=project.project_id,
        organization_id=project.organization_id,
        name=project.name,
        region_id=project.region_id,
        created_at=timestamp(project.created_at),
        cache_policy=depot_project_pb2.CachePolicy(keep_gb=project.keep_gb, keep_days=project.keep_days),
        hardware=depot_project_pb2.Hardware.ValueType(project.hardware),
    )


class ProjectService(depot_project_pb2_grpc.ProjectServiceServicer):
    def __init__(self, emulator: DepotEmulator):
        self.emulator = emulator
        self.auth = Auth(emulator)

    def CreateProject(self, request: Any, context: grpc.ServicerContext) -> Any:
        org = self.auth.organization("CreateProject", context)
        if not request.name.strip():
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "name is required")
        if request.region_id not in REGIONS:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown region {request.region_id!r}")
        if request.HasField("organization_id") and request.organization_id != org:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "token is not valid for that organization")
        policy = request.cache_policy if request.HasField("cache_policy") else None
        project = ProjectRecord(
            project_id=new_id(10),
            organization_id=org,
            name=request.name,
            region_id=request.region_id,
            created_at=now(),
            keep_gb=policy.keep_gb if policy and policy.keep_gb else DEFAULT_KEEP_GB,
            keep_days=policy.keep_days if policy and policy.keep_days else DEFAULT_KEEP_DAYS,
            hardware=request.hardware,
        )
        with self.emulator._cond:
            self.emulator._projects[project.project_id] = project
            self.emulator._cond.notify_all()
        return depot_project_pb2.CreateProjectResponse(project=project_message(project))

    def GetProject(self, request: Any, context: grpc.ServicerContext) -> Any:
        org = self.auth.organization("GetProject", context)
        return depot_project_pb2.GetProjectResponse(
            project=project_message(self.auth.project(org, request.project_id, context))
        )

    def ListProjects(self, request: Any, context: grpc.ServicerContext) -> Any:
        org = self.auth.organization("ListProjects", context)
        with self.emulator._cond:
            projects = [
                p
                for p in self.emulator._projects.values()
                if p.organization_id == org
                and not p.deleted
                and (not request.HasField("region_id") or p.region_id == request.region_id)
            ]
        shown, following = page(projects, request, len(projects) or 1, context)
        response = depot_project_pb2.ListProjectsResponse(projects=[project_message(p) for p in shown])
        if following:
            response.next_page_token = following
        return response

    def DeleteProject(self, request: Any, context: grpc.ServicerContext) -> Any:
        org = self.auth.organization("DeleteProject", context)
        project = self.auth.project(org, request.project_id, context)
        with self.emulator._cond:
            project.deleted = True
            self.emulator._cond.notify_all()
        return depot_project_pb2.DeleteProjectResponse()

    def ResetProject(self, request: Any, context: grpc.ServicerContext) -> Any:
        org = self.auth.organization("ResetProject", context)
        project = self.auth.project(org, request.project_id, context)
        with self.emulator._cond:
            project.resets += 1
            self.emulator._cond.notify_all()
        return depot_project_pb2.ResetProjectResponse()
