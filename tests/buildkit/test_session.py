"""The session a build serves: fsutil's listing and filters, the session services, and the daemon using them."""

from __future__ import annotations

import hashlib
import os
import socket
import stat
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support.registries import password_registry

from starforge_dag.buildkit.client import BuildKitClient, LogEvent
from starforge_dag.buildkit.dockerfile import FRONTEND, dockerfile_build
from starforge_dag.buildkit.filesync import ExcludeMatcher, go_file_mode, walk
from starforge_dag.buildkit.pb import auth_pb2, auth_pb2_grpc, secrets_pb2, secrets_pb2_grpc
from starforge_dag.buildkit.registry import RegistryAuth, remove_image
from starforge_dag.buildkit.session import Session
from starforge_dag.core.errors import BuildError

GO_DIR = 1 << 31
GO_SYMLINK = 1 << 27
GO_SETUID = 1 << 23


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def paths(root: Path, **kwargs: object) -> list[str]:
    return [s.path for s in walk(root, **kwargs)]  # type: ignore[arg-type]


def test_listing_is_depth_first_in_byte_order(tmp_path: Path) -> None:
    write(tmp_path, {"a/z": "", "a.txt": "", "a-b": "", "B": "", "a/y/x": ""})
    assert paths(tmp_path) == ["B", "a", "a/y", "a/y/x", "a/z", "a-b", "a.txt"]


def test_stat_carries_go_file_modes_sizes_times_and_links(tmp_path: Path) -> None:
    write(tmp_path, {"bin/tool": "#!/bin/sh\n", "data": "12345"})
    os.chmod(tmp_path / "bin/tool", 0o4755)
    os.symlink("data", tmp_path / "link")
    os.link(tmp_path / "data", tmp_path / "zz-hard")
    stats = {s.path: s for s in walk(tmp_path)}

    assert stats["bin"].mode == GO_DIR | 0o755 and stats["bin"].size == 0
    assert stats["bin/tool"].mode == GO_SETUID | 0o755
    assert stats["data"].mode == 0o644 and stats["data"].size == 5
    assert stats["data"].modTime == os.lstat(tmp_path / "data").st_mtime_ns
    assert stats["link"].mode == GO_SYMLINK | 0o777
    assert (stats["link"].linkname, stats["link"].size) == ("data", 4)
    assert stats["zz-hard"].linkname == "data"
    assert stats["data"].uid == os.getuid()
    assert {s.uid for s in walk(tmp_path, owner=(0, 0))} == {0}
    assert go_file_mode(stat.S_IFDIR | 0o1777) == GO_DIR | (1 << 20) | 0o777


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        (["*.log"], "a.log", True),
        (["*.log"], "sub/a.log", False),
        (["**/*.log"], "sub/deep/a.log", True),
        (["sub"], "sub/deep/a.txt", True),
        (["*.log", "!keep.log"], "keep.log", False),
        (["!keep.log", "*.log"], "keep.log", True),
        (["/build/"], "build/out", True),
        (["doc?"], "docs", True),
        (["a.b"], "aXb", False),
    ],
)
def test_dockerignore_semantics(patterns: list[str], path: str, excluded: bool) -> None:
    assert ExcludeMatcher(p.lstrip("/") for p in patterns).matches(path) is excluded


def test_excluded_directory_is_still_walked_for_a_reincluded_file(tmp_path: Path) -> None:
    write(tmp_path, {"docs/keep.md": "", "docs/drop.md": "", "src/main.py": "", "x.log": ""})
    assert paths(tmp_path, excludes=["docs", "!docs/keep.md", "*.log"]) == [
        "docs",
        "docs/keep.md",
        "src",
        "src/main.py",
    ]
    assert paths(tmp_path, excludes=["docs"]) == ["src", "src/main.py", "x.log"]


def test_include_patterns_keep_the_parent_directories(tmp_path: Path) -> None:
    write(tmp_path, {"src/a.py": "", "src/b.txt": "", "src/pkg/c.py": "", "top.py": ""})
    assert paths(tmp_path, includes=["src/*.py"]) == ["src", "src/a.py"]
    assert paths(tmp_path, includes=["src"]) == ["src", "src/a.py", "src/b.txt", "src/pkg", "src/pkg/c.py"]


def test_follow_paths_bring_the_symlink_target(tmp_path: Path) -> None:
    write(tmp_path, {"build/Dockerfile.real": "FROM x\n", "other": ""})
    os.symlink("build/Dockerfile.real", tmp_path / "Dockerfile")
    assert paths(tmp_path, follow_paths=["Dockerfile"]) == ["Dockerfile", "build", "build/Dockerfile.real"]


@pytest.mark.integration
def test_session_services_answer_what_the_daemon_asks(buildkit_addr: str, tmp_path: Path) -> None:
    """Another HTTP/2 client on a second connection sees what the daemon sees on the session's."""
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(tmp_path / "s.sock"))
    listener.listen(1)
    with (
        Session(
            buildkit_addr,
            secrets={"token": "s3cr3t"},
            registry_auth={"registry.example:5000": ("robot", "hunter2")},
        ) as session,
        grpc.insecure_channel(f"unix:{tmp_path}/s.sock") as channel,
    ):
        grpc.channel_ready_future(channel)
        serving = threading.Thread(target=lambda: session.serve_connection(listener.accept()[0]), daemon=True)
        serving.start()
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        secrets = secrets_pb2_grpc.SecretsStub(channel)
        assert secrets.GetSecret(secrets_pb2.GetSecretRequest(ID="token"), timeout=5).data == b"s3cr3t"
        with pytest.raises(grpc.RpcError) as missing:
            secrets.GetSecret(secrets_pb2.GetSecretRequest(ID="other"), timeout=5)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        assert missing.value.details() == "secret other not found"
        auth = auth_pb2_grpc.AuthStub(channel)
        known = auth.Credentials(auth_pb2.CredentialsRequest(Host="registry.example:5000"), timeout=5)
        assert (known.Username, known.Secret) == ("robot", "hunter2")
        assert auth.Credentials(auth_pb2.CredentialsRequest(Host="elsewhere"), timeout=5).Username == ""
        with pytest.raises(grpc.RpcError) as unknown:
            channel.unary_unary("/moby.filesync.v1.Auth/FetchToken")(b"", timeout=5)
        assert unknown.value.code() == grpc.StatusCode.UNIMPLEMENTED
    serving.join(timeout=10)
    assert not serving.is_alive()
    listener.close()


def _build(client: BuildKitClient, addr: str, context: Path, attach: str = "auto", **kwargs: object) -> list[str]:
    """Solve the context's Dockerfile through a session; return the RUN output lines."""
    build = dockerfile_build(context)
    lines: list[str] = []
    with Session(addr, local_dirs=build.local_dirs, owner=(0, 0), attach=attach, **kwargs) as session:  # type: ignore[arg-type]
        client.solve(
            frontend=FRONTEND,
            frontend_attrs=build.frontend_attrs,
            session=session.id,
            on_event=lambda e: lines.append(e.text) if isinstance(e, LogEvent) else None,
        )
    return lines


@pytest.mark.integration
@pytest.mark.parametrize("attach", ["auto", "control"])
def test_daemon_pulls_the_context_through_the_session(
    buildkit_client: BuildKitClient, buildkit_addr: str, base_image: str, tmp_path: Path, attach: str
) -> None:
    blob = os.urandom(3 * 1024 * 1024 + 17)
    write(
        tmp_path,
        {
            "Dockerfile": f"FROM {base_image}\nCOPY . /ctx\n"
            "RUN cd /ctx && find . | sort && sha256sum blob.bin && stat -c '%a %u:%g' run.sh && cat nested/dir/hello.txt\n",
            ".dockerignore": "*.log\nignored/\n",
            "blob.bin": blob,
            "run.sh": "#!/bin/sh\n",
            "nested/dir/hello.txt": "hello through the session\n",
            "debug.log": "x",
            "ignored/secret.txt": "no",
        },
    )
    os.chmod(tmp_path / "run.sh", 0o750)
    lines = _build(buildkit_client, buildkit_addr, tmp_path, attach)

    listing = [line for line in lines if line.startswith(".")]
    assert listing == [
        ".",
        "./.dockerignore",
        "./Dockerfile",
        "./blob.bin",
        "./nested",
        "./nested/dir",
        "./nested/dir/hello.txt",
        "./run.sh",
    ]
    assert f"{hashlib.sha256(blob).hexdigest()}  blob.bin" in lines
    assert "750 0:0" in lines
    assert lines[-1] == "hello through the session"


@pytest.mark.integration
def test_a_changed_file_is_sent_again_on_the_next_build(
    buildkit_client: BuildKitClient, buildkit_addr: str, base_image: str, tmp_path: Path
) -> None:
    run = f"RUN : {uuid.uuid4()} && cat /v.txt"  # a fresh step: earlier runs of this test left cache behind
    write(tmp_path, {"Dockerfile": f"FROM {base_image}\nCOPY v.txt /v.txt\n{run}\n", "v.txt": "one\n"})
    assert _build(buildkit_client, buildkit_addr, tmp_path) == ["one"]
    write(tmp_path, {"v.txt": "two, longer\n"})
    assert _build(buildkit_client, buildkit_addr, tmp_path) == ["two, longer"]


@pytest.mark.integration
def test_a_secret_the_session_does_not_have_fails_the_step(
    buildkit_client: BuildKitClient, buildkit_addr: str, base_image: str, tmp_path: Path
) -> None:
    write(
        tmp_path,
        {"Dockerfile": f"FROM {base_image}\nRUN --mount=type=secret,id=absent,required cat /run/secrets/absent\n"},
    )
    with pytest.raises(BuildError) as failed:
        _build(buildkit_client, buildkit_addr, tmp_path, secrets={"present": "x"})
    assert "absent" in str(failed.value)


@pytest.mark.integration
def test_closing_the_session_ends_it_for_the_daemon(
    buildkit_client: BuildKitClient, buildkit_addr: str, base_image: str, tmp_path: Path
) -> None:
    write(tmp_path, {"Dockerfile": f"FROM {base_image}\nCOPY . /ctx\n"})
    build = dockerfile_build(tmp_path)
    with Session(buildkit_addr, local_dirs=build.local_dirs) as session:
        pass
    with pytest.raises(BuildError):
        buildkit_client.solve(frontend=FRONTEND, frontend_attrs=build.frontend_attrs, session=session.id, timeout=60)


@pytest.fixture
def private_image(
    buildkit_client: BuildKitClient,
    buildkit_addr: str,
    docker_sock: str,
    base_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, RegistryAuth]]:
    """An image in a second local registry that wants a password; the daemon keeps no copy of it."""
    with password_registry(tmp_path_factory.mktemp("private-registry")) as registry:
        auth = RegistryAuth(registry.username, registry.password)
        image = f"{registry.host}/private/base:{uuid.uuid4().hex[:8]}"
        context = write(
            tmp_path_factory.mktemp("private-image"), {"Dockerfile": f"FROM {base_image}\nRUN echo private > /marker\n"}
        )
        build = dockerfile_build(context)
        with Session(buildkit_addr, local_dirs=build.local_dirs) as session:
            buildkit_client.build_image(
                image, frontend=FRONTEND, frontend_attrs=build.frontend_attrs, session=session.id, registry_auth=auth
            )
        remove_image(docker_sock, image)
        yield image, auth


@pytest.mark.integration
def test_private_base_image_is_pulled_with_the_sessions_credentials(
    buildkit_client: BuildKitClient, buildkit_addr: str, private_image: tuple[str, RegistryAuth], tmp_path: Path
) -> None:
    image, auth = private_image
    host = image.split("/", 1)[0]
    write(tmp_path, {"Dockerfile": f"FROM {image}\nRUN : {uuid.uuid4().hex}; cat /marker\n"})
    with pytest.raises(BuildError, match="(?i)unauthorized|authorization|401"):
        _build(
            buildkit_client, buildkit_addr, tmp_path, registry_auth={"elsewhere:5000": (auth.username, auth.password)}
        )
    lines = _build(buildkit_client, buildkit_addr, tmp_path, registry_auth={host: (auth.username, auth.password)})
    assert lines == ["private"]


@pytest.mark.integration
def test_thousands_of_files_arrive_intact(
    buildkit_client: BuildKitClient, buildkit_addr: str, base_image: str, tmp_path: Path
) -> None:
    context = tmp_path / "ctx"
    files = {f"src/p{i % 37}/f{i:04d}.txt": f"{i}:{uuid.uuid4().hex}\n" * (i % 50 + 1) for i in range(3000)}
    write(
        context,
        {
            **files,
            "Dockerfile": f"FROM {base_image}\nCOPY src /src\nRUN cd /src && find . -type f | wc -l && find . -type f | sort | xargs cat | sha256sum\n",
        },
    )
    expected = hashlib.sha256(
        "".join(files[name] for name in sorted(files, key=lambda n: "./" + n[4:])).encode()
    ).hexdigest()
    lines = _build(buildkit_client, buildkit_addr, context)
    assert lines == ["3000", f"{expected}  -"]
