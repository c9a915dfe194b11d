"""Images reach the registry with the config the deployer needs and the digest the registry serves."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import httpx
import pytest

from starforge_dag.buildkit import llb
from starforge_dag.buildkit.client import BuildKitClient, config_dockerfile
from starforge_dag.buildkit.pb import control_pb2, control_pb2_grpc
from starforge_dag.buildkit.registry import (
    MANIFEST_ACCEPT,
    RegistryAuth,
    manifest_digest,
    push_image,
)
from starforge_dag.core.errors import PermanentBuildError
from starforge_dag.core.models import ImageRef

IMAGE_CONFIG = {
    "Env": ["PORT=8080", 'GREETING=price $5 "now"'],
    "WorkingDir": "/app",
    "Cmd": ["sh", "-c", 'echo "$GREETING from $(pwd) on $PORT"'],
    "ExposedPorts": {"8080/tcp": {}},
}


def registry_config(image: str) -> dict:
    """The image config blob as the registry serves it."""
    ref = ImageRef.parse(image)
    base = f"http://{ref.registry}/v2/{ref.repository}"
    with httpx.Client(trust_env=False) as registry:
        manifest = registry.get(f"{base}/manifests/{ref.tag}", headers={"Accept": MANIFEST_ACCEPT}).raise_for_status()
        return registry.get(f"{base}/blobs/{manifest.json()['config']['digest']}").raise_for_status().json()


def engine_images(docker_sock: str) -> list[str]:
    with httpx.Client(transport=httpx.HTTPTransport(uds=docker_sock), base_url="http://docker") as engine:
        return [tag for img in engine.get("/v1.41/images/json").json() for tag in img.get("RepoTags") or []]


@pytest.mark.integration
def test_raw_llb_image_gets_the_deploy_config(
    buildkit_client: BuildKitClient, base_image: str, image_name: str, docker_sock: str
) -> None:
    st = llb.image(base_image).run(["sh", "-c", "mkdir -p /app && echo ok > /app/ready"], network="none").root()

    build = buildkit_client.build_image(image_name, definition=llb.marshal(st), image_config=IMAGE_CONFIG)

    assert build.digest == manifest_digest(image_name)
    config = registry_config(image_name)["config"]
    assert config["WorkingDir"] == "/app"
    assert config["Cmd"] == IMAGE_CONFIG["Cmd"]
    assert {"PORT=8080", 'GREETING=price $5 "now"'} <= set(config["Env"])
    assert any(e.startswith("PATH=") for e in config["Env"])
    assert "8080/tcp" in config["ExposedPorts"]
    assert not [t for t in engine_images(docker_sock) if t.startswith("starforge-staging/")]
    ran = subprocess.run(
        ["/usr/bin/docker", "run", "--rm", "--network", "none", image_name],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "DOCKER_HOST": f"unix://{docker_sock}"},
    )
    assert ran.stdout.strip() == 'price $5 "now" from /app on 8080', ran.stderr


@pytest.mark.integration
def test_push_of_a_missing_image_is_permanent(docker_sock: str, image_name: str) -> None:
    with pytest.raises(PermanentBuildError):
        push_image(docker_sock, image_name)


@pytest.mark.integration
def test_manifest_digest_of_a_missing_tag_is_permanent(image_name: str, services: dict[str, str]) -> None:
    with pytest.raises(PermanentBuildError):
        manifest_digest(image_name)


@pytest.mark.integration
def test_push_with_credentials_keeps_them_out_of_progress(
    buildkit_client: BuildKitClient, base_image: str, image_name: str, docker_sock: str
) -> None:
    buildkit_client.solve(llb.marshal(llb.image(base_image)), exporter="moby", exporter_attrs={"name": image_name})
    lines: list[str] = []
    auth = RegistryAuth("builder", "s3cret-pass", "127.0.0.1:5000")

    digest = push_image(docker_sock, image_name, auth, on_line=lines.append)

    assert digest == manifest_digest(image_name)
    assert lines and not any("s3cret" in line for line in lines)


def test_registry_auth_never_shows_the_password() -> None:
    auth = RegistryAuth("builder", "s3cret-pass", "registry.example")
    assert "s3cret" not in repr(auth) and "s3cret" not in str(auth)
    decoded = json.loads(base64.urlsafe_b64decode(auth.header()))
    assert decoded == {"username": "builder", "password": "s3cret-pass", "serveraddress": "registry.example"}


def test_config_dockerfile_only_sets_metadata() -> None:
    text = config_dockerfile("staging/x:raw", {"config": IMAGE_CONFIG})
    assert text.splitlines()[0] == "FROM staging/x:raw"
    assert 'ENV GREETING="price \\$5 \\"now\\""' in text
    assert not any(line.split()[0] in ("RUN", "COPY", "ADD") for line in text.splitlines())


def test_config_rejects_what_it_cannot_apply() -> None:
    with pytest.raises(ValueError):
        config_dockerfile("x", {"Healthcheck": {"Test": ["CMD", "true"]}})
    with pytest.raises(ValueError):
        config_dockerfile("x", {"Env": ["NO_EQUALS_SIGN"]})
    with pytest.raises(ValueError):
        config_dockerfile("x", {"WorkingDir": "/a\nRUN rm -rf /"})


def test_image_config_is_refused_for_dockerfile_builds(tmp_path: Path) -> None:
    with BuildKitClient(f"docker://{tmp_path}/unused.sock") as client, pytest.raises(ValueError):
        client.build_image("127.0.0.1:5000/apps/x:1", frontend="dockerfile.v0", image_config={"Cmd": ["true"]})


MANIFEST = "sha256:" + "a" * 64
CONFIG = "sha256:" + "b" * 64


class StandaloneControl(control_pb2_grpc.ControlServicer):
    """Answers like a standalone buildkitd whose `image` exporter pushed: manifest and config digests."""

    def __init__(self) -> None:
        self.requests: list[control_pb2.SolveRequest] = []

    def Solve(self, request: control_pb2.SolveRequest, context: grpc.ServicerContext) -> control_pb2.SolveResponse:
        self.requests.append(request)
        response = {"containerimage.digest": MANIFEST, "containerimage.config.digest": CONFIG}
        return control_pb2.SolveResponse(ExporterResponse=response)

    def Status(
        self, request: control_pb2.StatusRequest, context: grpc.ServicerContext
    ) -> Iterator[control_pb2.StatusResponse]:
        yield control_pb2.StatusResponse(vertexes=[control_pb2.Vertex(digest="sha256:1", name="exporting to image")])


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[tuple[str, StandaloneControl]]:
    control = StandaloneControl()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    control_pb2_grpc.add_ControlServicer_to_server(control, server)
    server.add_insecure_port(f"unix://{tmp_path}/buildkitd.sock")
    server.start()
    yield f"unix://{tmp_path}/buildkitd.sock", control
    server.stop(grace=None)


def test_standalone_buildkit_pushes_with_the_image_exporter(standalone: tuple[str, StandaloneControl]) -> None:
    addr, control = standalone
    definition = llb.marshal(llb.image("127.0.0.1:5000/base/busybox:latest", platform="linux/arm64"))

    with BuildKitClient(addr) as client:
        build = client.build_image(
            "registry.example/apps/web:abc", definition=definition, image_config=IMAGE_CONFIG, insecure_registry=True
        )

    assert (build.digest, build.config_digest) == (MANIFEST, CONFIG)
    [request] = control.requests
    [entry] = request.Exporters  # what BuildKit v0.13+ reads
    assert entry.Type == request.Exporter == "image"  # the single fields are what v0.8 reads
    assert dict(entry.Attrs) == dict(request.ExporterAttrs)
    attrs = dict(entry.Attrs)
    assert (attrs["name"], attrs["push"], attrs["registry.insecure"]) == (
        "registry.example/apps/web:abc",
        "true",
        "true",
    )
    assert json.loads(attrs["containerimage.config"]) == {
        "architecture": "arm64",
        "os": "linux",
        "config": IMAGE_CONFIG,
    }
