"""Depot's build services: `depot.build.v1` (create, finish, steps and their logs) and `depot.core.v1` GetBuild."""

from __future__ import annotations

import copy
import secrets
import time
from typing import TYPE_CHECKING, Any

import grpc

from ...depot.pb import depot_build_pb2, depot_build_pb2_grpc, depot_build_record_pb2, depot_build_record_pb2_grpc
from .auth import Auth
from .records import BuildRecord, new_id, now, timestamp
from .rpc import page

if TYPE_CHECKING:
    from .server import DepotEmulator

_STEP_PAGE = 100


class BuildService(depot_build_pb2_grpc.BuildServiceServicer):
    def __init__(self, emulator: DepotEmulator):
        self.emulator = emulator
        self.auth = Auth(emulator)

    def CreateBuild(self, request: Any, context: grpc.ServicerContext) -> Any:
        org = self.auth.organization("CreateBuild", context)
        emulator = self.emulator
        project = self.auth.project(org, request.project_id, context)
        build = BuildRecord(build_id=new_id(), project_id=project.project_id, organization_id=org, created_at=now())
        token = "depot_build_" + secrets.token_hex(24)
        with emulator._cond:
            emulator._builds[build.build_id] = build
            emulator._build_tokens[token] = build.build_id
            emulator._deadlines[build.build_id] = time.monotonic() + emulator.health_timeout_s
            emulator._cond.notify_all()
        return depot_build_pb2.CreateBuildResponse(build_id=build.build_id, build_token=token)

    def FinishBuild(self, request: Any, context: grpc.ServicerContext) -> Any:
        build = self.auth.build("FinishBuild", context, request.build_id, org_allowed=True)
        kind = request.WhichOneof("result")
        if kind is None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "result is required (success or error)")
        with self.emulator._cond:
            if build.finished:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"build {build.build_id} is already finished")
            build.finished = True
            build.finished_at = now()
            build.result = kind
            build.error = request.error.error if kind == "error" else None
            self.emulator._cond.notify_all()
        self.emulator._close_endpoint(build.build_id)
        return depot_build_pb2.FinishBuildResponse()

    def _project_build(self, method: str, request: Any, context: grpc.ServicerContext) -> BuildRecord:
        build = self.auth.build(method, context, request.build_id, org_allowed=True)
        if request.project_id != build.project_id:
            context.abort(
                grpc.StatusCode.NOT_FOUND, f"build {build.build_id} not found in project {request.project_id}"
            )
        return build

    def GetBuildSteps(self, request: Any, context: grpc.ServicerContext) -> Any:
        build = self._project_build("GetBuildSteps", request, context)
        with self.emulator._cond:
            steps = [copy.deepcopy(s) for s in build.steps.values()]
        shown, following = page(steps, request, _STEP_PAGE, context)
        response = depot_build_pb2.GetBuildStepsResponse()
        Step = depot_build_pb2.GetBuildStepsResponse.BuildStep
        for step in shown:
            item = response.build_steps.add(
                name=step.name,
                digest=step.digest,
                cache_state=Step.CACHE_STATE_CACHED if step.cached else Step.CACHE_STATE_UNCACHED,
                has_logs=bool(step.logs),
            )
            item.started_at.CopyFrom(timestamp(step.started_at or build.created_at))
            if step.completed_at:
                item.completed_at.CopyFrom(timestamp(step.completed_at))
            if step.error:
                item.error = step.error
        if following:
            response.next_page_token = following
        return response

    def GetBuildStepLogs(self, request: Any, context: grpc.ServicerContext) -> Any:
        build = self._project_build("GetBuildStepLogs", request, context)
        with self.emulator._cond:
            step = build.steps.get(request.build_step_digest)
            logs = list(step.logs) if step else None
        if logs is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"step {request.build_step_digest} not found")
        assert logs is not None
        shown, following = page(logs, request, _STEP_PAGE * 10, context)
        response = depot_build_pb2.GetBuildStepLogsResponse()
        for at, text in shown:
            response.logs.add(message=text, timestamp=timestamp(at))
        if following:
            response.next_page_token = following
        return response


class BuildRecordService(depot_build_record_pb2_grpc.BuildServiceServicer):
    def __init__(self, emulator: DepotEmulator):
        self.emulator = emulator
        self.auth = Auth(emulator)

    def GetBuild(self, request: Any, context: grpc.ServicerContext) -> Any:
        build = self.auth.build("GetBuild", context, request.build_id, org_allowed=True)
        with self.emulator._cond:
            message = depot_build_record_pb2.Build(
                build_id=build.build_id,
                status=depot_build_record_pb2.Build.Status.ValueType(build.status),
                created_at=timestamp(build.created_at),
            )
            if build.endpoint_at:
                message.started_at.CopyFrom(timestamp(build.endpoint_at))
            end = build.finished_at
            if end:
                message.finished_at.CopyFrom(timestamp(end))
                message.build_duration_seconds = int((end - build.created_at).total_seconds())
            if build.steps:
                message.total_steps = len(build.steps)
                message.cached_steps = sum(1 for s in build.steps.values() if s.cached)
        return depot_build_record_pb2.GetBuildResponse(build=message)
