"""Depot's `depot.buildkit.v1.BuildKitService`: a build's machine handed out, kept alive by health reports, released."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import grpc

from ...depot.pb import depot_buildkit_pb2, depot_buildkit_pb2_grpc
from .auth import Auth
from .records import BuildRecord, now
from .rpc import platform_name

if TYPE_CHECKING:
    from .server import DepotEmulator


def _live(build: BuildRecord, context: grpc.ServicerContext) -> None:
    if build.ended:
        reason = "expired: no health report in time" if build.expired else "finished"
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"build {build.build_id} has ended ({reason})")


class BuildKitService(depot_buildkit_pb2_grpc.BuildKitServiceServicer):
    def __init__(self, emulator: DepotEmulator):
        self.emulator = emulator
        self.auth = Auth(emulator)

    def GetEndpoint(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        emulator = self.emulator
        build = self.auth.build("GetEndpoint", context, request.build_id, org_allowed=False)
        platform = platform_name(request.platform, context)
        with emulator._cond:
            _live(build, context)
            build.endpoint_requests += 1
            build.platform = platform
            first = build.endpoint_requests == 1
            faults = copy.deepcopy(emulator.faults)
            emulator._cond.notify_all()
        if first and faults.not_found_first_endpoint:
            context.abort(grpc.StatusCode.NOT_FOUND, f"build {build.build_id} not found")
        Response = depot_buildkit_pb2.GetEndpointResponse
        for _ in range(faults.pending_messages):
            yield Response(pending=Response.PendingConnection())
            if faults.pending_delay_s and emulator._stopping.wait(faults.pending_delay_s):
                context.abort(grpc.StatusCode.UNAVAILABLE, "emulator stopping")
        endpoint = emulator._endpoint_for(build.build_id, context)
        yield Response(
            active=Response.ActiveConnection(
                endpoint=endpoint.address,
                server_name=endpoint.server_name,
                cert=depot_buildkit_pb2.CertificatePair(
                    cert=depot_buildkit_pb2.PublicCertificate(cert=endpoint.certs.client_cert.decode()),
                    key=depot_buildkit_pb2.PrivateKey(key=endpoint.certs.client_key.decode()),
                ),
                ca_cert=depot_buildkit_pb2.PublicCertificate(cert=endpoint.certs.ca.decode()),
            )
        )

    def ReportHealth(self, request_iterator: Iterable[Any], context: grpc.ServicerContext) -> Any:
        emulator = self.emulator
        own = self.auth.own_build("ReportHealth", context)
        for report in request_iterator:
            if report.build_id != own:
                context.abort(grpc.StatusCode.PERMISSION_DENIED, "token is not valid for this build")
            platform = platform_name(report.platform, context)
            with emulator._cond:
                build = emulator._builds[own]
                _live(build, context)
                build.health_reports += 1
                build.last_health_at = now()
                build.platform = platform
                emulator._deadlines[own] = time.monotonic() + emulator.health_timeout_s
                emulator._cond.notify_all()
        return depot_buildkit_pb2.ReportHealthResponse()

    def ReleaseEndpoint(self, request: Any, context: grpc.ServicerContext) -> Any:
        emulator = self.emulator
        build = self.auth.build("ReleaseEndpoint", context, request.build_id, org_allowed=False)
        with emulator._cond:
            if not build.released:
                build.released = True
                build.released_at = now()
            emulator._cond.notify_all()
        emulator._close_endpoint(build.build_id)
        return depot_buildkit_pb2.ReleaseEndpointResponse()
