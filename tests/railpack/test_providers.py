"""Each fixture app is detected by the right provider and gets Railpack's install/build/start commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from starforge_dag.railpack import generate_plan
from starforge_dag.railpack.plan import CopyCommand

CADDY = "caddy run --config /Caddyfile --adapter caddyfile 2>&1"

# fixture, provider, install commands (exec only), build commands, start command, resolved versions
CASES = [
    ("go-mod", "golang", ["go mod download"], ['go build -ldflags="-w -s" -o out'], "./out", {"go": "1.22.3"}),
    (
        "go-cmd",
        "golang",
        ["go mod download"],
        ['go build -ldflags="-w -s" -o out ./cmd/server'],
        "./out",
        {"go": "1.21"},
    ),
    (
        "go-workspace",
        "golang",
        ["go mod download"],
        ['go build -ldflags="-w -s" -o out ./api'],
        "./out",
        {"go": "1.22"},
    ),
    (
        "ruby-rails",
        "ruby",
        ["bundle install"],
        ["bundle exec rake assets:precompile"],
        "bundle exec rails db:prepare && bundle exec rails server -b 0.0.0.0 -p ${PORT:-3000}",
        {"ruby": "3.3.4"},
    ),
    (
        "ruby-rack",
        "ruby",
        ["bundle install"],
        [],
        "bundle exec rackup config.ru -o 0.0.0.0 -p ${PORT:-3000}",
        {"ruby": "3.2.2"},
    ),
    ("php-vanilla", "php", [], [], "/start-container.sh", {"php": "8.4"}),
    (
        "rust-cargo",
        "rust",
        [],
        ["mkdir -p bin", "cargo build --release --bin hello-api", "cp target/release/hello-api bin/hello-api"],
        "./bin/hello-api",
        {"rust": "1.80"},
    ),
    (
        "rust-bins",
        "rust",
        [],
        ["mkdir -p bin", "cargo build --release --bin server", "cp target/release/server bin/server"],
        "./bin/server",
        {"rust": "1.89"},
    ),
    (
        "rust-workspace",
        "rust",
        [],
        ["mkdir -p bin", "cargo build --release --package web --bin web", "cp target/release/web bin/web"],
        "./bin/web",
        {},
    ),
    (
        "java-maven",
        "java",
        [],
        [
            "chmod +x mvnw",
            "./mvnw -DoutputFile=target/mvn-dependency-list.log -B -DskipTests clean dependency:list install",
        ],
        "java $JAVA_OPTS -Dserver.port=$PORT -jar target/*jar",
        {"java": "21"},
    ),
    (
        "java-gradle",
        "java",
        [],
        ["chmod +x gradlew", "./gradlew clean build -x check -x test -Pproduction"],
        "java $JAVA_OPTS -jar $(ls -1 build/libs/*jar | grep -v plain)",
        {"java": "21"},
    ),
    (
        "java-gradle-old",
        "java",
        [],
        ["chmod +x gradlew", "./gradlew clean build -x check -x test -Pproduction"],
        "java $JAVA_OPTS -jar $(ls -1 build/libs/*jar | grep -v plain)",
        {"java": "8"},
    ),
    (
        "elixir-phoenix",
        "elixir",
        ["mix local.hex --force", "mix local.rebar --force", "mix deps.get --only prod"],
        ["mix deps.compile", "mix assets.setup", "mix compile", "mix assets.deploy", "mix release"],
        "/app/_build/prod/rel/shop/bin/shop start",
        {"elixir": "1.15", "erlang": "27.3"},
    ),
    ("deno", "deno", [], ["deno cache main.ts"], "deno run --allow-all main.ts", {"deno": "2"}),
    ("deno-other-entry", "deno", [], ["deno cache server.ts"], "deno run --allow-all server.ts", {}),
    (
        "dotnet",
        "dotnet",
        ["dotnet restore"],
        ["dotnet publish --no-restore -c Release -o out"],
        "ASPNETCORE_URLS=http://0.0.0.0:${PORT:-3000} ./out/Api",
        {"dotnet": "8.0"},
    ),
    (
        "gleam",
        "gleam",
        [],
        ["gleam export erlang-shipment"],
        "./build/erlang-shipment/entrypoint.sh run",
        {"gleam": "latest", "erlang": "latest"},
    ),
    (
        "cpp-cmake",
        "cpp",
        [],
        ["cmake -B /build -G Ninja /app", "cmake --build /build"],
        "/build/cpp-cmake",
        {"cmake": "latest", "ninja": "latest"},
    ),
    (
        "cpp-meson",
        "cpp",
        [],
        ["meson setup /build", "meson compile -C /build"],
        "/build/cpp-meson",
        {"meson": "latest"},
    ),
]


def _exec(plan, step: str) -> list[str]:
    found = plan.step(step)
    return found.exec_commands() if found else []


@pytest.mark.parametrize(
    ("name", "provider", "install", "build", "start", "versions"), CASES, ids=[c[0] for c in CASES]
)
def test_fixture_app_plan(fixture_app: Callable[[str], Path], name, provider, install, build, start, versions) -> None:
    result = generate_plan(fixture_app(name))
    assert result.info["detectedProviders"] == [provider]
    assert _exec(result.plan, "install") == install
    assert _exec(result.plan, "build") == build
    assert result.plan.deploy.start_command == start
    for package, version in versions.items():
        assert result.info["resolvedPackages"][package]["requestedVersion"] == version
    assert result.info["warnings"] == []


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


def test_laravel_migrations_can_be_skipped(fixture_app) -> None:
    plan = generate_plan(fixture_app("php-laravel"), env={"RAILPACK_SKIP_MIGRATIONS": "true"}).plan
    assert "migrate" not in plan.step("build").assets["start-container.sh"]


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
    assert generate_plan(fixture_app("gleam")).plan.deploy.inputs[-1].include == ["build/erlang-shipment"]
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


def test_go_runtime_image_gets_timezone_data(fixture_app) -> None:
    plan = generate_plan(fixture_app("go-mod")).plan
    assert plan.deploy.base.step == "packages:apt:runtime"
    assert "tzdata" in plan.step("packages:apt:runtime").exec_commands()[0]
