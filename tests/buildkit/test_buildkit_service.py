"""BuildKitBuildService's builder through the port (submit/run) and build-dir, against the real daemon and registry."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
import uuid
from pathlib import Path

import pytest
from support.files import write_files
from support.images import image_config, image_files, registry_manifest

from starforge_dag.buildkit import llb
from starforge_dag.buildkit.builder import BuildKitBuilder
from starforge_dag.cli.build_dir import build_dir_command
from starforge_dag.core.errors import BuildCanceled, PermanentBuildError, TransientBuildError, UserBuildError
from starforge_dag.core.models import BuildSpec, ImageRef, ProgressLine
from starforge_dag.resources.buildkit_service import BuildKitBuildService


def spec_for(context: Path, image: str, **fields: object) -> BuildSpec:
    return BuildSpec(build_id=7, context_dir=str(context), image=ImageRef.parse(image), **fields)  # type: ignore[arg-type]


@pytest.fixture
def service(buildkit_addr: str) -> BuildKitBuilder:
    return BuildKitBuildService(address=buildkit_addr).builder()


def test_submit_refuses_a_missing_dockerfile_as_a_user_error(tmp_path: Path) -> None:
    service = BuildKitBuildService(address="docker:///nonexistent/docker.sock").builder()
    with pytest.raises(UserBuildError, match="no Dockerfile at Dockerfile"):
        service.submit(spec_for(tmp_path, "127.0.0.1:5000/apps/x:1"))


def test_submit_refuses_llb_without_a_definition(tmp_path: Path) -> None:
    service = BuildKitBuildService(address="docker:///nonexistent/docker.sock").builder()
    with pytest.raises(PermanentBuildError, match="needs a definition"):
        service.submit(spec_for(tmp_path, "127.0.0.1:5000/apps/x:1", frontend="llb"))


def test_submit_to_an_unreachable_endpoint_is_transient(tmp_path: Path) -> None:
    write_files(tmp_path, {"Dockerfile": "FROM scratch\n"})
    service = BuildKitBuildService(address=f"docker://{tmp_path}/docker.sock", connect_timeout_s=5).builder()
    with pytest.raises(TransientBuildError):
        service.submit(spec_for(tmp_path, "127.0.0.1:5000/apps/x:1"))


@pytest.mark.integration
def test_dockerfile_build_end_to_end_streams_progress_in_order_and_returns_the_registry_digest(
    service: BuildKitBuilder, base_image: str, image_name: str, tmp_path: Path
) -> None:
    nonce = uuid.uuid4().hex
    write_files(
        tmp_path,
        {
            "Dockerfile": f"FROM {base_image}\nCOPY app.txt /app/app.txt\nRUN echo {nonce} && echo to-stderr >&2 && echo first > /app/one\n",
            "app.txt": "served by the session\n",
        },
    )
    spec = spec_for(tmp_path, image_name)
    ticket = service.submit(spec)
    assert ticket.backend == "buildkit" and ticket.ref and ticket.spec == spec
    lines: list[ProgressLine] = []
    result = service.run(ticket, lines.append)

    assert result.build_id == 7
    assert result.image.digest == registry_manifest(image_name)[2]
    assert result.image.ref == image_name
    assert result.config_digest == registry_manifest(image_name)[0]["config"]["digest"]
    assert result.steps_total >= 3
    files = image_files(image_name)
    assert files["/app/app.txt"] == b"served by the session\n" and files["/app/one"] == b"first\n"

    texts = [(line.stream, line.text) for line in lines]
    run_name = f"[3/3] RUN echo {nonce} && echo to-stderr >&2 && echo first > /app/one"
    started = texts.index(("system", run_name))
    done = texts.index(("system", f"DONE {run_name}"))
    assert started < texts.index(("stdout", nonce)) < done
    assert started < texts.index(("stderr", "to-stderr")) < done
    assert [line.vertex for line in lines if line.stream != "system"] == [run_name, run_name]
    assert texts[-1] == ("system", f"pushed {image_name} {result.image.digest}")
    assert all(a.ts <= b.ts for a, b in zip(lines, lines[1:]) if a.vertex == b.vertex == run_name)


@pytest.mark.integration
def test_llb_build_serves_local_context_and_applies_the_image_config(
    service: BuildKitBuilder, base_image: str, image_name: str, tmp_path: Path
) -> None:
    write_files(tmp_path, {"main.sh": "echo main\n", "lib/helper.sh": "echo helper\n"})
    app = llb.image(base_image).file(llb.copy(llb.local("context"), "/", "/app", create_dest_path=True))
    state = app.run(["sh", "-c", f": {uuid.uuid4().hex}; ls /app > /listing"], network="none").root()
    config = {"Env": ["PORT=8080"], "WorkingDir": "/app", "Cmd": ["sh", "main.sh"]}
    spec = spec_for(tmp_path, image_name, frontend="llb", llb_definition=llb.marshal(state), image_config=config)

    result = service.run(service.submit(spec), lambda line: None)

    assert result.image.digest == registry_manifest(image_name)[2]
    files = image_files(image_name)
    assert files["/app/main.sh"] == b"echo main\n"
    assert files["/app/lib/helper.sh"] == b"echo helper\n"
    assert files["/listing"] == b"lib\nmain.sh\n"
    pushed = image_config(image_name)["config"]
    assert pushed["WorkingDir"] == "/app" and pushed["Cmd"] == ["sh", "main.sh"]
    assert "PORT=8080" in pushed["Env"]


@pytest.mark.integration
def test_failing_run_is_a_user_error_naming_the_step(
    service: BuildKitBuilder, base_image: str, image_name: str, tmp_path: Path
) -> None:
    write_files(
        tmp_path, {"Dockerfile": f"FROM {base_image}\nRUN : {uuid.uuid4().hex}; echo no such tool >&2; exit 127\n"}
    )
    lines: list[ProgressLine] = []
    with pytest.raises(UserBuildError) as failed:
        service.run(service.submit(spec_for(tmp_path, image_name)), lines.append)
    assert failed.value.step is not None and failed.value.step.startswith("[2/2] RUN :")
    assert "exit code: 127" in str(failed.value)
    assert ("stderr", "no such tool") in [(line.stream, line.text) for line in lines]
    assert lines[-1].stream == "system" and lines[-1].text.startswith("ERROR [2/2] RUN")


@pytest.mark.integration
def test_a_cancel_asked_for_from_another_thread_stops_the_running_build(
    service: BuildKitBuilder, base_image: str, image_name: str, tmp_path: Path
) -> None:
    write_files(tmp_path, {"Dockerfile": f"FROM {base_image}\nRUN : {uuid.uuid4().hex}; echo sleeping; sleep 60\n"})
    ticket = service.submit(spec_for(tmp_path, image_name))
    canceled = threading.Event()

    def cancel_once_running(line: ProgressLine) -> None:
        if line.text == "sleeping":
            threading.Thread(target=canceled.set).start()

    started = time.monotonic()
    with pytest.raises(BuildCanceled):
        service.run(ticket, cancel_once_running, should_cancel=canceled.is_set)
    assert time.monotonic() - started < 20


@pytest.mark.integration
def test_should_cancel_and_build_timeout_end_the_build(
    service: BuildKitBuilder, base_image: str, image_name: str, tmp_path: Path
) -> None:
    write_files(tmp_path, {"Dockerfile": f"FROM {base_image}\nRUN : {uuid.uuid4().hex}; sleep 60\n"})
    spec = spec_for(tmp_path, image_name)
    with pytest.raises(BuildCanceled):
        service.run(service.submit(spec), lambda line: None, should_cancel=lambda: True)
    limited = BuildKitBuildService(address=service.address, build_timeout_s=2.0).builder()
    started = time.monotonic()
    with pytest.raises(PermanentBuildError, match="exceeded 2s"):
        limited.run(limited.submit(spec), lambda line: None)
    assert time.monotonic() - started < 20


@pytest.mark.integration
def test_named_secret_comes_from_the_environment_and_stays_out_of_logs(
    service: BuildKitBuilder, base_image: str, image_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = f"tok-{uuid.uuid4().hex}"
    write_files(
        tmp_path,
        {
            "Dockerfile": f"FROM {base_image}\nRUN --mount=type=secret,id=API_TOKEN : {uuid.uuid4().hex}; sha256sum /run/secrets/API_TOKEN\n"
        },
    )
    spec = spec_for(tmp_path, image_name, secrets=["API_TOKEN"])
    with pytest.raises(UserBuildError, match="API_TOKEN is not set"):
        service.run(service.submit(spec), lambda line: None)

    monkeypatch.setenv("STARFORGE_BUILD_SECRET_API_TOKEN", value)
    lines: list[ProgressLine] = []
    service.run(service.submit(spec), lines.append)
    texts = [line.text for line in lines]
    assert f"{hashlib.sha256(value.encode()).hexdigest()}  /run/secrets/API_TOKEN" in texts
    assert not any(value in text for text in texts)


@pytest.mark.integration
def test_a_secret_the_dockerfile_requires_but_nobody_gave_is_a_user_error(
    service: BuildKitBuilder, base_image: str, image_name: str, tmp_path: Path
) -> None:
    write_files(
        tmp_path, {"Dockerfile": f"FROM {base_image}\nRUN --mount=type=secret,id=npmrc,required : {uuid.uuid4().hex}\n"}
    )
    with pytest.raises(UserBuildError, match="npmrc"):
        service.run(service.submit(spec_for(tmp_path, image_name)), lambda line: None)


@pytest.mark.integration
def test_build_dir_prints_one_json_object_for_a_dockerfile(
    service: BuildKitBuilder, base_image: str, image_name: str, tmp_path: Path
) -> None:
    write_files(tmp_path, {"Dockerfile": f"FROM {base_image}\nRUN echo {uuid.uuid4().hex} > /id\n"})
    out, err = io.StringIO(), io.StringIO()
    assert build_dir_command(str(tmp_path), image_name, builder=service, stdout=out, stderr=err) == 0
    report = json.loads(out.getvalue())
    assert report["status"] == "succeeded" and report["frontend"] == "dockerfile"
    assert report["image"] == image_name
    assert report["digest"] == registry_manifest(image_name)[2]
    assert "exporting to image" in err.getvalue()


@pytest.mark.integration
def test_build_dir_plans_a_directory_without_a_dockerfile(
    service: BuildKitBuilder, image_name: str, tmp_path: Path
) -> None:
    write_files(tmp_path, {"start.sh": "#!/bin/sh\necho hello from the plan\n", "data.txt": f"{uuid.uuid4().hex}\n"})
    out = io.StringIO()
    assert build_dir_command(str(tmp_path), image_name, builder=service, stdout=out, stderr=io.StringIO()) == 0
    report = json.loads(out.getvalue())
    assert report["frontend"] == "llb"
    assert report["digest"] == registry_manifest(image_name)[2]
    assert image_files(image_name)["/app/start.sh"].startswith(b"#!/bin/sh")


@pytest.mark.integration
def test_build_dir_reports_a_failure_as_json_and_exits_non_zero(
    service: BuildKitBuilder, base_image: str, image_name: str, tmp_path: Path
) -> None:
    write_files(tmp_path, {"Dockerfile": f"FROM {base_image}\nRUN : {uuid.uuid4().hex}; exit 3\n"})
    out = io.StringIO()
    assert build_dir_command(str(tmp_path), image_name, builder=service, stdout=out, stderr=io.StringIO()) == 1
    report = json.loads(out.getvalue())
    assert report["status"] == "failed" and report["digest"] is None
    assert report["error_kind"] == "user" and report["step"].startswith("[2/2] RUN")
    assert "exit code: 3" in report["error"]
