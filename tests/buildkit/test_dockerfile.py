"""Dockerfile-frontend builds against the real daemon: what lands in the pushed image, errors, logs, cancel, secrets."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from support.files import write_files
from support.images import image_config, image_files, registry_manifest

from starforge_dag.buildkit.client import BuildEvent, BuildKitClient, EventSink, ImageBuild, LogEvent, VertexEvent
from starforge_dag.buildkit.dockerfile import FRONTEND, dockerfile_build
from starforge_dag.buildkit.registry import manifest_digest
from starforge_dag.buildkit.session import Session
from starforge_dag.core.errors import BuildCanceled, UserBuildError

pytestmark = pytest.mark.integration


def build(
    client: BuildKitClient,
    addr: str,
    context: Path,
    image: str,
    *,
    secrets: dict[str, str] | None = None,
    on_event: EventSink | None = None,
    **options: Any,
) -> ImageBuild:
    spec = dockerfile_build(context, **options)
    with Session(addr, local_dirs=spec.local_dirs, secrets=secrets, owner=(0, 0)) as session:
        return client.build_image(
            image,
            frontend=FRONTEND,
            frontend_attrs=spec.frontend_attrs,
            session=session.id,
            on_event=on_event,
        )


MULTI_STAGE = """\
FROM {base} AS build
ARG GREETING=hello
RUN mkdir /out && echo "$GREETING from the build stage" > /out/greeting.txt

FROM {base}
ARG NONCE
COPY --from=build /out/greeting.txt /app/greeting.txt
COPY . /app/src
RUN echo "$NONCE" > /app/ran.txt && cat /app/src/hello.txt
"""


def test_copy_run_arg_multistage_and_dockerignore_shape_the_pushed_image(
    buildkit_client: BuildKitClient, buildkit_addr: str, base_image: str, image_name: str, tmp_path: Path
) -> None:
    write_files(
        tmp_path,
        {
            "Dockerfile": MULTI_STAGE.format(base=base_image),
            ".dockerignore": "*.log\n!keep.log\nsecret.env\nnode_modules\n",
            "hello.txt": "hello from the context\n",
            "keep.log": "kept\n",
            "drop.log": "dropped\n",
            "secret.env": "TOKEN=nope\n",
            "node_modules/dep/index.js": "x\n",
            "lib/util.py": "print('util')\n",
        },
    )
    nonce = uuid.uuid4().hex
    result = build(
        buildkit_client, buildkit_addr, tmp_path, image_name, build_args={"GREETING": "bonjour", "NONCE": nonce}
    )

    files = image_files(image_name)
    assert files["/app/greeting.txt"] == b"bonjour from the build stage\n"
    assert files["/app/ran.txt"] == f"{nonce}\n".encode()
    assert files["/app/src/hello.txt"] == b"hello from the context\n"
    assert files["/app/src/lib/util.py"] == b"print('util')\n"
    assert files["/app/src/keep.log"] == b"kept\n"
    for absent in (
        "/app/src/drop.log",
        "/app/src/secret.env",
        "/app/src/node_modules/dep/index.js",
        "/out/greeting.txt",
    ):
        assert absent not in files
    assert "/bin/busybox" in files
    assert result.digest == registry_manifest(image_name)[2]


def test_target_stops_at_the_named_stage(
    buildkit_client: BuildKitClient, buildkit_addr: str, base_image: str, image_name: str, tmp_path: Path
) -> None:
    write_files(tmp_path, {"Dockerfile": MULTI_STAGE.format(base=base_image), "hello.txt": "hi\n"})
    build(buildkit_client, buildkit_addr, tmp_path, image_name, target="build")
    files = image_files(image_name)
    assert files["/out/greeting.txt"] == b"hello from the build stage\n"
    assert not any(name.startswith("/app/") for name in files)


def test_dockerfile_in_a_subdirectory(
    buildkit_client: BuildKitClient, buildkit_addr: str, base_image: str, image_name: str, tmp_path: Path
) -> None:
    write_files(
        tmp_path, {"deploy/Dockerfile.prod": f"FROM {base_image}\nCOPY app.txt /app.txt\n", "app.txt": "prod\n"}
    )
    build(buildkit_client, buildkit_addr, tmp_path, image_name, dockerfile="deploy/Dockerfile.prod")
    assert image_files(image_name)["/app.txt"] == b"prod\n"


def test_reported_digest_is_the_registry_manifest_digest(
    buildkit_client: BuildKitClient, buildkit_addr: str, base_image: str, image_name: str, tmp_path: Path
) -> None:
    write_files(tmp_path, {"Dockerfile": f"FROM {base_image}\nRUN echo {uuid.uuid4().hex} > /id\n"})
    result = build(buildkit_client, buildkit_addr, tmp_path, image_name)
    _, raw, header_digest = registry_manifest(image_name)
    assert result.digest == header_digest == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert result.digest == manifest_digest(image_name)
    assert result.config_digest == registry_manifest(image_name)[0]["config"]["digest"]
    assert result.config_digest != result.digest


def test_failing_run_is_a_user_error_naming_the_step(
    buildkit_client: BuildKitClient, buildkit_addr: str, base_image: str, image_name: str, tmp_path: Path
) -> None:
    write_files(
        tmp_path,
        {"Dockerfile": f"FROM {base_image}\nRUN echo fine\nRUN echo {uuid.uuid4().hex}; echo broken >&2; exit 7\n"},
    )
    events: list[BuildEvent] = []
    with pytest.raises(UserBuildError) as failed:
        build(buildkit_client, buildkit_addr, tmp_path, image_name, on_event=events.append)
    assert failed.value.step is not None and failed.value.step.startswith("[3/3] RUN echo")
    assert "exit code: 7" in failed.value.message
    assert any(isinstance(e, LogEvent) and e.stream == "stderr" and e.text == "broken" for e in events)


def test_log_lines_arrive_in_order_while_the_build_runs(
    buildkit_client: BuildKitClient, buildkit_addr: str, base_image: str, image_name: str, tmp_path: Path
) -> None:
    script = f": {uuid.uuid4().hex}; for i in 1 2 3 4 5 6; do echo line-$i; sleep 0.4; done"
    write_files(tmp_path, {"Dockerfile": f"FROM {base_image}\nRUN {script}\n"})
    arrivals: list[tuple[str, float]] = []
    events: list[BuildEvent] = []

    def record(event: BuildEvent) -> None:
        if isinstance(event, LogEvent):
            arrivals.append((event.text, time.monotonic()))
        events.append(event)

    build(buildkit_client, buildkit_addr, tmp_path, image_name, on_event=record)
    finished = time.monotonic()
    assert [text for text, _ in arrivals] == [f"line-{i}" for i in range(1, 7)]
    assert finished - arrivals[0][1] > 1.5, "the first line came only at the end of the build"
    run_events = [e for e in events if isinstance(e, VertexEvent) and e.name.startswith("[2/2] RUN")]
    assert [e.status for e in run_events] == ["started", "completed"]
    first_line = next(i for i, e in enumerate(events) if isinstance(e, LogEvent))
    assert events.index(run_events[0]) < first_line < events.index(run_events[1])


def test_cancel_mid_build_ends_the_solve(
    buildkit_client: BuildKitClient, buildkit_addr: str, base_image: str, image_name: str, tmp_path: Path
) -> None:
    write_files(tmp_path, {"Dockerfile": f"FROM {base_image}\nRUN echo {uuid.uuid4().hex}; echo sleeping; sleep 60\n"})
    spec = dockerfile_build(tmp_path)
    running = threading.Event()

    def watch(event: BuildEvent) -> None:
        if isinstance(event, LogEvent) and event.text == "sleeping":
            running.set()

    started = time.monotonic()
    with Session(buildkit_addr, local_dirs=spec.local_dirs) as session, pytest.raises(BuildCanceled) as canceled:
        buildkit_client.solve(
            frontend=FRONTEND,
            frontend_attrs=spec.frontend_attrs,
            session=session.id,
            on_event=watch,
            should_cancel=running.is_set,
        )
    assert time.monotonic() - started < 20
    assert canceled.value.step is not None and "sleep 60" in canceled.value.step


def test_secret_reaches_run_but_never_the_image_or_the_log(
    buildkit_client: BuildKitClient, buildkit_addr: str, base_image: str, image_name: str, tmp_path: Path
) -> None:
    value = f"s3cr3t-{uuid.uuid4().hex}"
    write_files(
        tmp_path,
        {
            "Dockerfile": f"FROM {base_image}\n"
            f"RUN --mount=type=secret,id=api_token : {uuid.uuid4().hex} && sha256sum /run/secrets/api_token "
            "&& wc -c < /run/secrets/api_token > /len\n",
        },
    )
    events: list[BuildEvent] = []
    build(buildkit_client, buildkit_addr, tmp_path, image_name, secrets={"api_token": value}, on_event=events.append)

    logs = [e.text for e in events if isinstance(e, LogEvent)]
    assert f"{hashlib.sha256(value.encode()).hexdigest()}  /run/secrets/api_token" in logs
    assert not any(value in text for text in logs)
    files = image_files(image_name)
    assert files["/len"].strip() == str(len(value)).encode()
    assert "/run/secrets/api_token" not in files
    assert not any(value.encode() in content for content in files.values())
    assert value not in json.dumps(image_config(image_name))
