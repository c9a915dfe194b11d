"""Solve as Depot's builders run it: the `image` exporter becomes dockerd's `moby`, then config, push and digests."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import grpc

from ...buildkit import llb
from ...buildkit.client import config_dockerfile
from ...buildkit.pb import control_pb2
from ...buildkit.registry import RegistryAuth, push_image, remove_image
from ...core.errors import BuildError
from ...core.models import ImageRef
from .records import SolveRecord, new_id
from .rpc import forwarded_metadata

if TYPE_CHECKING:
    from .endpoint import Endpoint

Forward = Callable[[bytes, grpc.ServicerContext, Any], bytes]


def solve_exporters(request: control_pb2.SolveRequest) -> list[tuple[str, dict[str, str]]]:
    """The exporters a Solve asks for: the repeated `Exporters` of current BuildKit if set, else the old pair."""
    if request.Exporters:
        return [(exporter.Type, dict(exporter.Attrs)) for exporter in request.Exporters]
    return [(request.Exporter, dict(request.ExporterAttrs))] if request.Exporter else []


class Solver:
    """Runs one machine's Solve calls; `forward` sends a serialized SolveRequest on to dockerd."""

    def __init__(self, endpoint: Endpoint, forward: Forward):
        self.endpoint = endpoint
        self.forward = forward

    def solve(self, raw: bytes, context: grpc.ServicerContext) -> bytes:
        emulator = self.endpoint.emulator
        try:
            request = control_pb2.SolveRequest.FromString(raw)
        except Exception as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed solve request: {exc}")
            raise
        exporters = solve_exporters(request)
        record = SolveRecord(ref=request.Ref, exporters=[kind for kind, _ in exporters])
        emulator._add_solve(self.endpoint.build_id, record)
        if emulator._take_drop_fault():
            threading.Thread(target=self._drop_mid_solve, args=(request.Ref,), daemon=True).start()
        image = next((attrs for kind, attrs in exporters if kind == "image"), None)
        try:
            if image is None:
                return self.forward(raw, context, None)
            return self._solve_image(request, image, record, context)
        except BaseException as exc:
            details = context.details() if hasattr(context, "details") else None
            if isinstance(details, bytes):
                details = details.decode(errors="replace")
            record.error = "canceled by the client" if not context.is_active() else details or str(exc) or repr(exc)
            raise
        finally:
            record.done = True
            emulator._changed()

    def _drop_mid_solve(self, ref: str) -> None:
        self.endpoint.step_started(ref).wait(timeout=30)
        self.endpoint.emulator.drop_endpoint(self.endpoint.build_id)

    def _registry_auth(self, session_id: str, image: str, record: SolveRecord) -> RegistryAuth | None:
        """Credentials for a push: the client's session first, as Depot's builders do, then the emulator's own."""
        bridge = self.endpoint.session(session_id) if session_id else None
        found: RegistryAuth | None = None
        if bridge is not None:
            try:
                found = bridge.credentials(ImageRef.parse(image).registry)
            except grpc.RpcError:
                found = None
            record.credentials_from = "session" if found else None
        if found is None:
            found = self.endpoint.emulator._registry_auth_for(image)
            record.credentials_from = "emulator" if found else None
        record.registry_username = found.username if found else None
        return found

    def _solve_image(
        self, request: Any, attrs: Mapping[str, str], record: SolveRecord, context: grpc.ServicerContext
    ) -> bytes:
        names = [n.strip() for n in attrs.get("name", "").split(",") if n.strip()]
        push = attrs.get("push", "").lower() in ("true", "1")
        if push and not names:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "image exporter: push needs a name")
        record.images = names
        config = attrs.get("containerimage.config")
        rewritten = control_pb2.SolveRequest()
        rewritten.CopyFrom(request)
        rewritten.DiscardUnknownFields()
        rewritten.ClearField("Exporters")
        rewritten.Exporter = "moby"
        rewritten.ClearField("ExporterAttrs")
        metadata = forwarded_metadata(context)
        staging = f"depot-emulator-staging/{new_id()}:raw"
        if names:
            rewritten.ExporterAttrs["name"] = staging if config else ",".join(names)
        response = control_pb2.SolveResponse.FromString(self.forward(rewritten.SerializeToString(), context, metadata))
        docker_sock = self.endpoint.emulator.docker_sock
        if config and names:
            response = self._apply_config(request.Ref, staging, names, config, context, metadata)
            try:
                remove_image(docker_sock, staging)
            except BuildError:
                pass
        config_digest = response.ExporterResponse.get("containerimage.digest", "")
        out = control_pb2.SolveResponse()
        out.ExporterResponse.update(
            {k: v for k, v in response.ExporterResponse.items() if k != "containerimage.digest"}
        )
        if names:
            out.ExporterResponse["image.name"] = ",".join(names)
        if config_digest:
            out.ExporterResponse["containerimage.config.digest"] = config_digest
            record.config_digest = config_digest
        if push:
            digests = []
            for name in names:
                try:
                    digests.append(push_image(docker_sock, name, self._registry_auth(request.Session, name, record)))
                except (BuildError, ValueError) as exc:
                    context.abort(grpc.StatusCode.UNKNOWN, f"failed to push {name}: {exc}")
            record.pushed = True
            record.digest = digests[0]
            out.ExporterResponse["containerimage.digest"] = digests[0]
        return out.SerializeToString()

    def _apply_config(
        self,
        ref: str,
        staging: str,
        names: list[str],
        config: str,
        context: grpc.ServicerContext,
        metadata: list[tuple[str, Any]],
    ) -> Any:
        """The `containerimage.config` that `moby` ignores, applied by a metadata-only Dockerfile on the result."""
        try:
            dockerfile = config_dockerfile(staging, json.loads(config))
        except (ValueError, TypeError) as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid containerimage.config: {exc}")
            raise
        state = llb.scratch().file(llb.mkfile("/Dockerfile", dockerfile))
        follow_up = control_pb2.SolveRequest(
            Ref=f"{ref}-config", Frontend="dockerfile.v0", Exporter="moby", ExporterAttrs={"name": ",".join(names)}
        )
        follow_up.FrontendInputs["dockerfile"].CopyFrom(llb.definition(state))
        follow_up.FrontendInputs["context"].CopyFrom(llb.definition(state))
        return control_pb2.SolveResponse.FromString(self.forward(follow_up.SerializeToString(), context, metadata))
