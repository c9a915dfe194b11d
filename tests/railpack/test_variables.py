"""The app's variables in a plan: RAILPACK_* options over the platform's, names as plan secrets, values never written."""

from __future__ import annotations

import json

import pytest

from starforge_dag.buildkit.pb import ops_pb2 as pb
from starforge_dag.railpack import PlanError, generate_plan
from starforge_dag.railpack.llb import SECRETS_HASH_VARIABLE, plan_to_llb, secrets_hash

TOKEN = "npm_tok_3f9a1c77e2"
BUILD_CMD = 'printf %s "$NPM_TOKEN" | sha256sum > token.sha'


def _execs(definition: bytes) -> list[pb.Op]:
    parsed = pb.Definition()
    parsed.ParseFromString(definition)
    ops = [pb.Op.FromString(data) for data in getattr(parsed, "def")]
    return [op for op in ops if op.WhichOneof("op") == "exec"]


def _env(op: pb.Op) -> dict[str, str]:
    return dict(e.split("=", 1) for e in op.exec.meta.env)


def _exec_running(definition: bytes, text: str) -> pb.Op:
    return next(op for op in _execs(definition) if text in op.exec.meta.args[-1])


def test_platform_options_are_defaults_under_the_apps_own(fixture_app) -> None:
    app = fixture_app("shell-busybox")
    platform = {"RAILPACK_START_CMD": "sh platform.sh", "RAILPACK_BUILD_CMD": "echo platform", "HOSTNAME": "worker-7"}

    defaults = generate_plan(app, platform_options=platform).plan
    assert defaults.deploy.start_command == "sh platform.sh"
    assert defaults.step("build").exec_commands() == ["sh -c 'echo platform'"]

    own = generate_plan(app, env={"RAILPACK_START_CMD": "sh own.sh"}, platform_options=platform).plan
    assert own.deploy.start_command == "sh own.sh"
    assert own.step("build").exec_commands() == ["sh -c 'echo platform'"]
    assert "HOSTNAME" not in json.dumps(own.model_dump(mode="json")), "only RAILPACK_* are taken from the platform"


def test_every_variable_is_a_plan_secret_by_name_and_no_value_is_written(fixture_app) -> None:
    result = generate_plan(
        fixture_app("shell-busybox"),
        env={"NPM_TOKEN": TOKEN, "GREETING": "hello-there", "RAILPACK_BUILD_CMD": BUILD_CMD},
        secrets=["NPM_TOKEN"],
        platform_options={"RAILPACK_START_CMD": "sh start.sh"},
    )
    plan = result.plan
    assert plan.secrets == ["GREETING", "NPM_TOKEN"]
    assert plan.step("build").secrets == ["*"]
    text = plan.to_json()
    assert TOKEN not in text and "hello-there" not in text
    assert plan.step("build").exec_commands() == [f"sh -c '{BUILD_CMD}'"], "a plain RAILPACK_* option is applied"


def test_a_secret_railpack_option_is_not_applied_and_never_reaches_the_plan(fixture_app) -> None:
    app = fixture_app("shell-busybox")
    command = "curl -H 'Authorization: tok_9d8e7f' https://example.invalid"
    result = generate_plan(app, env={"RAILPACK_BUILD_CMD": command}, secrets=["RAILPACK_BUILD_CMD"])
    assert "tok_9d8e7f" not in result.plan.to_json()
    assert result.plan.step("build").exec_commands() == generate_plan(app).plan.step("build").exec_commands()
    assert any("RAILPACK_BUILD_CMD is a secret" in w for w in result.info["warnings"])


def test_a_secret_name_that_is_no_variable_name_is_refused(fixture_app) -> None:
    app = fixture_app("shell-busybox")
    (app / "railpack.json").write_text(json.dumps({"secrets": ["X; rm -rf /"]}))
    with pytest.raises(PlanError, match="not a variable name"):
        generate_plan(app)


def _planned(fixture_app, values: dict[str, str]) -> bytes:
    plan = generate_plan(
        fixture_app("shell-busybox"), env={**values, "RAILPACK_BUILD_CMD": BUILD_CMD}, secrets=["NPM_TOKEN"]
    ).plan
    return plan_to_llb(plan, secret_values=values).definition


def test_a_step_with_secrets_mounts_each_one_and_exports_it_before_its_command(fixture_app) -> None:
    values = {"NPM_TOKEN": TOKEN, "GREETING": "hello-there"}
    definition = _planned(fixture_app, values)
    assert TOKEN.encode() not in definition and b"hello-there" not in definition

    build = _exec_running(definition, "sha256sum")
    mounts = {m.secretOpt.ID: m for m in build.exec.mounts if m.mountType == pb.SECRET}
    assert sorted(mounts) == ["GREETING", "NPM_TOKEN"]
    for name, mount in mounts.items():
        assert (mount.dest, mount.secretOpt.mode, mount.secretOpt.optional) == (f"/run/secrets/{name}", 0o400, True)
    script = build.exec.meta.args[-1]
    assert script.index('export NPM_TOKEN="$(cat /run/secrets/NPM_TOKEN') < script.index("sha256sum")
    assert _env(build)[SECRETS_HASH_VARIABLE] == secrets_hash(values)


def test_the_step_hash_follows_the_values_so_a_changed_secret_re_runs_the_step(fixture_app) -> None:
    first = _planned(fixture_app, {"NPM_TOKEN": TOKEN, "GREETING": "hi"})
    same = _planned(fixture_app, {"NPM_TOKEN": TOKEN, "GREETING": "hi"})
    rotated = _planned(fixture_app, {"NPM_TOKEN": TOKEN + "-rotated", "GREETING": "hi"})
    assert first == same, "nothing changed: the same definition, so BuildKit's cache answers"
    hashes = [_env(_exec_running(d, "sha256sum"))[SECRETS_HASH_VARIABLE] for d in (first, rotated)]
    assert hashes[0] != hashes[1]


def test_a_step_naming_its_secrets_hashes_only_those(fixture_app) -> None:
    app = fixture_app("shell-busybox")
    config = {"steps": {"build": {"commands": ["echo $NPM_TOKEN"], "secrets": ["NPM_TOKEN"]}}}
    (app / "railpack.json").write_text(json.dumps(config))

    def build_env(values: dict[str, str]) -> tuple[dict[str, str], list[str]]:
        plan = generate_plan(app, env=values, secrets=list(values)).plan
        op = _exec_running(plan_to_llb(plan, secret_values=values).definition, "echo $NPM_TOKEN")
        return _env(op), [m.secretOpt.ID for m in op.exec.mounts if m.mountType == pb.SECRET]

    env, mounted = build_env({"NPM_TOKEN": TOKEN, "OTHER": "a"})
    assert mounted == ["NPM_TOKEN"] and env[SECRETS_HASH_VARIABLE] == secrets_hash({"NPM_TOKEN": TOKEN})
    assert build_env({"NPM_TOKEN": TOKEN, "OTHER": "b"})[0] == env, "another secret's change keeps this step cached"


def test_secrets_hash_depends_on_names_and_values_not_on_order() -> None:
    assert secrets_hash({"A": "1", "B": "2"}) == secrets_hash({"B": "2", "A": "1"})
    assert (
        len(
            {secrets_hash({"A": "1", "B": "2"}), secrets_hash({"A": "12", "B": ""}), secrets_hash({"A": "2", "B": "1"})}
        )
        == 3
    )
