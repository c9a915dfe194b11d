"""The Depot emulator through plain gRPC stubs: auth and status codes, projects, the build lifecycle, real builds, faults."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from starforge_dag.buildkit import llb
from starforge_dag.buildkit.client import BuildKitClient, LogEvent
from starforge_dag.buildkit.dockerfile import FRONTEND, dockerfile_build
from starforge_dag.buildkit.pb import control_pb2
from starforge_dag.buildkit.registry import MANIFEST_ACCEPT, RegistryAuth
from starforge_dag.buildkit.session import Session
from starforge_dag.buildkit.transport import TLSConfig, open_channel
from starforge_dag.core.errors import BuildCanceled, BuildError, TransientBuildError, UserBuildError
from starforge_dag.core.models import ImageRef
from starforge_dag.depot.pb import (
    depot_build_pb2,
    depot_build_pb2_grpc,
    depot_build_record_pb2,
    depot_build_record_pb2_grpc,
    depot_buildkit_pb2,
    depot_buildkit_pb2_grpc,
    depot_project_pb2,
    depot_project_pb2_grpc,
)
from starforge_dag.emulators.depot import DepotEmulator, solve_exporters

Code = grpc.StatusCode
Endpoint = depot_buildkit_pb2.GetEndpointResponse


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


@dataclass
class Api:
    """Stubs for every Depot service of one emulator, and the organization token's metadata."""

    channel: grpc.Channel
    org: list[tuple[str, str]]

    @property
    def projects(self) -> Any:
        return depot_project_pb2_grpc.ProjectServiceStub(self.channel)

    @property
    def builds(self) -> Any:
        return depot_build_pb2_grpc.BuildServiceStub(self.channel)

    @property
    def records(self) -> Any:
        return depot_build_record_pb2_grpc.BuildServiceStub(self.channel)

    @property
    def buildkit(self) -> Any:
        return depot_buildkit_pb2_grpc.BuildKitServiceStub(self.channel)

    def project(self, name: str = "ws", **fields: Any) -> Any:
        request = depot_project_pb2.CreateProjectRequest(name=name, region_id="us-east-1", **fields)
        return self.projects.CreateProject(request, metadata=self.org, timeout=10).project

    def create_build(self, project_id: str | None = None) -> Any:
        project_id = project_id or self.project().project_id
        request = depot_build_pb2.CreateBuildRequest(project_id=project_id)
        return self.builds.CreateBuild(request, metadata=self.org, timeout=10)

    def endpoint(self, build: Any) -> list[Any]:
        request = depot_buildkit_pb2.GetEndpointRequest(
            build_id=build.build_id, platform=depot_buildkit_pb2.PLATFORM_AMD64
        )
        return list(self.buildkit.GetEndpoint(request, metadata=bearer(build.build_token), timeout=30))


@pytest.fixture
def api(depot_emulator: DepotEmulator) -> Iterator[Api]:
    with grpc.insecure_channel(depot_emulator.target) as channel:
        yield Api(channel, bearer(depot_emulator.token))


def tls_of(active: Any) -> TLSConfig:
    return TLSConfig(
        ca_pem=active.ca_cert.cert.encode(),
        cert_pem=active.cert.cert.cert.encode(),
        key_pem=active.cert.key.key.encode(),
        server_name=active.server_name,
    )


class Health:
    """A ReportHealth stream the test feeds one report at a time."""

    def __init__(self, api: Api, build: Any):
        self._reports: queue.Queue[Any] = queue.Queue()
        self._build = build
        self.call = api.buildkit.ReportHealth.future(
            iter(self._reports.get, None), metadata=bearer(build.build_token), timeout=60
        )

    def report(self) -> None:
        self._reports.put(depot_buildkit_pb2.ReportHealthRequest(build_id=self._build.build_id, platform=1))

    def stop(self) -> Any:
        self._reports.put(None)
        return self.call.result(timeout=10)


def registry_digest(image: str) -> str:
    ref = ImageRef.parse(image)
    response = httpx.head(
        f"http://{ref.registry}/v2/{ref.repository}/manifests/{ref.tag}", headers={"Accept": MANIFEST_ACCEPT}
    )
    response.raise_for_status()
    return response.headers["Docker-Content-Digest"]


def registry_config(image: str) -> dict[str, Any]:
    ref = ImageRef.parse(image)
    base = f"http://{ref.registry}/v2/{ref.repository}"
    manifest = httpx.get(f"{base}/manifests/{ref.tag}", headers={"Accept": MANIFEST_ACCEPT}).json()
    return httpx.get(f"{base}/blobs/{manifest['config']['digest']}").json()


def code_of(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code()  # type: ignore[attr-defined]


def test_project_service_answers_depots_auth_codes(depot_emulator: DepotEmulator, api: Api) -> None:
    list_projects = api.projects.ListProjects
    request = depot_project_pb2.ListProjectsRequest()
    build = api.create_build()

    assert code_of(lambda: list_projects(request, timeout=5)) == Code.UNAUTHENTICATED
    assert code_of(lambda: list_projects(request, metadata=[("authorization", "Basic x")], timeout=5)) == (
        Code.UNAUTHENTICATED
    )
    assert code_of(lambda: list_projects(request, metadata=bearer("depot_org_nope"), timeout=5)) == Code.UNAUTHENTICATED
    assert code_of(lambda: list_projects(request, metadata=bearer(build.build_token), timeout=5)) == (
        Code.PERMISSION_DENIED
    )
    assert len(list_projects(request, metadata=api.org, timeout=5).projects) == 1

    depot_emulator.faults.reject_tokens = True
    assert code_of(lambda: list_projects(request, metadata=api.org, timeout=5)) == Code.UNAUTHENTICATED


def test_projects_are_created_listed_reset_and_deleted_per_organization(
    depot_emulator: DepotEmulator, api: Api
) -> None:
    policy = depot_project_pb2.CachePolicy(keep_gb=20, keep_days=7)
    made = api.project("workspace-a", cache_policy=policy)
    other_org = bearer(depot_emulator.add_organization("org-other"))
    theirs = api.projects.CreateProject(
        depot_project_pb2.CreateProjectRequest(name="theirs", region_id="eu-central-1"), metadata=other_org
    ).project

    got = api.projects.GetProject(depot_project_pb2.GetProjectRequest(project_id=made.project_id), metadata=api.org)
    assert (got.project.name, got.project.region_id, got.project.organization_id) == (
        "workspace-a",
        "us-east-1",
        depot_emulator.organization_id,
    )
    assert (got.project.cache_policy.keep_gb, got.project.cache_policy.keep_days) == (20, 7)
    listed = api.projects.ListProjects(depot_project_pb2.ListProjectsRequest(), metadata=api.org).projects
    assert [p.project_id for p in listed] == [made.project_id]
    get_theirs = depot_project_pb2.GetProjectRequest(project_id=theirs.project_id)
    assert code_of(lambda: api.projects.GetProject(get_theirs, metadata=api.org)) == Code.PERMISSION_DENIED
    bad_region = depot_project_pb2.CreateProjectRequest(name="x", region_id="mars-1")
    assert code_of(lambda: api.projects.CreateProject(bad_region, metadata=api.org)) == Code.INVALID_ARGUMENT
    nameless = depot_project_pb2.CreateProjectRequest(name=" ", region_id="us-east-1")
    assert code_of(lambda: api.projects.CreateProject(nameless, metadata=api.org)) == Code.INVALID_ARGUMENT

    api.projects.ResetProject(depot_project_pb2.ResetProjectRequest(project_id=made.project_id), metadata=api.org)
    assert depot_emulator.project(made.project_id).resets == 1
    record = depot_emulator.project(made.project_id)
    assert (record.keep_gb, record.keep_days, record.region_id) == (20, 7, "us-east-1")

    api.projects.DeleteProject(depot_project_pb2.DeleteProjectRequest(project_id=made.project_id), metadata=api.org)
    get_made = depot_project_pb2.GetProjectRequest(project_id=made.project_id)
    assert code_of(lambda: api.projects.GetProject(get_made, metadata=api.org)) == Code.NOT_FOUND
    assert code_of(lambda: api.create_build(made.project_id)) == Code.NOT_FOUND
    assert depot_emulator.project(made.project_id).deleted


def test_create_and_finish_build_check_project_and_token(depot_emulator: DepotEmulator, api: Api) -> None:
    assert code_of(lambda: api.create_build("nosuchproject")) == Code.NOT_FOUND
    empty = depot_build_pb2.CreateBuildRequest(project_id="")
    assert code_of(lambda: api.builds.CreateBuild(empty, metadata=api.org)) == Code.INVALID_ARGUMENT
    other_org = bearer(depot_emulator.add_organization("org-other"))
    project = api.project()
    theirs = depot_build_pb2.CreateBuildRequest(project_id=project.project_id)
    assert code_of(lambda: api.builds.CreateBuild(theirs, metadata=other_org)) == Code.PERMISSION_DENIED

    first, second = api.create_build(project.project_id), api.create_build(project.project_id)
    error = depot_build_pb2.FinishBuildRequest(
        build_id=first.build_id, error=depot_build_pb2.FinishBuildRequest.BuildError(error="RUN make failed")
    )
    assert code_of(lambda: api.builds.FinishBuild(error, metadata=bearer(second.build_token))) == Code.PERMISSION_DENIED
    assert code_of(lambda: api.builds.FinishBuild(error, metadata=other_org)) == Code.PERMISSION_DENIED
    no_result = depot_build_pb2.FinishBuildRequest(build_id=first.build_id)
    assert code_of(lambda: api.builds.FinishBuild(no_result, metadata=api.org)) == Code.INVALID_ARGUMENT

    api.builds.FinishBuild(error, metadata=bearer(first.build_token))
    assert code_of(lambda: api.builds.FinishBuild(error, metadata=api.org)) == Code.FAILED_PRECONDITION
    ok = depot_build_pb2.FinishBuildRequest(
        build_id=second.build_id, success=depot_build_pb2.FinishBuildRequest.BuildSuccess()
    )
    api.builds.FinishBuild(ok, metadata=api.org)

    records = {b.build_id: b for b in depot_emulator.builds()}
    assert (records[first.build_id].result, records[first.build_id].error) == ("error", "RUN make failed")
    assert (records[second.build_id].result, records[second.build_id].error) == ("success", None)
    status = api.records.GetBuild(depot_build_record_pb2.GetBuildRequest(build_id=first.build_id), metadata=api.org)
    assert status.build.status == depot_build_record_pb2.Build.STATUS_FAILED


def test_buildkit_service_takes_only_the_builds_own_token(api: Api) -> None:
    build, other = api.create_build(), api.create_build()
    request = depot_buildkit_pb2.GetEndpointRequest(build_id=build.build_id)
    release = depot_buildkit_pb2.ReleaseEndpointRequest(build_id=build.build_id)

    assert code_of(lambda: list(api.buildkit.GetEndpoint(request, metadata=api.org))) == Code.PERMISSION_DENIED
    assert code_of(lambda: list(api.buildkit.GetEndpoint(request, metadata=bearer(other.build_token)))) == (
        Code.PERMISSION_DENIED
    )
    assert code_of(lambda: list(api.buildkit.GetEndpoint(request))) == Code.UNAUTHENTICATED
    assert code_of(lambda: api.buildkit.ReleaseEndpoint(release, metadata=bearer(other.build_token))) == (
        Code.PERMISSION_DENIED
    )
    odd_platform = depot_buildkit_pb2.GetEndpointRequest(build_id=build.build_id, platform=7)  # type: ignore[arg-type]
    assert code_of(lambda: list(api.buildkit.GetEndpoint(odd_platform, metadata=bearer(build.build_token)))) == (
        Code.INVALID_ARGUMENT
    )
    wrong_build = [depot_buildkit_pb2.ReportHealthRequest(build_id=build.build_id)]
    assert code_of(lambda: api.buildkit.ReportHealth(iter(wrong_build), metadata=bearer(other.build_token))) == (
        Code.PERMISSION_DENIED
    )


@pytest.mark.integration
def test_dockerfile_build_through_the_endpoint_pushes_with_session_credentials_and_reports_the_manifest_digest(
    depot_emulator: DepotEmulator, api: Api, image_name: str, base_image: str, tmp_path: Path
) -> None:
    depot_emulator.faults.pending_messages = 3
    (tmp_path / "Dockerfile").write_text(f"FROM {base_image}\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt\n")
    greeting = f"hello from depot {uuid.uuid4().hex}"
    (tmp_path / "hello.txt").write_text(greeting + "\n")
    build = api.create_build()
    health = Health(api, build)
    health.report()

    messages = api.endpoint(build)
    assert [m.WhichOneof("connection") for m in messages] == ["pending"] * 3 + ["active"]
    active = messages[-1].active
    assert active.endpoint.startswith("tcp://127.0.0.1:") and active.server_name != "127.0.0.1"

    spec = dockerfile_build(tmp_path)
    with (
        BuildKitClient(active.endpoint, tls=tls_of(active), exporter="image") as client,
        Session(
            active.endpoint,
            tls_of(active),
            local_dirs=spec.local_dirs,
            owner=(0, 0),
            registry_auth={ImageRef.parse(image_name).registry: ("robot", "pushing-secret")},
        ) as session,
    ):
        assert [w.id for w in client.list_workers()]
        result = client.build_image(
            image_name, frontend=FRONTEND, frontend_attrs=spec.frontend_attrs, session=session.id
        )
    health.report()
    health.stop()
    api.buildkit.ReleaseEndpoint(
        depot_buildkit_pb2.ReleaseEndpointRequest(build_id=build.build_id), metadata=bearer(build.build_token)
    )
    api.builds.FinishBuild(
        depot_build_pb2.FinishBuildRequest(
            build_id=build.build_id, success=depot_build_pb2.FinishBuildRequest.BuildSuccess()
        ),
        metadata=bearer(build.build_token),
    )

    assert result.digest == registry_digest(image_name)
    assert result.config_digest and result.config_digest != result.digest
    record = depot_emulator.build(build.build_id)
    assert record.health_reports == 2 and record.last_health_at is not None
    assert record.platform == "PLATFORM_AMD64" and record.endpoint == active.endpoint
    assert record.released and record.finished and record.result == "success"
    assert [(s.exporters, s.images, s.pushed, s.digest) for s in record.solves] == [
        (["image"], [image_name], True, result.digest)
    ]
    assert (record.solves[0].credentials_from, record.solves[0].registry_username) == ("session", "robot")
    steps = api.builds.GetBuildSteps(
        depot_build_pb2.GetBuildStepsRequest(project_id=record.project_id, build_id=build.build_id), metadata=api.org
    ).build_steps
    run = next(s for s in steps if "cat /hello.txt" in s.name)
    logs = api.builds.GetBuildStepLogs(
        depot_build_pb2.GetBuildStepLogsRequest(
            project_id=record.project_id, build_id=build.build_id, build_step_digest=run.digest
        ),
        metadata=api.org,
    ).logs
    assert greeting in [log.message for log in logs]
    got = api.records.GetBuild(depot_build_record_pb2.GetBuildRequest(build_id=build.build_id), metadata=api.org)
    assert got.build.status == depot_build_record_pb2.Build.STATUS_SUCCESS and got.build.total_steps == len(steps)
    with BuildKitClient(active.endpoint, tls=tls_of(active)) as client, pytest.raises(TransientBuildError):
        client.list_workers(timeout=5)


@pytest.mark.integration
def test_raw_llb_with_image_config_is_pushed_with_that_config(
    depot_emulator: DepotEmulator, api: Api, image_name: str, base_image: str
) -> None:
    build = api.create_build()
    active = api.endpoint(build)[-1].active
    state = llb.image(base_image).run(["sh", "-c", "echo built > /out"], network="none", ignore_cache=True).root()

    with BuildKitClient(active.endpoint, tls=tls_of(active), exporter="image") as client:
        result = client.build_image(
            image_name, definition=llb.marshal(state), image_config={"Env": ["MODE=depot"], "Cmd": ["cat", "/out"]}
        )

    assert result.digest == registry_digest(image_name)
    assert depot_emulator.build(build.build_id).solves[0].credentials_from is None
    config = registry_config(image_name)["config"]
    assert "MODE=depot" in config["Env"] and config["Cmd"] == ["cat", "/out"]


def exporter_entry(kind: str, attrs: dict[str, str]) -> bytes:
    """A SolveRequest `Exporters` (field 13) entry as current BuildKit clients encode it."""

    def length_delimited(number: int, payload: bytes) -> bytes:
        return bytes([number << 3 | 2, len(payload)]) + payload

    body = length_delimited(1, kind.encode())
    for key, value in attrs.items():
        body += length_delimited(2, length_delimited(1, key.encode()) + length_delimited(2, value.encode()))
    return length_delimited(13, body)


@pytest.mark.integration
def test_the_repeated_exporters_field_is_honoured(api: Api, image_name: str, base_image: str) -> None:
    active = api.endpoint(api.create_build())[-1].active
    state = llb.image(base_image).run(["sh", "-c", "echo new > /new"], network="none", ignore_cache=True).root()
    old = control_pb2.SolveRequest(
        Ref=f"exporters-field-{uuid.uuid4().hex}", Definition=llb.definition(state)
    ).SerializeToString()
    raw = old + exporter_entry("image", {"name": image_name, "push": "true"})
    assert solve_exporters(control_pb2.SolveRequest.FromString(raw)) == [
        ("image", {"name": image_name, "push": "true"})
    ]

    with open_channel(active.endpoint, tls_of(active)) as channel:
        solve = channel.unary_unary("/moby.buildkit.v1.Control/Solve")
        response = control_pb2.SolveResponse.FromString(solve(raw, timeout=120))

    assert response.ExporterResponse["containerimage.digest"] == registry_digest(image_name)


@pytest.mark.integration
def test_endpoint_refuses_clients_without_the_builds_certificate(api: Api) -> None:
    active = api.endpoint(api.create_build())[-1].active
    other = api.endpoint(api.create_build())[-1].active
    no_cert = TLSConfig(ca_pem=active.ca_cert.cert.encode(), server_name=active.server_name)
    foreign = TLSConfig(
        ca_pem=active.ca_cert.cert.encode(),
        cert_pem=other.cert.cert.cert.encode(),
        key_pem=other.cert.key.key.encode(),
        server_name=active.server_name,
    )

    for tls in (no_cert, foreign, None):
        with BuildKitClient(active.endpoint, tls=tls) as client, pytest.raises(TransientBuildError):
            client.list_workers(timeout=5)
    with BuildKitClient(active.endpoint, tls=tls_of(active)) as client:
        assert client.list_workers(timeout=10)


def test_unavailable_on_the_first_call_of_a_method(depot_emulator: DepotEmulator, api: Api) -> None:
    project = api.project()
    depot_emulator.faults.unavailable_once = {"CreateBuild", "GetEndpoint"}

    assert code_of(lambda: api.create_build(project.project_id)) == Code.UNAVAILABLE
    build = api.create_build(project.project_id)
    assert code_of(lambda: api.endpoint(build)) == Code.UNAVAILABLE
    assert api.endpoint(build)[-1].WhichOneof("connection") == "active"
    assert (depot_emulator.calls("CreateBuild"), depot_emulator.calls("GetEndpoint")) == (2, 2)


@pytest.mark.integration
def test_a_machine_that_is_not_ready_answers_unavailable_once(depot_emulator: DepotEmulator, api: Api) -> None:
    active = api.endpoint(api.create_build())[-1].active
    depot_emulator.faults.unavailable_once = {"Control.ListWorkers"}

    with BuildKitClient(active.endpoint, tls=tls_of(active)) as client:
        with pytest.raises(TransientBuildError):
            client.list_workers(timeout=5)
        assert client.list_workers(timeout=10)
    assert depot_emulator.calls("Control.ListWorkers") == 2


def test_not_found_right_after_create_then_the_endpoint(depot_emulator: DepotEmulator, api: Api) -> None:
    depot_emulator.faults.not_found_first_endpoint = True
    build = api.create_build()

    assert code_of(lambda: api.endpoint(build)) == Code.NOT_FOUND
    assert api.endpoint(build)[-1].WhichOneof("connection") == "active"


def test_slow_endpoint_streams_pending_before_active(depot_emulator: DepotEmulator, api: Api) -> None:
    depot_emulator.faults.pending_messages = 5
    depot_emulator.faults.pending_delay_s = 0.02
    build = api.create_build()
    seen: list[str] = []
    request = depot_buildkit_pb2.GetEndpointRequest(build_id=build.build_id)

    for message in api.buildkit.GetEndpoint(request, metadata=bearer(build.build_token), timeout=30):
        seen.append(message.WhichOneof("connection"))
        if len(seen) == 1:
            assert depot_emulator.build(build.build_id).endpoint is None

    assert seen == ["pending"] * 5 + ["active"]


@pytest.mark.integration
def test_endpoint_dropped_mid_build_fails_the_solve_as_unavailable(
    depot_emulator: DepotEmulator, api: Api, image_name: str, base_image: str
) -> None:
    build = api.create_build()
    active = api.endpoint(build)[-1].active
    depot_emulator.faults.drop_endpoint_during_solve = True
    state = llb.image(base_image).run(["sh", "-c", "sleep 60"], network="none", ignore_cache=True).root()

    with BuildKitClient(active.endpoint, tls=tls_of(active), exporter="image") as client:
        with pytest.raises(TransientBuildError):
            client.build_image(image_name, definition=llb.marshal(state))
    with BuildKitClient(active.endpoint, tls=tls_of(active)) as client, pytest.raises(TransientBuildError):
        client.list_workers(timeout=5)

    # The client sees the dropped connection before the emulator's solve handler has ended dockerd's solve.
    assert depot_emulator.wait_for(
        lambda emu: bool(emu.build(build.build_id).solves) and emu.build(build.build_id).solves[0].done, timeout=30
    )
    record = depot_emulator.build(build.build_id)
    assert record.endpoint_dropped and not record.finished
    assert record.solves and record.solves[0].done and not record.solves[0].pushed
    assert code_of(lambda: api.endpoint(build)) == Code.FAILED_PRECONDITION


@pytest.mark.integration
def test_build_expires_when_health_reports_stop(depot_emulator: DepotEmulator, api: Api) -> None:
    depot_emulator.health_timeout_s = 2.0
    build, silent = api.create_build(), api.create_build()
    health = Health(api, build)
    health.report()
    active = api.endpoint(build)[-1].active
    assert depot_emulator.wait_for(lambda emu: emu.build(build.build_id).health_reports == 1)

    assert depot_emulator.wait_for(lambda emu: emu.build(build.build_id).expired, timeout=10)
    health.report()
    with pytest.raises(grpc.RpcError) as stopped:
        health.stop()
    assert stopped.value.code() == Code.FAILED_PRECONDITION  # type: ignore[attr-defined]
    with BuildKitClient(active.endpoint, tls=tls_of(active)) as client, pytest.raises(TransientBuildError):
        client.list_workers(timeout=5)
    got = api.records.GetBuild(depot_build_record_pb2.GetBuildRequest(build_id=build.build_id), metadata=api.org)
    assert got.build.status == depot_build_record_pb2.Build.STATUS_ERROR
    assert depot_emulator.wait_for(lambda emu: emu.build(silent.build_id).expired, timeout=10)
    api.builds.FinishBuild(
        depot_build_pb2.FinishBuildRequest(
            build_id=build.build_id, error=depot_build_pb2.FinishBuildRequest.BuildError(error="endpoint lost")
        ),
        metadata=api.org,
    )
    assert depot_emulator.build(build.build_id).result == "error"


def test_cli_prints_the_url_and_token_and_each_project(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "starforge_dag.cli", "depot-emulator", "--token", "tok-cli-test"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        exports = dict(word.split("=", 1) for word in lines[1].split() if "=" in word)
        assert exports["STARFORGE_DEPOT_TOKEN"] == "tok-cli-test"
        target = exports["STARFORGE_DEPOT_API_URL"].removeprefix("http://")
        with grpc.insecure_channel(target) as channel:
            project = Api(channel, bearer("tok-cli-test")).project("from-cli")
        line = process.stdout.readline()
        assert project.project_id in line and "'from-cli'" in line
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)
    assert process.returncode == 0


@pytest.mark.integration
def test_a_failing_run_and_a_failing_push_come_back_as_build_errors(
    depot_emulator: DepotEmulator, api: Api, base_image: str
) -> None:
    build = api.create_build()
    active = api.endpoint(build)[-1].active
    failing = llb.image(base_image).run(["sh", "-c", "exit 3"], network="none", ignore_cache=True).root()
    fine = llb.image(base_image).run(["sh", "-c", "echo ok > /ok"], network="none", ignore_cache=True).root()
    unreachable = f"127.0.0.1:1/nowhere-{uuid.uuid4().hex[:8]}:v1"

    with BuildKitClient(active.endpoint, tls=tls_of(active), exporter="image") as client:
        with pytest.raises(UserBuildError) as run_failed:
            client.build_image(f"127.0.0.1:5000/unused-{uuid.uuid4().hex[:8]}:v1", definition=llb.marshal(failing))
        with pytest.raises(BuildError) as push_failed:
            client.build_image(unreachable, definition=llb.marshal(fine))

    assert run_failed.value.step == "sh -c exit 3"
    assert f"failed to push {unreachable}" in push_failed.value.message
    first, second = depot_emulator.build(build.build_id).solves
    assert first.done and not first.pushed and "exit code: 3" in (first.error or "")
    assert second.done and not second.pushed and "failed to push" in (second.error or "")


@pytest.mark.integration
def test_canceling_a_solve_through_the_endpoint_ends_it_on_the_daemon(
    depot_emulator: DepotEmulator, api: Api, image_name: str, base_image: str
) -> None:
    build = api.create_build()
    active = api.endpoint(build)[-1].active
    state = llb.image(base_image).run(["sh", "-c", "echo running; sleep 300"], network="none", ignore_cache=True)
    started = threading.Event()

    def on_event(event: object) -> None:
        if isinstance(event, LogEvent) and event.text == "running":
            started.set()

    with BuildKitClient(active.endpoint, tls=tls_of(active), exporter="image") as client:
        with pytest.raises(BuildCanceled):
            client.build_image(
                image_name, definition=llb.marshal(state.root()), on_event=on_event, should_cancel=started.is_set
            )

    assert depot_emulator.wait_for(lambda emu: emu.build(build.build_id).solves[0].done, timeout=20)
    solve = depot_emulator.build(build.build_id).solves[0]
    assert not solve.pushed and solve.error == "canceled by the client"


@pytest.mark.integration
def test_stopping_the_emulator_ends_every_thread_it_started(buildkit_addr: str) -> None:
    with DepotEmulator(docker_addr=buildkit_addr) as emulator, grpc.insecure_channel(emulator.target) as channel:
        api = Api(channel, bearer(emulator.token))
        build = api.create_build()
        health = Health(api, build)
        health.report()
        active = api.endpoint(build)[-1].active
        with (
            BuildKitClient(active.endpoint, tls=tls_of(active)) as client,
            Session(active.endpoint, tls_of(active), local_dirs={}),
        ):
            assert client.list_workers(timeout=10)
        assert emulator.wait_for(lambda emu: emu.build(build.build_id).health_reports == 1)

    started = [t for t in threading.enumerate() if t.name.startswith("depot-")]
    for thread in started:
        thread.join(timeout=10)
    assert [t.name for t in started if t.is_alive()] == []


@pytest.mark.integration
def test_without_a_session_the_push_uses_the_emulators_own_credentials(
    buildkit_addr: str, base_image: str, image_name: str
) -> None:
    auth = {ImageRef.parse(image_name).registry: RegistryAuth("emulator-robot", "emulator-secret")}
    with (
        DepotEmulator(docker_addr=buildkit_addr, registry_auth=auth) as emulator,
        grpc.insecure_channel(emulator.target) as channel,
    ):
        api = Api(channel, bearer(emulator.token))
        build = api.create_build()
        active = api.endpoint(build)[-1].active
        state = llb.image(base_image).run(["sh", "-c", "echo x > /x"], network="none", ignore_cache=True).root()
        with BuildKitClient(active.endpoint, tls=tls_of(active), exporter="image") as client:
            result = client.build_image(image_name, definition=llb.marshal(state))
        (solve,) = emulator.build(build.build_id).solves

    assert result.digest == registry_digest(image_name)
    assert (solve.credentials_from, solve.registry_username) == ("emulator", "emulator-robot")
    assert "emulator-secret" not in repr(solve)
