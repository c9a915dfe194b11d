"""A registry that wants bearer tokens (as DigitalOcean's does): push, verify, pull, and refusals that say why."""

from __future__ import annotations

import socket
import threading
import uuid
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from support.registries import TokenRegistry

from starforge_dag.buildkit import llb
from starforge_dag.buildkit.client import BuildKitClient, LogEvent
from starforge_dag.buildkit.dockerfile import FRONTEND, dockerfile_build
from starforge_dag.buildkit.pb import auth_pb2, auth_pb2_grpc
from starforge_dag.buildkit.registry import RegistryAuth, RegistryClient, push_image, remove_image
from starforge_dag.buildkit.session import Session
from starforge_dag.core.errors import PermanentBuildError
from starforge_dag.core.models import ImageRef
from starforge_dag.deploy.registry import DeleteRefused, delete_manifest
from starforge_dag.resources.registry import RegistryResource


def _pushed(client: BuildKitClient, base_image: str, registry: TokenRegistry) -> tuple[str, str]:
    image = f"{registry.host}/private/app-{uuid.uuid4().hex[:8]}:v1"
    st = llb.image(base_image).run(["sh", "-c", f"echo {uuid.uuid4().hex} > /marker"], network="none").root()
    build = client.build_image(image, definition=llb.marshal(st), registry_auth=registry.auth)
    return image, build.digest


@pytest.mark.integration
def test_push_and_digest_check_through_the_bearer_challenge(
    buildkit_client: BuildKitClient, base_image: str, token_registry: TokenRegistry
) -> None:
    before = len(token_registry.token_requests)
    image, digest = _pushed(buildkit_client, base_image, token_registry)

    assert RegistryClient(token_registry.auth).manifest_digest(image) == digest
    resource = RegistryResource(
        prefix=f"{token_registry.host}/private", username="robot", password=token_registry.password
    )
    assert resource.manifest_digest(ImageRef.parse(image)) == digest
    requests = token_registry.token_requests[before:]
    assert requests and all(r["authorization"].startswith("Basic ") for r in requests)
    assert not any(token_registry.password in r["path"] for r in requests)  # only the user name may be there


@pytest.mark.integration
def test_retention_deletes_a_manifest_through_the_bearer_challenge(
    buildkit_client: BuildKitClient, base_image: str, token_registry: TokenRegistry
) -> None:
    image, digest = _pushed(buildkit_client, base_image, token_registry)
    pinned = f"{image.rsplit(':', 1)[0]}@{digest}"
    before = len(token_registry.token_requests)

    assert delete_manifest(pinned, token_registry.auth) is True
    assert any("delete" in r["path"] for r in token_registry.token_requests[before:])
    with pytest.raises(PermanentBuildError, match="404"):
        RegistryClient(token_registry.auth).manifest_digest(pinned)
    assert delete_manifest(pinned, token_registry.auth) is False  # already gone
    with pytest.raises(DeleteRefused, match="credentials"):
        delete_manifest(pinned)


@pytest.mark.integration
def test_wrong_credentials_are_a_clear_permanent_error(
    buildkit_client: BuildKitClient, base_image: str, token_registry: TokenRegistry, docker_sock: str
) -> None:
    image, _ = _pushed(buildkit_client, base_image, token_registry)
    wrong = RegistryAuth("robot", "not-the-password-" + uuid.uuid4().hex, token_registry.host)

    with pytest.raises(PermanentBuildError) as verify:
        RegistryClient(wrong).manifest_digest(image)
    with pytest.raises(PermanentBuildError) as anonymous:
        RegistryClient().manifest_digest(image)
    buildkit_client.solve(llb.marshal(llb.image(base_image)), exporter="moby", exporter_attrs={"name": image})
    try:
        with pytest.raises(PermanentBuildError) as push:
            push_image(docker_sock, image, wrong)
    finally:
        remove_image(docker_sock, image)

    assert "refused the credentials (user 'robot')" in verify.value.message
    assert "token service" in verify.value.message
    assert "refused" in anonymous.value.message or "credentials" in anonymous.value.message
    assert "unauthorized" in push.value.message.lower() or "authentication" in push.value.message.lower()
    for error in (verify.value, anonymous.value, push.value):
        assert wrong.password not in str(error) and token_registry.password not in str(error)


@pytest.mark.integration
def test_the_daemon_pulls_a_private_base_with_tokens_fetched_by_the_session(
    buildkit_client: BuildKitClient,
    buildkit_addr: str,
    base_image: str,
    token_registry: TokenRegistry,
    tmp_path: Path,
    docker_sock: str,
) -> None:
    """BuildKit asks the session for a token authority, then for tokens: the password never leaves this process."""
    image, _ = _pushed(buildkit_client, base_image, token_registry)
    remove_image(docker_sock, image)  # the daemon must fetch it from the registry
    nonce = uuid.uuid4().hex
    (tmp_path / "Dockerfile").write_text(f"FROM {image}\nRUN : {nonce}; echo pulled\n")
    build = dockerfile_build(tmp_path)
    before = len(token_registry.token_requests)
    lines: list[str] = []
    with Session(
        buildkit_addr, local_dirs=build.local_dirs, registry_auth={token_registry.host: token_registry.auth}
    ) as s:
        buildkit_client.solve(
            frontend=FRONTEND,
            frontend_attrs=build.frontend_attrs,
            session=s.id,
            on_event=lambda e: lines.append(e.text) if isinstance(e, LogEvent) else None,
        )

    assert "pulled" in lines
    pulls = [r for r in token_registry.token_requests[before:] if r["authorization"].startswith("Basic ")]
    assert pulls and all(r["user_agent"].startswith("python-httpx") for r in pulls)


@pytest.mark.integration
def test_fetch_token_answers_only_for_the_registry_s_own_realm(
    buildkit_addr: str, token_registry: TokenRegistry, tmp_path: Path
) -> None:
    """The daemon's calls, made on a second connection to the same session."""
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(tmp_path / "s.sock"))
    listener.listen(1)
    host = token_registry.host
    try:
        with (
            Session(buildkit_addr, registry_auth={host: token_registry.auth}) as session,
            grpc.insecure_channel(f"unix:{tmp_path}/s.sock") as channel,
        ):
            serving = threading.Thread(target=lambda: session.serve_connection(listener.accept()[0]), daemon=True)
            serving.start()
            auth = auth_pb2_grpc.AuthStub(channel)
            key = auth.GetTokenAuthority(auth_pb2.GetTokenAuthorityRequest(Host=host, Salt=b"s" * 32), timeout=5)
            assert len(key.PublicKey) == 32
            signed = auth.VerifyTokenAuthority(
                auth_pb2.VerifyTokenAuthorityRequest(Host=host, Salt=b"s" * 32, Payload=b"p" * 32), timeout=5
            ).Signed
            Ed25519PublicKey.from_public_bytes(key.PublicKey).verify(signed[:64], signed[64:])
            assert signed[64:] == b"p" * 32
            scope = "repository:private/x:pull"
            token = auth.FetchToken(
                auth_pb2.FetchTokenRequest(
                    Host=host, Realm=token_registry.realm, Service=token_registry.service, Scopes=[scope]
                ),
                timeout=10,
            )
            assert token.Token.count(".") == 2 and token.ExpiresIn == 300
            with pytest.raises(grpc.RpcError) as foreign:
                auth.FetchToken(
                    auth_pb2.FetchTokenRequest(Host=host, Realm="http://attacker.example/token", Scopes=[scope]),
                    timeout=10,
                )
            assert foreign.value.code() == grpc.StatusCode.PERMISSION_DENIED
            with pytest.raises(grpc.RpcError) as no_authority:
                auth.GetTokenAuthority(auth_pb2.GetTokenAuthorityRequest(Host="elsewhere:5000"), timeout=5)
            with pytest.raises(grpc.RpcError) as no_token:
                auth.FetchToken(auth_pb2.FetchTokenRequest(Host="elsewhere:5000"), timeout=5)
            assert no_authority.value.code() == no_token.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        listener.close()
