"""LLB marshalling: the graph BuildKit receives is exactly the one the builder described."""

from __future__ import annotations

import hashlib
import json

import pytest

from starforge_dag.buildkit import llb
from starforge_dag.buildkit.client import BuildKitClient, LogEvent
from starforge_dag.buildkit.pb import ops_pb2 as pb
from starforge_dag.buildkit.session import Session

BASE = "127.0.0.1:5000/base/busybox:latest"


def decode(data: bytes) -> tuple[pb.Definition, list[tuple[str, pb.Op]]]:
    definition = pb.Definition.FromString(data)
    ops = [("sha256:" + hashlib.sha256(raw).hexdigest(), pb.Op.FromString(raw)) for raw in getattr(definition, "def")]
    return definition, ops


def test_definition_lists_each_op_once_inputs_first_and_ends_with_the_result() -> None:
    base = llb.image(BASE, platform="linux/amd64")
    built = base.run(["sh", "-c", "echo hi > /out"], cwd="/app", env={"K": "V"}, network="none").root()
    final = built.file(llb.copy(built, "/out", "/copy", create_dest_path=True))

    definition, ops = decode(llb.marshal(final))

    digests = [d for d, _ in ops]
    assert set(definition.metadata) == set(digests[:-1])
    assert len(digests) == len(set(digests)) == 4
    for position, (_, op) in enumerate(ops):
        assert op.platform.OS == "linux" and op.platform.Architecture == "amd64"
        for inp in op.inputs:
            assert inp.digest in digests[:position]
    source, exec_, file_, last = (op for _, op in ops)
    assert source.source.identifier == f"docker-image://{BASE}"
    assert list(exec_.exec.meta.args) == ["sh", "-c", "echo hi > /out"]
    assert exec_.exec.meta.cwd == "/app"
    assert "K=V" in exec_.exec.meta.env and f"PATH={llb.DEFAULT_PATH}" in exec_.exec.meta.env
    assert exec_.exec.network == pb.NONE
    assert exec_.exec.mounts[0].dest == "/" and exec_.exec.mounts[0].output == 0
    assert [i.digest for i in file_.inputs] == [digests[1]]
    assert last.WhichOneof("op") is None
    assert [(i.digest, i.index) for i in last.inputs] == [(digests[2], 0)]


def test_marshal_is_deterministic() -> None:
    def build() -> bytes:
        st = llb.local("context", include=["src"], exclude=["node_modules"])
        return llb.marshal(llb.image(BASE).file(llb.copy(st, "/", "/app"), llb.mkdir("/data")))

    assert build() == build()


def test_mounts_carry_ids_never_secret_values() -> None:
    src = llb.local("context", exclude=["*.log"], shared_key="app-1")
    run = llb.image(BASE).run(
        ["npm", "ci"],
        mounts=[
            llb.cache_mount("/root/.npm", id="npm", sharing="locked"),
            llb.secret_mount("/run/secrets/TOKEN", id="TOKEN", env="TOKEN"),
            llb.bind_mount(src, "/src", readonly=True),
            llb.bind_mount(src, "/work", readonly=False),
        ],
        network="host",
    )
    _, ops = decode(llb.marshal(run.get_mount("/work")))

    local_op = next(
        op for _, op in ops if op.WhichOneof("op") == "source" and op.source.identifier == "local://context"
    )
    assert json.loads(local_op.source.attrs["local.excludepatterns"]) == ["*.log"]
    assert local_op.source.attrs["local.sharedkeyhint"] == "app-1"
    exec_op = next(op for _, op in ops if op.WhichOneof("op") == "exec").exec
    mounts = {m.dest: m for m in exec_op.mounts}
    assert mounts["/root/.npm"].mountType == pb.CACHE
    assert (mounts["/root/.npm"].cacheOpt.ID, mounts["/root/.npm"].cacheOpt.sharing) == ("npm", pb.LOCKED)
    assert mounts["/run/secrets/TOKEN"].mountType == pb.SECRET and mounts["/run/secrets/TOKEN"].secretOpt.ID == "TOKEN"
    assert [(s.ID, s.name) for s in exec_op.secretenv] == [("TOKEN", "TOKEN")]
    assert mounts["/src"].readonly and mounts["/src"].output == llb.SKIP_OUTPUT
    assert mounts["/work"].output == 1 and mounts["/src"].input == mounts["/work"].input == 1
    assert exec_op.network == pb.HOST
    last = ops[-1][1]
    assert last.inputs[0].index == 1


def test_file_actions_chain_on_each_other() -> None:
    other = llb.image(BASE)
    st = llb.scratch().file(
        llb.mkdir("/a"), llb.copy(other, "/bin/busybox", "/a/bb"), llb.rm("/a/x", allow_not_found=True)
    )
    _, ops = decode(llb.marshal(st))

    file_op = ops[-2][1]
    assert len(file_op.inputs) == 1
    actions = file_op.file.actions
    assert [a.WhichOneof("action") for a in actions] == ["mkdir", "copy", "rm"]
    assert actions[0].input == llb.NO_INPUT
    assert (actions[1].input, actions[1].secondaryInput) == (1, 0)
    assert actions[2].input == 2
    assert [a.output for a in actions] == [-1, -1, 0]
    assert actions[1].copy.timestamp == -1 and actions[1].copy.mode == -1


def test_image_refs_are_normalized_like_docker() -> None:
    def identifier(ref: str) -> str:
        _, ops = decode(llb.marshal(llb.image(ref)))
        return ops[0][1].source.identifier

    assert identifier("busybox") == "docker-image://docker.io/library/busybox:latest"
    assert identifier("localhost:5000/a/b") == "docker-image://localhost:5000/a/b:latest"
    assert identifier("127.0.0.1:5000/a/b:1.2") == "docker-image://127.0.0.1:5000/a/b:1.2"


def test_scratch_alone_cannot_be_marshalled() -> None:
    with pytest.raises(ValueError):
        llb.marshal(llb.scratch())


@pytest.mark.integration
def test_buildkit_runs_the_marshalled_graph(buildkit_client: BuildKitClient, base_image: str) -> None:
    """File actions, bind and cache mounts mean in BuildKit what the builder says they mean."""
    files = (
        llb.scratch()
        .file(llb.mkdir("/cfg"), llb.mkfile("/cfg/greeting", "hello from mkfile\n"), llb.mkfile("/cfg/gone", "x"))
        .file(llb.rm("/cfg/gone"))
    )
    base = llb.image(base_image)
    app = base.file(llb.copy(files, "/cfg", "/app", create_dest_path=True))
    run = app.run(
        ["sh", "-c", "cat /app/greeting; ls /app; cat /ro/cfg/greeting; echo cached > /cache/x; ls /cache"],
        mounts=[llb.bind_mount(files, "/ro"), llb.cache_mount("/cache", id="llb-test")],
        network="none",
        name="check files",
        ignore_cache=True,
    )
    lines: list[str] = []
    buildkit_client.solve(
        llb.marshal(run.root()), on_event=lambda e: lines.append(e.text) if isinstance(e, LogEvent) else None
    )
    assert lines == ["hello from mkfile", "greeting", "hello from mkfile", "x"]


@pytest.mark.integration
def test_secret_reaches_the_step_but_not_the_definition(
    buildkit_client: BuildKitClient, buildkit_addr: str, base_image: str
) -> None:
    value = "s3cret-value-for-llb"
    run = llb.image(base_image).run(
        ["sh", "-c", "cat /run/secrets/TOKEN; echo; ls -l /run/secrets/TOKEN | cut -c1-10"],
        mounts=[llb.secret_mount("/run/secrets/TOKEN", id="TOKEN")],
        network="none",
        ignore_cache=True,
    )
    definition = llb.marshal(run.root())
    lines: list[str] = []

    with Session(buildkit_addr, None, local_dirs={}, secrets={"TOKEN": value}, name="llb-secret") as session:
        buildkit_client.solve(
            definition, session=session.id, on_event=lambda e: lines.append(e.text) if isinstance(e, LogEvent) else None
        )

    assert value.encode() not in definition
    assert lines == [value, "-r--------"]
