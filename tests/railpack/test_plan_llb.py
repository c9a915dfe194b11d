"""Plan → LLB: decode the pb.Definition and check the graph BuildKit would run."""

from __future__ import annotations

import hashlib
import json

from starforge_dag.buildkit.pb import ops_pb2 as pb
from starforge_dag.railpack import generate_plan
from starforge_dag.railpack.llb import plan_to_llb

BUSYBOX = "127.0.0.1:5000/base/busybox:latest"


def _ops(definition: bytes) -> list[pb.Op]:
    parsed = pb.Definition()
    parsed.ParseFromString(definition)
    ops = []
    for data in getattr(parsed, "def"):
        op = pb.Op()
        op.ParseFromString(data)
        ops.append(op)
    return ops


def _kind(ops: list[pb.Op], kind: str) -> list[pb.Op]:
    return [op for op in ops if op.WhichOneof("op") == kind]


def test_shell_app_uses_the_given_local_images(fixture_app) -> None:
    plan = generate_plan(fixture_app("shell-busybox")).plan
    result = plan_to_llb(plan, builder_image=BUSYBOX, runtime_image=BUSYBOX)
    ops = _ops(result.definition)
    sources = {op.source.identifier for op in _kind(ops, "source")}
    assert sources == {f"docker-image://{BUSYBOX}", "local://context"}
    execs = _kind(ops, "exec")
    assert [list(op.exec.meta.args) for op in execs] == [["sh", "-c", "chmod +x start.sh"]]
    assert execs[0].exec.meta.cwd == "/app"
    assert result.image_config["config"]["Cmd"] == ["/bin/sh", "-c", "sh start.sh"]
    assert result.image_config["config"]["WorkingDir"] == "/app"


def _by_digest(definition: bytes) -> dict[str, pb.Op]:
    parsed = pb.Definition()
    parsed.ParseFromString(definition)
    ops = {}
    for data in getattr(parsed, "def"):
        op = pb.Op()
        op.ParseFromString(data)
        ops["sha256:" + hashlib.sha256(data).hexdigest()] = op
    return ops


def test_final_op_is_the_deploy_copy_onto_the_runtime_base(fixture_app) -> None:
    plan = generate_plan(fixture_app("shell-busybox")).plan
    definition = plan_to_llb(plan, builder_image="local/builder:1", runtime_image="local/runtime:1").definition
    ops = _by_digest(definition)
    result = ops[_ops(definition)[-1].inputs[0].digest]
    assert result.WhichOneof("op") == "file"
    copy = result.file.actions[0].copy
    assert (copy.src, copy.dest) == ("/app", "/app")
    build = ops[result.inputs[1].digest]
    assert list(build.exec.meta.args) == ["sh", "-c", "chmod +x start.sh"]
    with_app_dir = ops[result.inputs[0].digest]
    assert with_app_dir.file.actions[0].mkdir.path == "/app"
    assert ops[with_app_dir.inputs[0].digest].source.identifier == "docker-image://docker.io/local/runtime:1"


def test_cache_mounts_and_secret_mounts(fixture_app) -> None:
    plan = generate_plan(fixture_app("node-npm"), env={"NPM_TOKEN": "npm_s3cr3t_value"}).plan
    result = plan_to_llb(plan, builder_image=BUSYBOX, runtime_image=BUSYBOX)
    assert b"npm_s3cr3t_value" not in result.definition
    ops = _ops(result.definition)
    npm_ci = next(op for op in _kind(ops, "exec") if op.exec.meta.args[-1].endswith("npm install"))
    caches = {m.cacheOpt.ID: m.dest for m in npm_ci.exec.mounts if m.mountType == pb.CACHE}
    assert caches == {"npm-install": "/root/.npm"}
    secrets = [(m.secretOpt.ID, m.dest) for m in npm_ci.exec.mounts if m.mountType == pb.SECRET]
    assert secrets == [("NPM_TOKEN", "/run/secrets/NPM_TOKEN")]
    assert npm_ci.exec.meta.args[-1] == 'export NPM_TOKEN="$(cat /run/secrets/NPM_TOKEN 2>/dev/null)"; npm install'
    env = dict(e.split("=", 1) for e in npm_ci.exec.meta.env)
    assert env["NODE_ENV"] == "production"
    assert env["PATH"].startswith("/app/node_modules/.bin:/mise/shims:")
    mise = next(op for op in _kind(ops, "exec") if "mise install" in op.exec.meta.args[-1])
    assert not [m for m in mise.exec.mounts if m.mountType == pb.SECRET], "package steps get no secrets"


def test_assets_are_written_and_manifests_copied_from_the_context(fixture_app) -> None:
    plan = generate_plan(fixture_app("node-vite-react")).plan
    ops = _ops(plan_to_llb(plan).definition)
    files = [a for op in _kind(ops, "file") for a in op.file.actions]
    mkfiles = {a.mkfile.path: a.mkfile.data for a in files if a.WhichOneof("action") == "mkfile"}
    assert b"root * /app/dist" in mkfiles["/Caddyfile"]
    assert b'node = "lts"' in mkfiles["/etc/mise/config.toml"]
    execs = [op.exec.meta.args[-1] for op in _kind(ops, "exec")]
    assert "mise install-into caddy@latest /railpack/caddy" in execs
    copies = {(a.copy.src, a.copy.dest) for a in files if a.WhichOneof("action") == "copy"}
    assert ("package.json", "/app/package.json") in {(s.lstrip("/"), d) for s, d in copies}
    assert ("/app/dist", "/app/dist") in copies


def test_excluded_paths_are_removed_before_the_copy_into_the_image(fixture_app) -> None:
    plan = generate_plan(fixture_app("rust-cargo")).plan
    ops = _ops(plan_to_llb(plan).definition)
    removed = [a.rm.path for op in _kind(ops, "file") for a in op.file.actions if a.WhichOneof("action") == "rm"]
    assert removed == ["/app/target"]


def test_image_config_carries_deploy_variables_and_paths(fixture_app) -> None:
    plan = generate_plan(fixture_app("python-flask")).plan
    config = plan_to_llb(plan).image_config["config"]
    env = dict(e.split("=", 1) for e in config["Env"])
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"].startswith("/app/.venv/bin:/mise/shims:")
    json.dumps(config)


def test_network_mode_is_applied_to_every_exec(fixture_app) -> None:
    plan = generate_plan(fixture_app("node-npm")).plan
    ops = _ops(plan_to_llb(plan, network="host").definition)
    assert {op.exec.network for op in _kind(ops, "exec")} == {pb.HOST}


def test_dockerignore_patterns_are_excluded_from_the_context(fixture_app) -> None:
    root = fixture_app("shell-busybox")
    (root / ".dockerignore").write_text("# local junk\nnode_modules\n*.log\n")
    plan = generate_plan(root).plan
    assert plan.exclude == ["node_modules", "*.log"]
    source = next(op for op in _ops(plan_to_llb(plan).definition) if op.source.identifier == "local://context")
    assert json.loads(source.source.attrs["local.excludepatterns"]) == [".git", "node_modules", "*.log"]
