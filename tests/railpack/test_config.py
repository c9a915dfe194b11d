"""railpack.json and RAILPACK_* variables change the plan the way Railpack's docs say."""

from __future__ import annotations

import json

import pytest

from starforge_dag.railpack import PlanError, generate_plan
from starforge_dag.railpack.config import strip_jsonc
from starforge_dag.railpack.plan import BuildPlan, CopyCommand, ExecCommand


def _write_config(root, config: dict | str) -> None:
    (root / "railpack.json").write_text(config if isinstance(config, str) else json.dumps(config))


def test_build_and_start_commands_from_railpack_json(fixture_app) -> None:
    root = fixture_app("node-npm")
    _write_config(
        root,
        {"steps": {"build": {"commands": ["...", "./post-build.sh"]}}, "deploy": {"startCommand": "node dist/main.js"}},
    )
    result = generate_plan(root)
    assert result.plan.step("build").exec_commands() == ["npm run build", "sh -c './post-build.sh'"]
    assert result.plan.deploy.start_command == "node dist/main.js"
    assert result.info["configFile"] == "railpack.json"


def test_commands_without_spread_replace_generated_ones(fixture_app) -> None:
    root = fixture_app("node-npm")
    _write_config(root, {"steps": {"install": {"commands": ["npm install --legacy-peer-deps"]}}})
    install = generate_plan(root).plan.step("install")
    assert install.exec_commands() == ["sh -c 'npm install --legacy-peer-deps'"]
    assert [layer.step for layer in install.inputs] == ["packages:mise"]


def test_railpack_json_wins_over_env_field_by_field(fixture_app) -> None:
    root = fixture_app("python-pip")
    _write_config(
        root, {"deploy": {"startCommand": "python other.py"}, "steps": {"build": {"commands": ["echo file"]}}}
    )
    env = {
        "RAILPACK_START_CMD": "python env.py",
        "RAILPACK_BUILD_CMD": "echo env",
        "RAILPACK_INSTALL_CMD": "pip install .",
    }
    plan = generate_plan(root, env=env).plan
    assert plan.deploy.start_command == "python other.py"
    assert plan.step("build").commands == [ExecCommand(cmd="sh -c 'echo file'", custom_name="echo file")]
    assert plan.step("install").commands == [
        CopyCommand(src=".", dest="."),
        ExecCommand(cmd="sh -c 'pip install .'", custom_name="pip install ."),
    ]


def test_config_comments_and_trailing_commas(fixture_app) -> None:
    root = fixture_app("python-pip")
    _write_config(root, '{\n  // start it\n  "deploy": {"startCommand": "python -m app", /* inline */},\n}\n')
    assert generate_plan(root).plan.deploy.start_command == "python -m app"


def test_strip_jsonc_keeps_comment_markers_inside_strings() -> None:
    assert json.loads(strip_jsonc('{"url": "http://x/*y*/", "a": [1, 2,],}')) == {"url": "http://x/*y*/", "a": [1, 2]}


def test_packages_and_apt_packages(fixture_app) -> None:
    root = fixture_app("node-npm")
    _write_config(
        root, {"packages": {"python": "3.12"}, "buildAptPackages": ["git"], "deploy": {"aptPackages": ["ffmpeg"]}}
    )
    result = generate_plan(
        root, env={"RAILPACK_PACKAGES": "jq@1.7 ripgrep", "RAILPACK_DEPLOY_APT_PACKAGES": "... curl"}
    )
    plan = result.plan
    mise = plan.step("packages:mise").assets["generated-mise-toml"]
    assert 'python = "3.12"' in mise and 'jq = "1.7"' in mise and 'ripgrep = "latest"' in mise
    assert result.info["resolvedPackages"]["python"]["source"] == "custom config"
    assert "git" in plan.step("packages:apt:build").exec_commands()[0]
    runtime_apt = plan.step("packages:apt:runtime").exec_commands()[0]
    assert runtime_apt == "sh -c 'apt-get update && apt-get install -y ffmpeg'", "railpack.json's list wins"
    assert plan.step("packages:mise").inputs[0].step == "packages:apt:build"


def test_apt_lists_replace_generated_packages_unless_extended(fixture_app) -> None:
    root = fixture_app("python-django")
    replaced = (
        generate_plan(root, env={"RAILPACK_DEPLOY_APT_PACKAGES": "ffmpeg"})
        .plan.step("packages:apt:runtime")
        .exec_commands()[0]
    )
    assert "ffmpeg" in replaced and "libpq5" not in replaced
    extended = (
        generate_plan(root, env={"RAILPACK_DEPLOY_APT_PACKAGES": "... ffmpeg"})
        .plan.step("packages:apt:runtime")
        .exec_commands()[0]
    )
    assert "ffmpeg" in extended and "libpq5" in extended


def test_build_that_removes_node_modules_drops_the_node_modules_cache(fixture_app) -> None:
    plan = generate_plan(
        fixture_app("node-npm"), env={"RAILPACK_BUILD_CMD": "rm -rf node_modules && npm ci && npm run build"}
    ).plan
    assert "node-modules" not in plan.step("build").caches
    assert plan.step("install").caches == ["npm-install"]


def test_custom_step_caches_secrets_and_deploy_outputs(fixture_app) -> None:
    root = fixture_app("node-npm")
    _write_config(
        root,
        {
            "caches": {"playwright": {"directory": "/root/.cache/ms-playwright", "type": "locked"}},
            "secrets": ["SENTRY_AUTH_TOKEN"],
            "steps": {
                "docs": {
                    "inputs": [{"step": "build"}],
                    "commands": ["npm run docs"],
                    "caches": ["playwright"],
                    "secrets": ["DOCS_TOKEN"],
                    "deployOutputs": ["docs-site"],
                },
            },
            "deploy": {
                "variables": {"LANG": "en_US.UTF-8"},
                "paths": ["/app/bin"],
                "inputs": ["...", {"image": "example/tool", "include": ["/usr/bin/tool"]}],
            },
        },
    )
    plan = generate_plan(root).plan
    docs = plan.step("docs")
    assert docs.inputs[0].step == "build"
    assert plan.caches["playwright"].type == "locked"
    assert plan.secrets == ["SENTRY_AUTH_TOKEN"]
    assert docs.secrets == ["DOCS_TOKEN"]
    assert {"step": "docs", "include": ["docs-site"]} in [
        i.model_dump(by_alias=True, exclude_defaults=True) for i in plan.deploy.inputs
    ]
    assert plan.deploy.inputs[-2].image == "example/tool"
    assert plan.deploy.inputs[-1].step == "docs"
    assert plan.deploy.variables["LANG"] == "en_US.UTF-8"
    assert "/app/bin" in plan.deploy.paths


def test_new_step_defaults_to_mise_packages_and_ships_its_app_dir(fixture_app) -> None:
    root = fixture_app("node-npm")
    _write_config(
        root,
        {
            "steps": {
                "hello": {"commands": ["echo hi > greeting"]},
                "scratch": {"commands": ["echo tmp"], "deployOutputs": []},
            }
        },
    )
    plan = generate_plan(root).plan
    assert [i.step for i in plan.step("hello").inputs] == ["packages:mise"]
    assert plan.deploy.inputs[-1].step == "hello" and plan.deploy.inputs[-1].include == ["."]
    assert plan.step("scratch") is None, "a step nothing ships is dropped"


def test_build_env_names_become_secrets_but_values_never_enter_the_plan(fixture_app) -> None:
    result = generate_plan(
        fixture_app("node-npm"), env={"STRIPE_KEY": "sk_live_supersecret", "RAILPACK_NODE_VERSION": "20"}
    )
    assert result.plan.secrets == ["STRIPE_KEY"]
    assert "sk_live_supersecret" not in result.plan.to_json()


def test_disable_caches(fixture_app) -> None:
    plan = generate_plan(fixture_app("node-next"), env={"RAILPACK_DISABLE_CACHES": "next"}).plan
    assert "next" not in plan.caches and "next" not in plan.step("build").caches
    assert "npm-install" in plan.caches
    everything = generate_plan(fixture_app("node-next"), env={"RAILPACK_DISABLE_CACHES": "*"}).plan
    assert everything.caches == {} and all(not s.caches for s in everything.steps)


def test_forced_provider(fixture_app) -> None:
    root = fixture_app("php-laravel")
    _write_config(root, {"provider": "Node"})
    result = generate_plan(root)
    assert result.info["detectedProviders"] == ["php"], "detection still reports what the app looks like"
    assert result.plan.step("install").exec_commands()[-1] == "npm install"


def test_unknown_provider_is_an_error(fixture_app) -> None:
    root = fixture_app("node-npm")
    _write_config(root, {"provider": "cobol"})
    with pytest.raises(PlanError, match="cobol.*golang"):
        generate_plan(root)


def test_config_file_env_names_another_file(fixture_app) -> None:
    root = fixture_app("python-pip")
    (root / "deploy").mkdir()
    (root / "deploy/railpack.prod.json").write_text('{"deploy": {"startCommand": "python prod.py"}}')
    plan = generate_plan(root, env={"RAILPACK_CONFIG_FILE": "deploy/railpack.prod.json"}).plan
    assert plan.deploy.start_command == "python prod.py"
    with pytest.raises(PlanError, match="missing.json was not found"):
        generate_plan(root, config_file="missing.json")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("{not json", "railpack.json is not valid JSON"),
        ('{"steps": {"build": {"caches": ["nope"]}}}', "cache 'nope'"),
        ('{"steps": {"build": {"inputs": [{"step": "ghost"}]}}}', "step 'ghost'"),
        ('{"steps": {"build": {"inputs": [{"step": "install", "include": ["x"]}]}}}', "first input"),
        ('{"deploy": {"inputs": ["bogus"]}}', "railpack.json is invalid"),
    ],
)
def test_broken_config_is_reported(fixture_app, config: str, message: str) -> None:
    root = fixture_app("node-npm")
    _write_config(root, config)
    with pytest.raises(PlanError, match=message):
        generate_plan(root)


def test_config_alone_can_build_an_unrecognised_app(make_app) -> None:
    root = make_app(
        {
            "server.bin": "",
            "railpack.json": json.dumps(
                {"steps": {"build": {"commands": ["chmod +x server.bin"]}}, "deploy": {"startCommand": "./server.bin"}}
            ),
        }
    )
    result = generate_plan(root)
    assert result.info["detectedProviders"] == []
    assert result.plan.step("build").exec_commands() == ["sh -c 'chmod +x server.bin'"]
    assert [layer.step for layer in result.plan.step("build").inputs] == ["packages:mise"]
    assert result.plan.deploy.start_command == "./server.bin"


def test_start_command_alone_is_not_a_build(make_app) -> None:
    with pytest.raises(PlanError, match="could not determine how to build"):
        generate_plan(make_app({"binary": ""}), env={"RAILPACK_START_CMD": "./binary"})


def test_images_are_configurable(fixture_app) -> None:
    plan = generate_plan(
        fixture_app("shell-bash"),
        env={"RAILPACK_BUILDER_IMAGE": "local/builder:1", "RAILPACK_RUNTIME_IMAGE": "local/runtime:1"},
    ).plan
    assert plan.step("packages:mise").inputs[0].image == "local/builder:1"
    assert plan.deploy.base.image == "local/runtime:1"


def test_plan_json_round_trips_with_railpack_field_names(fixture_app) -> None:
    plan = generate_plan(fixture_app("python-django"), env={"TOKEN": "x"}).plan
    data = json.loads(plan.to_json())
    assert set(data) == {"steps", "caches", "secrets", "deploy"}
    assert "startCommand" in data["deploy"] and "customName" in data["steps"][0]["commands"][0]
    assert BuildPlan.model_validate(data) == plan
