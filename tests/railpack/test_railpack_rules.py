"""Decisions Railpack's providers make that users notice, one test per rule."""

from __future__ import annotations

import json

from starforge_dag.railpack import generate_plan
from starforge_dag.railpack.plan import CopyCommand, ExecCommand, PathCommand
from starforge_dag.railpack.resolver import fuzzy_version


def test_npm_always_installs_with_npm_install_unless_overridden(fixture_app) -> None:
    root = fixture_app("node-npm")
    assert generate_plan(root).plan.step("install").exec_commands()[-1] == "npm install"
    custom = generate_plan(root, env={"RAILPACK_NODE_NPM_INSTALL": "npm ci"}).plan
    assert custom.step("install").exec_commands()[-1] == "npm ci"


def test_pnpm_without_corepack_puts_pnpm_home_on_path_before_node_gyp(fixture_app) -> None:
    commands = generate_plan(fixture_app("node-pnpm")).plan.step("install").commands
    gyp = commands.index(ExecCommand(cmd="pnpm add -g node-gyp"))
    assert commands[gyp - 1] == PathCommand(path="/opt/pnpm")
    assert commands[-1] == ExecCommand(cmd="pnpm install --frozen-lockfile --prefer-offline")


def test_corepack_is_one_shell_command_before_the_cache_dir(fixture_app) -> None:
    install = generate_plan(fixture_app("node-corepack")).plan.step("install")
    corepack = "npm i -g corepack@latest && corepack enable && corepack prepare --activate"
    assert install.commands[1:4] == [
        CopyCommand(src="package.json", dest="package.json"),
        ExecCommand(cmd=f"sh -c '{corepack}'", custom_name=corepack),
        ExecCommand(cmd="mkdir -p /app/node_modules/.cache"),
    ]
    assert "pnpm add -g node-gyp" not in install.exec_commands(), "corepack's pnpm brings node-gyp"
    assert install.variables["COREPACK_HOME"] == "/opt/corepack"


def test_bun_installs_from_the_frozen_lockfile(fixture_app) -> None:
    assert generate_plan(fixture_app("node-bun")).plan.step("install").exec_commands()[-1] == (
        "bun install --frozen-lockfile"
    )


def test_package_json5_is_a_node_manifest(fixture_app) -> None:
    result = generate_plan(fixture_app("node-package-json5"))
    assert result.info["detectedProviders"] == ["node"]
    assert result.plan.deploy.start_command == "pnpm run start"
    assert result.info["resolvedPackages"]["pnpm"]["source"] == "pnpm-lock.yaml"


def test_nx_next_app_builds_with_nx_and_starts_from_its_directory(fixture_app) -> None:
    plan = generate_plan(fixture_app("node-nx-next")).plan
    assert plan.step("build").exec_commands() == ["nx build @acme/site"]
    assert plan.deploy.start_command == "cd apps/site && next start"
    assert plan.caches["next-apps-site"].directory == "/app/apps/site/.next/cache"


def test_sveltekit_with_adapter_auto_is_built_for_node(fixture_app) -> None:
    plan = generate_plan(fixture_app("node-sveltekit-auto")).plan
    assert plan.step("build").variables["GCP_BUILDPACKS"] == "true"
    assert plan.deploy.start_command == "node build"


def test_tanstack_start_without_a_start_script_serves_with_srvx(fixture_app) -> None:
    plan = generate_plan(fixture_app("node-tanstack-start")).plan
    assert plan.deploy.start_command == "npx srvx --prod -s ../client dist/server/server.js"


def test_spa_is_served_by_caddy_from_its_own_steps(fixture_app) -> None:
    plan = generate_plan(fixture_app("node-vite-svelte-outdir")).plan
    assert plan.step("caddy").exec_commands() == ["caddy fmt --overwrite /Caddyfile"]
    assert "root * /app/public/build" in plan.step("caddy").assets["Caddyfile"]
    assert [(i.step, i.include) for i in plan.deploy.inputs] == [
        ("packages:caddy", ["/railpack/caddy"]),
        ("caddy", ["/Caddyfile"]),
        ("build", ["public/build"]),
    ]
    assert (
        generate_plan(fixture_app("node-vite-svelte-outdir"), env={"RAILPACK_NO_SPA": "1"}).plan.step("caddy") is None
    )


def test_node_version_precedence_mise_files_then_env_then_engines(fixture_app) -> None:
    root = fixture_app("node-yarn1-engines")
    info = generate_plan(root, env={"RAILPACK_NODE_VERSION": "18"}).info
    assert info["resolvedPackages"]["node"]["source"] == ".tool-versions"
    (root / ".tool-versions").unlink()
    info = generate_plan(root, env={"RAILPACK_NODE_VERSION": "18"}).info
    assert info["resolvedPackages"]["node"]["source"] == "RAILPACK_NODE_VERSION"
    info = generate_plan(root).info
    assert info["resolvedPackages"]["node"] == {
        "name": "node",
        "requestedVersion": "^20.11",
        "resolvedVersion": "20",
        "source": "package.json > engines > node",
    }


def test_python_env_version_wins_over_version_files(fixture_app) -> None:
    root = fixture_app("python-pip")
    assert generate_plan(root).info["resolvedPackages"]["python"]["source"] == "idiomatic-version-file"
    info = generate_plan(root, env={"RAILPACK_PYTHON_VERSION": "3.11"}).info
    assert info["resolvedPackages"]["python"]["requestedVersion"] == "3.11"


def test_django_binds_to_port(fixture_app) -> None:
    plan = generate_plan(fixture_app("python-django")).plan
    assert plan.deploy.start_command == (
        "python manage.py migrate && gunicorn --bind 0.0.0.0:${PORT:-8000} mysite.wsgi:application"
    )


def test_only_pip_creates_a_venv_itself(fixture_app) -> None:
    for name, creates in (("python-pip", True), ("python-uv", False), ("python-poetry", False), ("python-pdm", False)):
        commands = generate_plan(fixture_app(name)).plan.step("install").exec_commands()
        assert ("python -m venv /app/.venv" in commands) is creates, name


def test_staticfile_writes_and_formats_the_caddyfile_in_the_app(fixture_app) -> None:
    plan = generate_plan(fixture_app("staticfile")).plan
    assert plan.step("build").exec_commands() == ["caddy fmt --overwrite Caddyfile"]
    assert "try_files {path} {path}.html {path}/index.html /index.html" in plan.step("build").assets["Caddyfile"]
    assert plan.deploy.start_command == "caddy run --config Caddyfile --adapter caddyfile 2>&1"


def test_procfile_sets_the_start_command_of_any_provider(fixture_app) -> None:
    assert generate_plan(fixture_app("procfile-python")).plan.deploy.start_command == "python web.py"


def test_fuzzy_versions() -> None:
    cases = {
        ">=20 <23": "20",
        ">= 18": "18",
        "^3.11": "3",
        "v1.2.3": "1.2.3",
        "14.x": "14",
        "*": "latest",
        "~1.4": "1.4",
    }
    assert {k: fuzzy_version(k) for k in cases} == cases


def test_a_resolver_plugs_in_without_touching_providers(fixture_app) -> None:
    class PinnedResolver:
        def resolve(self, name: str, requested: str, is_available=None) -> str:
            return {"node": "22.11.0"}.get(name, requested)

    plan = generate_plan(fixture_app("node-npm"), resolver=PinnedResolver()).plan
    assert 'node = "22.11.0"' in plan.step("packages:mise").assets["generated-mise-toml"]
    assert json.loads(plan.to_json())["deploy"]["startCommand"] == "npm run start"
