"""Each fixture app is detected by the right provider and gets Railpack's install/build/start commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from starforge_dag.railpack import generate_plan
from starforge_dag.railpack.plan import CopyCommand

CADDY = "caddy run --config /Caddyfile --adapter caddyfile 2>&1"

# fixture app, detected provider, {tool: (requested version, the source that decided it)}; commands are in the
# whole plans under tests/fixtures/railpack/plans.
VERSIONS = [
    ("go-mod", "golang", {"go": ("1.22.3", "go.mod")}),
    ("go-main-only", "golang", {"go": ("1.25", "railpack default")}),
    ("ruby-rails", "ruby", {"ruby": ("3.3.4", "idiomatic-version-file")}),
    ("ruby-rails-node", "ruby", {"ruby": ("3.4", "railpack default"), "node": ("lts", "railpack default")}),
    ("ruby-rack", "ruby", {"ruby": ("3.1.4", "idiomatic-version-file")}),
    ("rust-cargo", "rust", {"rust": ("1.80", "Cargo.toml")}),
    ("rust-wasi", "rust", {"rust": ("1.55.0", "Cargo.toml")}),
    ("rust-src-bin", "rust", {"rust": ("1.86.0", "idiomatic-version-file")}),
    ("java-gradle", "java", {"java": ("21", "railpack default"), "gradle": ("8", "gradle-wrapper.properties")}),
    ("java-gradle-old", "java", {"java": ("8", "Gradle <= 5"), "gradle": ("5", "gradle-wrapper.properties")}),
    ("java-maven", "java", {"java": ("21", "railpack default"), "maven": ("latest", "railpack default")}),
    ("php-laravel", "php", {"php": ("8.3", "composer.json > require > php"), "node": ("lts", "railpack default")}),
    ("php-vanilla", "php", {"php": ("8.4", "railpack default")}),
    ("elixir-phoenix", "elixir", {"elixir": ("1.15", "mix.exs"), "erlang": ("26", "default compatible OTP version")}),
    ("elixir-plain", "elixir", {"elixir": ("1.17", "mix.exs"), "erlang": ("27.2", ".erlang-version")}),
    ("dotnet", "dotnet", {"dotnet": ("8.0", "csproj")}),
    ("dotnet-global-json", "dotnet", {"dotnet": ("9.0.100", "idiomatic-version-file")}),
    ("deno", "deno", {"deno": ("2", "railpack default")}),
    ("gleam", "gleam", {"gleam": ("latest", "railpack default"), "erlang": ("latest", "railpack default")}),
    ("cpp-meson", "cpp", {"meson": ("latest", "railpack default"), "python": ("latest", "railpack default")}),
]


def _exec(plan, step: str) -> list[str]:
    found = plan.step(step)
    return found.exec_commands() if found else []


@pytest.mark.parametrize(("name", "provider", "versions"), VERSIONS, ids=[c[0] for c in VERSIONS])
def test_fixture_app_provider_and_versions(fixture_app: Callable[[str], Path], name, provider, versions) -> None:
    result = generate_plan(fixture_app(name))
    assert result.info["detectedProviders"] == [provider]
    resolved = result.info["resolvedPackages"]
    assert {tool: (resolved[tool]["requestedVersion"], resolved[tool]["source"]) for tool in versions} == versions


def test_version_variables_win_over_manifests(fixture_app) -> None:
    env = {
        "RAILPACK_GO_VERSION": "1.20",
        "RAILPACK_RUST_VERSION": "1.75",
        "RAILPACK_ELIXIR_VERSION": "1.16",
        "RAILPACK_JDK_VERSION": "17",
        "RAILPACK_DOTNET_VERSION": "7.0",
    }
    for app, tool, version, variable in (
        ("go-mod", "go", "1.20", "RAILPACK_GO_VERSION"),
        ("rust-wasi", "rust", "1.75", "RAILPACK_RUST_VERSION"),
        ("elixir-plain", "elixir", "1.16", "RAILPACK_ELIXIR_VERSION"),
        ("java-maven", "java", "17", "RAILPACK_JDK_VERSION"),
        ("dotnet", "dotnet", "7.0", "RAILPACK_DOTNET_VERSION"),
    ):
        resolved = generate_plan(fixture_app(app), env=env).info["resolvedPackages"][tool]
        assert (resolved["requestedVersion"], resolved["source"]) == (version, variable)


def test_a_pinned_elixir_picks_its_compatible_otp(fixture_app) -> None:
    resolved = generate_plan(fixture_app("elixir-phoenix"), env={"RAILPACK_ELIXIR_VERSION": "1.19"}).info
    assert resolved["resolvedPackages"]["erlang"]["requestedVersion"] == "28"


def test_rust_picks_the_binary_named_by_rust_bin(fixture_app) -> None:
    plan = generate_plan(fixture_app("rust-src-bin"), env={"RAILPACK_RUST_BIN": "migrate"}).plan
    assert plan.deploy.start_command == "./bin/migrate"


def test_cargo_workspace_variable_picks_the_package(fixture_app) -> None:
    plan = generate_plan(fixture_app("rust-workspace"), env={"RAILPACK_CARGO_WORKSPACE": "lib-a"}).plan
    assert _exec(plan, "build")[1:] == ["cargo build --release --package lib-a", "cp target/release/lib-a bin"]
    assert plan.deploy.start_command == "./bin/lib-a"


def test_ruby_3_2_and_later_get_rust_for_yjit(make_app) -> None:
    old = generate_plan(make_app({"Gemfile": "", ".ruby-version": "3.1.6\n", "Rakefile": ""}))
    assert "rustc" not in old.plan.step("packages:apt:build").exec_commands()[0]
    new = generate_plan(make_app({"Gemfile": "", "Rakefile": ""}), env={"RAILPACK_RUBY_VERSION": "3.2.4"})
    assert "cargo" in new.plan.step("packages:apt:build").exec_commands()[0]


def test_php_extensions_follow_the_environment(fixture_app) -> None:
    env = {"RAILPACK_PHP_EXTENSIONS": "intl,bcmath", "DB_CONNECTION": "pgsql"}
    plan = generate_plan(fixture_app("php-vanilla"), env=env).plan
    assert _exec(plan, "extensions") == []  # no composer.json: nothing is installed
    plan = generate_plan(fixture_app("php-composer"), env=env).plan
    assert _exec(plan, "extensions") == ["install-php-extensions gd intl bcmath pdo_pgsql redis"]


def test_php_root_dir_reaches_the_caddyfile(fixture_app) -> None:
    plan = generate_plan(fixture_app("php-laravel"), env={"RAILPACK_PHP_ROOT_DIR": "/app/web"}).plan
    assert "root * /app/web" in plan.step("prepare").assets["Caddyfile"]
    own = generate_plan(fixture_app("php-composer")).plan.step("prepare").assets["Caddyfile"]
    assert own == ":{$PORT} {\n  root * /app\n  php_server\n}\n"


def test_pnpm_workspace_yaml_lists_packages(fixture_app) -> None:
    result = generate_plan(fixture_app("node-pnpm-workspaces"))
    copied = [c.src for c in result.plan.step("install").commands if isinstance(c, CopyCommand)]
    assert "pnpm-workspace.yaml" in copied
    assert {"apps/api/package.json", "libs/core/package.json"} <= set(copied)


def test_install_scripts_need_the_whole_source(make_app) -> None:
    root = make_app({"package.json": '{"scripts": {"postinstall": "node scripts/patch.js", "start": "node index.js"}}'})
    install = generate_plan(root).plan.step("install")
    assert not any(isinstance(c, CopyCommand) for c in install.commands)
    assert install.inputs[-1].local and install.inputs[-1].include == ["."]


def test_bun_installs_node_only_when_scripts_need_it(fixture_app) -> None:
    assert "node" not in generate_plan(fixture_app("node-bun")).info["resolvedPackages"]
    assert "node" in generate_plan(fixture_app("node-bun-needs-node")).info["resolvedPackages"]


def test_next_caches_build_cache(fixture_app) -> None:
    plan = generate_plan(fixture_app("node-next")).plan
    assert plan.caches["next"].directory == "/app/.next/cache"
    assert "next" in plan.step("build").caches


def test_python_system_libraries_for_psycopg2(fixture_app) -> None:
    plan = generate_plan(fixture_app("python-django")).plan
    assert "libpq-dev" in plan.step("packages:apt:build").exec_commands()[0]
    assert plan.deploy.base.step == "packages:apt:runtime"
    assert "libpq5" in plan.step("packages:apt:runtime").exec_commands()[0]


def test_python_uv_uses_its_cache(fixture_app) -> None:
    plan = generate_plan(fixture_app("python-uv")).plan
    assert plan.caches["uv"].directory == "/opt/uv-cache"
    assert plan.step("install").variables["UV_CACHE_DIR"] == "/opt/uv-cache"


def test_procfile_web_process_wins_over_provider_default(fixture_app) -> None:
    assert generate_plan(fixture_app("procfile-python")).plan.deploy.start_command == "python web.py"


def test_procfile_without_web_uses_worker(make_app) -> None:
    root = make_app({"main.py": "", "Procfile": "release: ./migrate\nworker: python worker.py\n"})
    assert generate_plan(root).plan.deploy.start_command == "python worker.py"


def test_laravel_migrations_can_be_skipped_at_start(fixture_app) -> None:
    script = generate_plan(fixture_app("php-laravel")).plan.step("prepare").assets["start-container.sh"]
    assert 'if [ "$RAILPACK_SKIP_MIGRATIONS" != "true" ]' in script
    assert "php artisan migrate --force" in script


def test_go_builds_a_static_binary_and_keeps_go_out_of_the_image(fixture_app) -> None:
    plan = generate_plan(fixture_app("go-mod")).plan
    assert plan.step("install").variables["CGO_ENABLED"] == "0"
    assert all(layer.step != "packages:mise" for layer in plan.deploy.inputs)


def test_go_bin_and_workspace_module_select_the_target(fixture_app) -> None:
    assert _exec(generate_plan(fixture_app("go-cmd"), env={"RAILPACK_GO_BIN": "worker"}).plan, "build") == [
        'go build -ldflags="-w -s" -o out ./cmd/worker'
    ]
    ws = generate_plan(fixture_app("go-workspace"), env={"RAILPACK_GO_WORKSPACE_MODULE": "shared"}).plan
    assert _exec(ws, "build") == ['go build -ldflags="-w -s" -o out ./shared']


def test_cgo_adds_compilers(fixture_app) -> None:
    plan = generate_plan(fixture_app("go-mod"), env={"CGO_ENABLED": "1"}).plan
    assert "gcc" in plan.step("packages:apt:build").exec_commands()[0]


def test_shell_script_from_env_and_zsh(make_app) -> None:
    root = make_app({"run.sh": "#!/usr/bin/env zsh\necho hi\n"})
    plan = generate_plan(root, env={"RAILPACK_SHELL_SCRIPT": "run.sh"}).plan
    assert plan.deploy.start_command == "zsh run.sh"
    assert "zsh" in plan.step("packages:apt:runtime").exec_commands()[0]


def test_gleam_ships_only_the_erlang_shipment_unless_asked(fixture_app) -> None:
    assert generate_plan(fixture_app("gleam")).plan.deploy.inputs[-1].include == ["build/erlang-shipment/."]
    plan = generate_plan(fixture_app("gleam"), env={"RAILPACK_GLEAM_INCLUDE_SOURCE": "1"}).plan
    assert plan.deploy.inputs[-1].include == ["."]


def test_php_wins_over_node_when_both_manifests_exist(fixture_app) -> None:
    assert generate_plan(fixture_app("php-laravel")).info["detectedProviders"] == ["php"]


def test_missing_start_command_is_a_warning(make_app) -> None:
    result = generate_plan(make_app({"package.json": "{}"}))
    assert result.plan.deploy.start_command is None
    assert "start" in result.info["warnings"][0]


def test_python_image_gets_the_venv_then_the_app_without_a_local_venv(fixture_app) -> None:
    inputs = generate_plan(fixture_app("python-pip")).plan.deploy.inputs
    assert [(i.step, i.include, i.exclude) for i in inputs[-2:]] == [
        ("build", ["/app/.venv"], None),
        ("build", ["."], [".venv"]),
    ]


def test_go_cgo_runtime_gets_libc(fixture_app) -> None:
    plan = generate_plan(fixture_app("go-mod"), env={"CGO_ENABLED": "1"}).plan
    assert plan.deploy.base.step == "packages:apt:runtime"
    assert "libc6" in plan.step("packages:apt:runtime").exec_commands()[0]
    assert "CGO_ENABLED" not in plan.step("install").variables


def test_go_version_file_wins_over_the_variable_as_in_railpack(make_app) -> None:
    root = make_app({"go.mod": "module m\n\ngo 1.22\n", "main.go": "package main\n", ".go-version": "1.23.4\n"})
    resolved = generate_plan(root, env={"RAILPACK_GO_VERSION": "1.21"}).info["resolvedPackages"]["go"]
    assert (resolved["requestedVersion"], resolved["source"]) == ("1.23.4", "idiomatic-version-file")
