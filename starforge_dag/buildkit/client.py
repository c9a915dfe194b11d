"""BuildKit Control client: solve with live, ordered progress events, cancellation and classified errors.

Errors raised are `core.errors` kinds: TransientBuildError (daemon unreachable, deadline, resource
exhaustion), UserBuildError (a failing RUN, a Dockerfile that does not parse; `step` names the vertex),
PermanentBuildError (anything else), BuildCanceled (after cancel()/should_cancel()).

A solve request carries its exporter twice, as BuildKit v0.13+'s repeated `Exporters` entry and
as the single `Exporter`/`ExporterAttrs` fields older daemons read, so one request suits both.

Image config on a Docker daemon: its `moby` exporter ignores `containerimage.config`, so a raw LLB
result is exported under a temporary name and a metadata-only Dockerfile (FROM it; ENV, WORKDIR, CMD,
...) is solved on top; standalone BuildKit's `image` exporter takes the config as an exporter attr.
"""

from __future__ import annotations

import contextlib
import json
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Self

import grpc

from ..core.errors import (
    BuildCanceled,
    BuildError,
    PermanentBuildError,
    TransientBuildError,
    UserBuildError,
)
from . import llb
from .pb import control_pb2, control_pb2_grpc, ops_pb2
from .registry import RegistryAuth, push_image, remove_image
from .transport import TLSConfig, open_channel

_POLL_S = 0.1
_STATUS_GRACE_S = 3.0
_TRANSIENT_CODES = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
_TRANSIENT_TEXT = (
    "connection reset",
    "connection refused",
    "broken pipe",
    "i/o timeout",
    "transport is closing",
    "code = unavailable",  # a session call failed mid-build, e.g. "failed to read dockerfile: ... Unavailable"
    "no active session",
)
_USER_TEXT = (
    "executor failed running",
    "did not complete successfully",
    "dockerfile parse error",
    "failed to create llb definition",
    "unknown instruction",
    "failed to compute cache key",
    "failed to parse dockerfile",
    "failed to read dockerfile",
    "failed to resolve source metadata",
    "pull access denied",
)
_STREAMS: dict[int, Literal["stdout", "stderr"]] = {1: "stdout", 2: "stderr"}
_CONFIG_FIELDS = {"Env", "WorkingDir", "Cmd", "Entrypoint", "User", "ExposedPorts", "Labels", "StopSignal"}

DefinitionLike = bytes | ops_pb2.Definition


def _now() -> datetime:
    return datetime.now(UTC)


def _ts(stamp: Any) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC) if stamp.seconds or stamp.nanos else _now()


@dataclass(frozen=True)
class VertexEvent:
    """A build step changed state; each state is reported once per vertex."""

    digest: str
    name: str
    status: Literal["started", "completed", "cached", "error"]
    error: str | None = None
    ts: datetime = field(default_factory=_now)


@dataclass(frozen=True)
class LogEvent:
    """One line a build step wrote, without its newline."""

    digest: str
    vertex: str
    stream: Literal["stdout", "stderr"]
    text: str
    ts: datetime = field(default_factory=_now)


BuildEvent = VertexEvent | LogEvent
EventSink = Callable[[BuildEvent], None]


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    labels: dict[str, str]
    platforms: list[str]


@dataclass(frozen=True)
class SolveResult:
    ref: str
    exporter_response: dict[str, str]
    duration_s: float
    steps_total: int
    steps_cached: int


@dataclass(frozen=True)
class ImageBuild:
    """A pushed image: `digest` is the registry's manifest digest, `config_digest` the image ID."""

    image: str
    digest: str
    config_digest: str | None
    solve: SolveResult


class _StatusTracker:
    """Turns BuildKit's repetitive status snapshots into once-only, ordered events."""

    def __init__(self, sink: EventSink | None):
        self._sink = sink
        self._names: dict[str, str] = {}
        self._emitted: dict[str, set[str]] = {}
        self._partial: dict[tuple[str, int], bytes] = {}
        self.failed: tuple[str, str] | None = None
        self.running: str | None = None

    def _emit(self, event: BuildEvent) -> None:
        if self._sink is not None:
            self._sink(event)

    def feed(self, resp: control_pb2.StatusResponse) -> None:
        for v in resp.vertexes:
            self._names[v.digest] = v.name
            done = self._emitted.setdefault(v.digest, set())
            if v.cached and "cached" not in done and not done & {"completed", "error"}:
                self._flush(v.digest)
                done.add("cached")
                self._emit(VertexEvent(v.digest, v.name, "cached", ts=_ts(v.completed)))
                continue
            if v.HasField("started") and not done:
                done.add("started")
                self.running = v.name
                self._emit(VertexEvent(v.digest, v.name, "started", ts=_ts(v.started)))
            if v.error and "error" not in done:
                self._flush(v.digest)
                done.add("error")
                self.failed = (v.name, v.error)
                self._emit(VertexEvent(v.digest, v.name, "error", error=v.error, ts=_ts(v.completed)))
            elif v.HasField("completed") and not done & {"completed", "error", "cached"}:
                self._flush(v.digest)
                done.add("completed")
                self._emit(VertexEvent(v.digest, v.name, "completed", ts=_ts(v.completed)))
        for log in resp.logs:
            key = (log.vertex, log.stream)
            data = self._partial.pop(key, b"") + log.msg
            *lines, rest = data.split(b"\n")
            if rest:
                self._partial[key] = rest
            for line in lines:
                self._line(log.vertex, log.stream, line, _ts(log.timestamp))

    def _line(self, digest: str, stream: int, line: bytes, ts: datetime) -> None:
        text = line.rstrip(b"\r").decode("utf-8", errors="replace")
        name = self._names.get(digest, "")
        self._emit(LogEvent(digest, name, _STREAMS.get(stream, "stderr"), text, ts))

    def _flush(self, digest: str) -> None:
        for key in [k for k in self._partial if k[0] == digest]:
            self._line(digest, key[1], self._partial.pop(key), _now())

    def flush(self) -> None:
        for digest in {k[0] for k in self._partial}:
            self._flush(digest)

    @property
    def steps(self) -> tuple[int, int]:
        """(total, cached) vertices seen."""
        return len(self._emitted), sum(1 for d in self._emitted.values() if "cached" in d)


def classify_error(exc: grpc.RpcError, failed_vertex: tuple[str, str] | None = None) -> BuildError:
    """Map a Solve failure to the taxonomy; a failing step's vertex name becomes `step`."""
    code = exc.code() if hasattr(exc, "code") else None
    details = (exc.details() if hasattr(exc, "details") else None) or str(exc)
    lowered = details.lower()
    step = failed_vertex[0] if failed_vertex else None
    if code in _TRANSIENT_CODES or any(t in lowered for t in _TRANSIENT_TEXT):
        return TransientBuildError(f"BuildKit unavailable: {details}", step=step)
    if any(t in lowered for t in _USER_TEXT):
        return UserBuildError(details, step=step)
    return PermanentBuildError(f"BuildKit error ({code.name if code else 'unknown'}): {details}", step=step)


def _definition(value: DefinitionLike) -> ops_pb2.Definition:
    return value if isinstance(value, ops_pb2.Definition) else ops_pb2.Definition.FromString(value)


def _result_platform(definition: ops_pb2.Definition) -> ops_pb2.Platform:
    """The platform of the result op, for the image config's architecture/os."""
    ops = getattr(definition, "def")
    if not ops:
        raise ValueError("empty LLB definition")
    final = ops_pb2.Op.FromString(ops[-1])
    return final.platform if final.HasField("platform") else llb.parse_platform(None)


def _config_section(image_config: Mapping[str, Any]) -> dict[str, Any]:
    """Accept either a whole OCI image config or just its `config` section."""
    section = dict(image_config.get("config", image_config))
    unknown = set(section) - _CONFIG_FIELDS
    if unknown:
        raise ValueError(f"unsupported image config fields: {sorted(unknown)}")
    return section


def _quote(value: str) -> str:
    """A double-quoted Dockerfile word with no variable expansion."""
    if "\n" in value or "\r" in value:
        raise ValueError("image config values cannot contain newlines")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def config_dockerfile(base: str, image_config: Mapping[str, Any]) -> str:
    """A Dockerfile that only sets image metadata on top of `base` (no RUN, no COPY)."""
    cfg = _config_section(image_config)
    lines = [f"FROM {base}"]
    for item in cfg.get("Env") or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"image config Env entry {item!r} is not KEY=VALUE")
        lines.append(f"ENV {key}={_quote(value)}")
    for key, value in (cfg.get("Labels") or {}).items():
        lines.append(f"LABEL {_quote(key)}={_quote(value)}")
    if cfg.get("ExposedPorts"):
        lines.append("EXPOSE " + " ".join(_quote(p) for p in cfg["ExposedPorts"]))
    if cfg.get("User"):
        lines.append(f"USER {_quote(cfg['User'])}")
    if cfg.get("WorkingDir"):
        lines.append(f"WORKDIR {_quote(cfg['WorkingDir'])}")
    if cfg.get("StopSignal"):
        lines.append(f"STOPSIGNAL {cfg['StopSignal']}")
    if cfg.get("Entrypoint") is not None:
        lines.append(f"ENTRYPOINT {json.dumps(list(cfg['Entrypoint']))}")
    if cfg.get("Cmd") is not None:
        lines.append(f"CMD {json.dumps(list(cfg['Cmd']))}")
    return "\n".join(lines) + "\n"


class BuildKitClient:
    """One connection to a BuildKit endpoint; open it per build in a `with` block."""

    def __init__(self, addr: str, tls: TLSConfig | None = None, exporter: Literal["moby", "image"] | None = None):
        self.addr = addr
        self.exporter = exporter or ("moby" if addr.startswith("docker://") else "image")
        self._channel = open_channel(addr, tls)
        self._stub = control_pb2_grpc.ControlStub(self._channel)
        self._cancel = threading.Event()

    @property
    def docker_socket(self) -> str | None:
        return self.addr.removeprefix("docker://") if self.addr.startswith("docker://") else None

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cancel(self) -> None:
        """Stop the running solve (or the next one, if none runs yet); it raises BuildCanceled."""
        self._cancel.set()

    def list_workers(self, timeout: float = 30.0) -> list[WorkerInfo]:
        try:
            resp = self._stub.ListWorkers(control_pb2.ListWorkersRequest(), timeout=timeout)
        except grpc.RpcError as exc:
            raise classify_error(exc) from exc
        return [
            WorkerInfo(
                id=r.ID,
                labels=dict(r.Labels),
                platforms=["/".join(p for p in (pl.OS, pl.Architecture, pl.Variant) if p) for pl in r.platforms],
            )
            for r in resp.record
        ]

    def solve(
        self,
        definition: DefinitionLike | None = None,
        *,
        frontend: str | None = None,
        frontend_attrs: Mapping[str, str] | None = None,
        frontend_inputs: Mapping[str, DefinitionLike] | None = None,
        exporter: str | None = None,
        exporter_attrs: Mapping[str, str] | None = None,
        session: str | None = None,
        entitlements: Sequence[str] = (),
        ref: str | None = None,
        on_event: EventSink | None = None,
        should_cancel: Callable[[], bool] | None = None,
        timeout: float | None = None,
    ) -> SolveResult:
        """Run one Solve while streaming its Status; returns when the build (and export) ended."""
        if (definition is None) == (frontend is None):
            raise ValueError("solve() needs exactly one of definition or frontend")
        ref = ref or uuid.uuid4().hex
        request = control_pb2.SolveRequest(
            Ref=ref,
            Exporter=exporter or "",
            ExporterAttrs=dict(exporter_attrs or {}),
            Session=session or "",
            Frontend=frontend or "",
            FrontendAttrs=dict(frontend_attrs or {}),
            Entitlements=list(entitlements),
        )
        if exporter:
            # v0.13+ reads the repeated entries and ignores the single fields; v0.8 knows only those.
            request.Exporters.add(Type=exporter, Attrs=dict(exporter_attrs or {}))
        if definition is not None:
            request.Definition.CopyFrom(_definition(definition))
        for name, value in (frontend_inputs or {}).items():
            request.FrontendInputs[name].CopyFrom(_definition(value))

        started = time.monotonic()
        tracker = _StatusTracker(on_event)
        call = self._stub.Solve.future(request, timeout=timeout)
        status = self._stub.Status(control_pb2.StatusRequest(Ref=ref))
        updates: queue.Queue[control_pb2.StatusResponse | None] = queue.Queue()
        reader = threading.Thread(target=_read_status, args=(status, updates), name=f"status-{ref}", daemon=True)
        reader.start()
        canceled = False
        try:
            canceled = self._follow(call, updates, tracker, should_cancel)
        except BaseException:
            call.cancel()
            raise
        finally:
            status.cancel()
            reader.join(timeout=5)
        if not canceled:
            while not updates.empty():
                item = updates.get_nowait()
                if item is not None:
                    tracker.feed(item)
            tracker.flush()
        if canceled:
            raise BuildCanceled("build canceled", step=tracker.running)
        try:
            response = call.result()
        except grpc.RpcError as exc:
            raise classify_error(exc, tracker.failed) from exc
        total, cached = tracker.steps
        return SolveResult(
            ref=ref,
            exporter_response=dict(response.ExporterResponse),
            duration_s=time.monotonic() - started,
            steps_total=total,
            steps_cached=cached,
        )

    def _follow(
        self,
        call: grpc.Future,
        updates: queue.Queue[control_pb2.StatusResponse | None],
        tracker: _StatusTracker,
        should_cancel: Callable[[], bool] | None,
    ) -> bool:
        """Feed status to the tracker until the solve and its status stream end; True if canceled."""
        status_done = False
        solved_at: float | None = None
        while True:
            if self._cancel.is_set() or (should_cancel is not None and should_cancel()):
                self._cancel.clear()
                call.cancel()
                return True
            try:
                item = updates.get(timeout=_POLL_S)
            except queue.Empty:
                pass
            else:
                if item is None:
                    status_done = True
                else:
                    tracker.feed(item)
            if call.done():
                solved_at = solved_at or time.monotonic()
                if status_done or time.monotonic() - solved_at > _STATUS_GRACE_S:
                    return False

    def build_image(
        self,
        image: str,
        *,
        definition: DefinitionLike | None = None,
        image_config: Mapping[str, Any] | None = None,
        frontend: str | None = None,
        frontend_attrs: Mapping[str, str] | None = None,
        frontend_inputs: Mapping[str, DefinitionLike] | None = None,
        session: str | None = None,
        entitlements: Sequence[str] = (),
        ref: str | None = None,
        registry_auth: RegistryAuth | None = None,
        insecure_registry: bool = False,
        on_event: EventSink | None = None,
        on_push_line: Callable[[str], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> ImageBuild:
        """Build `image` (name:tag), push it, and return the registry's manifest digest.

        image_config applies to raw LLB builds only (a Dockerfile sets its own). With the `image`
        exporter, registry credentials come from the session's auth provider, not registry_auth.
        """
        if image_config is not None and definition is None:
            raise ValueError("image_config applies to raw LLB builds; a Dockerfile sets its own config")
        common: dict[str, Any] = {
            "session": session,
            "entitlements": entitlements,
            "on_event": on_event,
            "should_cancel": should_cancel,
        }
        if self.exporter == "image":
            attrs = {"name": image, "push": "true"}
            if insecure_registry:
                attrs["registry.insecure"] = "true"
            if image_config is not None and definition is not None:
                plat = _result_platform(_definition(definition))
                attrs["containerimage.config"] = json.dumps(
                    {"architecture": plat.Architecture, "os": plat.OS, "config": _config_section(image_config)}
                )
            result = self.solve(
                definition,
                frontend=frontend,
                frontend_attrs=frontend_attrs,
                frontend_inputs=frontend_inputs,
                exporter="image",
                exporter_attrs=attrs,
                ref=ref,
                **common,
            )
            digest = result.exporter_response.get("containerimage.digest")
            if not digest:
                raise PermanentBuildError(f"BuildKit pushed {image} but reported no digest", step="push")
            return ImageBuild(image, digest, result.exporter_response.get("containerimage.config.digest"), result)

        sock = self.docker_socket
        if sock is None:
            raise PermanentBuildError(f"the moby exporter needs a docker:// address, not {self.addr}")
        if image_config is not None and definition is not None:  # the check above makes these the same
            result = self._solve_with_config(image, definition, image_config, ref, common)
        else:
            result = self.solve(
                definition,
                frontend=frontend,
                frontend_attrs=frontend_attrs,
                frontend_inputs=frontend_inputs,
                exporter="moby",
                exporter_attrs={"name": image},
                ref=ref,
                **common,
            )
        digest = push_image(sock, image, registry_auth, on_line=on_push_line)
        return ImageBuild(image, digest, result.exporter_response.get("containerimage.digest"), result)

    def _solve_with_config(
        self,
        image: str,
        definition: DefinitionLike,
        image_config: Mapping[str, Any],
        ref: str | None,
        common: dict[str, Any],
    ) -> SolveResult:
        """Export the raw result under a temporary name, then set its config with a metadata-only Dockerfile."""
        ref = ref or uuid.uuid4().hex
        staging = f"starforge-staging/{re.sub(r'[^a-z0-9._-]', '-', ref.lower())}:raw"
        dockerfile = llb.scratch().file(llb.mkfile("/Dockerfile", config_dockerfile(staging, image_config)))
        sock = self.docker_socket
        assert sock is not None
        try:
            raw = self.solve(definition, exporter="moby", exporter_attrs={"name": staging}, ref=ref, **common)
            final = self.solve(
                frontend="dockerfile.v0",
                frontend_inputs={"dockerfile": llb.definition(dockerfile), "context": llb.definition(dockerfile)},
                exporter="moby",
                exporter_attrs={"name": image},
                ref=f"{ref}-config",
                **common,
            )
        except BaseException:
            with contextlib.suppress(BuildError):
                remove_image(sock, staging)
            raise
        remove_image(sock, staging)
        return SolveResult(
            ref=ref,
            exporter_response=final.exporter_response,
            duration_s=raw.duration_s + final.duration_s,
            steps_total=raw.steps_total,
            steps_cached=raw.steps_cached,
        )


def _read_status(status: Any, updates: queue.Queue[control_pb2.StatusResponse | None]) -> None:
    """Move Status messages to the solving thread; None marks the end of the stream."""
    try:
        for resp in status:
            updates.put(resp)
    except grpc.RpcError:
        pass
    finally:
        updates.put(None)
