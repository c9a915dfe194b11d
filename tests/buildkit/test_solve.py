"""Solving against the real BuildKit: live logs, failures, cancellation and error kinds."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import grpc
import pytest

from starforge_dag.buildkit import llb
from starforge_dag.buildkit.client import (
    BuildEvent,
    BuildKitClient,
    LogEvent,
    VertexEvent,
    classify_error,
)
from starforge_dag.buildkit.registry import manifest_digest
from starforge_dag.core.errors import (
    BuildCanceled,
    ErrorKind,
    PermanentBuildError,
    TransientBuildError,
    UserBuildError,
)


def run_state(base_image: str, script: str, name: str | None = None, network: str = "none") -> llb.State:
    return llb.image(base_image).run(["sh", "-c", script], network=network, name=name, ignore_cache=True).root()  # type: ignore[arg-type]


def processes_with(marker: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in text:
            found.append(text)
    return found


@pytest.mark.integration
def test_raw_llb_build_is_pushed_and_reports_the_registry_manifest_digest(
    buildkit_client: BuildKitClient, base_image: str, image_name: str
) -> None:
    st = run_state(base_image, "mkdir -p /app && echo built > /app/out", name="build app")
    events: list[BuildEvent] = []
    pushed: list[str] = []

    build = buildkit_client.build_image(
        image_name, definition=llb.marshal(st), on_event=events.append, on_push_line=pushed.append
    )

    assert build.digest == manifest_digest(image_name)
    assert build.config_digest and build.config_digest != build.digest
    assert build.solve.exporter_response["containerimage.digest"] == build.config_digest
    assert any("digest: " + build.digest in line for line in pushed)
    assert VertexEvent in {type(e) for e in events}
    assert ("build app", "completed") in {(e.name, e.status) for e in events if isinstance(e, VertexEvent)}


@pytest.mark.integration
def test_log_lines_arrive_in_order_while_the_build_runs(buildkit_client: BuildKitClient, base_image: str) -> None:
    script = "echo first; sleep 1.5; echo second; echo err >&2; sleep 1.5; printf 'third\\nfourth'"
    arrivals: list[tuple[float, LogEvent]] = []

    def on_event(event: BuildEvent) -> None:
        if isinstance(event, LogEvent):
            arrivals.append((time.monotonic(), event))

    buildkit_client.solve(llb.marshal(run_state(base_image, script, name="chatty")), on_event=on_event)
    ended = time.monotonic()

    stdout = [e.text for _, e in arrivals if e.stream == "stdout"]
    assert stdout == ["first", "second", "third", "fourth"]
    assert [e.text for _, e in arrivals if e.stream == "stderr"] == ["err"]
    assert all(e.vertex == "chatty" for _, e in arrivals)
    first_at = arrivals[0][0]
    assert ended - first_at > 2.0, "the first line must be delivered while the step still runs"


@pytest.mark.integration
def test_failing_run_is_a_user_error_naming_the_step(buildkit_client: BuildKitClient, base_image: str) -> None:
    events: list[BuildEvent] = []
    st = run_state(base_image, "echo about to fail; exit 3", name="RUN npm test")

    with pytest.raises(UserBuildError) as caught:
        buildkit_client.solve(llb.marshal(st), on_event=events.append)

    assert caught.value.kind is ErrorKind.USER
    assert caught.value.step == "RUN npm test"
    assert "exit code: 3" in caught.value.message
    assert "executor failed running" in caught.value.message
    assert any(isinstance(e, LogEvent) and e.text == "about to fail" for e in events)
    assert any(isinstance(e, VertexEvent) and e.status == "error" for e in events)


@pytest.mark.integration
def test_dockerfile_parse_error_is_a_user_error(buildkit_client: BuildKitClient) -> None:
    dockerfile = llb.scratch().file(llb.mkfile("/Dockerfile", "FROMM busybox\n"))
    inputs = {"dockerfile": llb.marshal(dockerfile), "context": llb.marshal(dockerfile)}

    with pytest.raises(UserBuildError) as caught:
        buildkit_client.solve(frontend="dockerfile.v0", frontend_inputs=inputs)

    assert "unknown instruction" in caught.value.message.lower()


@pytest.mark.integration
def test_should_cancel_ends_the_build_quickly_and_stops_the_step(
    buildkit_client: BuildKitClient, base_image: str
) -> None:
    marker = f"starforge-cancel-{uuid.uuid4().hex[:8]}"
    st = run_state(base_image, f"echo running; sleep 300 # {marker}", name="long step")
    started = threading.Event()
    canceled_at: list[float] = []

    def on_event(event: BuildEvent) -> None:
        if isinstance(event, LogEvent) and event.text == "running":
            started.set()

    def should_cancel() -> bool:
        if started.is_set() and not canceled_at:
            canceled_at.append(time.monotonic())
        return bool(canceled_at)

    with pytest.raises(BuildCanceled) as caught:
        buildkit_client.solve(llb.marshal(st), on_event=on_event, should_cancel=should_cancel)

    assert time.monotonic() - canceled_at[0] < 2.0
    assert caught.value.step == "long step"
    deadline = time.monotonic() + 20
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not processes_with(marker), "BuildKit kept running the canceled step"


@pytest.mark.integration
def test_cancel_from_another_thread(buildkit_client: BuildKitClient, base_image: str) -> None:
    st = run_state(base_image, "echo running; sleep 300", name="long step")

    def on_event(event: BuildEvent) -> None:
        if isinstance(event, LogEvent):
            threading.Timer(0.2, buildkit_client.cancel).start()

    t0 = time.monotonic()
    with pytest.raises(BuildCanceled):
        buildkit_client.solve(llb.marshal(st), on_event=on_event)
    assert time.monotonic() - t0 < 30


@pytest.mark.integration
def test_host_network_needs_the_entitlement(buildkit_client: BuildKitClient, base_image: str) -> None:
    st = llb.marshal(run_state(base_image, "echo on host", network="host"))

    with pytest.raises(PermanentBuildError) as caught:
        buildkit_client.solve(st)
    assert "network.host is not allowed" in str(caught.value)

    result = buildkit_client.solve(st, entitlements=["network.host"])
    assert result.steps_total >= 2


@pytest.mark.integration
def test_unreachable_daemon_is_transient(tmp_path: Path, base_image: str) -> None:
    definition = llb.marshal(run_state(base_image, "true"))
    for addr in (f"docker://{tmp_path}/missing.sock", "tcp://127.0.0.1:9"):
        with BuildKitClient(addr) as dead:
            with pytest.raises(TransientBuildError):
                dead.solve(definition, timeout=10)
            with pytest.raises(TransientBuildError):
                dead.list_workers(timeout=10)


class WireError(grpc.RpcError):
    """A Solve failure as grpcio raises it."""

    def __init__(self, code: grpc.StatusCode, details: str):
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


@pytest.mark.parametrize(
    ("code", "details", "kind"),
    [
        (grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses", ErrorKind.TRANSIENT),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", ErrorKind.TRANSIENT),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "no space left", ErrorKind.TRANSIENT),
        (
            grpc.StatusCode.UNKNOWN,
            "failed to copy: read tcp 10.0.0.2:443: connection reset by peer",
            ErrorKind.TRANSIENT,
        ),
        (
            grpc.StatusCode.UNKNOWN,
            "failed to read dockerfile: rpc error: code = Unavailable desc = session closed",
            ErrorKind.TRANSIENT,
        ),
        (grpc.StatusCode.UNKNOWN, "executor failed running [/bin/sh -c npm test]: exit code: 1", ErrorKind.USER),
        (grpc.StatusCode.UNKNOWN, "failed to create LLB definition: dockerfile parse error line 3", ErrorKind.USER),
        (grpc.StatusCode.UNKNOWN, "failed to load LLB: network.host is not allowed", ErrorKind.PERMANENT),
        (grpc.StatusCode.INVALID_ARGUMENT, 'exporter "image" could not be found', ErrorKind.PERMANENT),
    ],
)
def test_errors_are_classified_for_retries(code: grpc.StatusCode, details: str, kind: ErrorKind) -> None:
    error = classify_error(WireError(code, details), ("RUN npm test", details))
    assert error.kind is kind
    assert error.step == "RUN npm test"
    assert details in error.message
