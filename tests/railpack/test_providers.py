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
    (
        "node-npm",
        "node",
        ["mkdir -p /app/node_modules/.cache", "npm ci"],
        ["npm run build"],
        "npm run start",
        {"node": "20"},
    ),
    (
        "node-npm-no-lock",
        "node",
        ["mkdir -p /app/node_modules/.cache", "npm install"],
        [],
        "node server.js",
        {"node": "22"},
    ),
    (
        "node-index-only",
        "node",
        ["mkdir -p /app/node_modules/.cache", "npm install"],
        [],
        "node index.js",
        {"node": "18.19.0"},
    ),
    (
        "node-pnpm",
        "node",
        ["mkdir -p /app/node_modules/.cache", "pnpm install --frozen-lockfile --prefer-offline"],
        ["pnpm run build"],
        "pnpm run start",
        {"node": "20.11.1"},
    ),
    (
        "node-yarn1",
        "node",
        ["mkdir -p /app/node_modules/.cache", "yarn install --frozen-lockfile"],
        [],
        "yarn run start",
        {},
    ),
    (
        "node-yarn-berry",
        "node",
        ["mkdir -p /app/node_modules/.cache", "yarn install --check-cache"],
        [],
        "yarn run start",
        {},
    ),
    (
        "node-bun",
        "node",
        ["mkdir -p /app/node_modules/.cache", "bun install --frozen-lockfile"],
        [],
        "bun run start",
        {"bun": "1.1.30"},
    ),
    ("node-next", "node", ["mkdir -p /app/node_modules/.cache", "npm ci"], ["npm run build"], "npm run start", {}),
    (
        "node-vite-react",
        "node",
        ["mkdir -p /app/node_modules/.cache", "npm ci"],
        ["npm run build"],
        CADDY,
        {"caddy": "latest"},
    ),
    (
        "node-sveltekit",
        "node",
        ["mkdir -p /app/node_modules/.cache", "npm install"],
        ["npm run build"],
        "npm run start",
        {},
    ),
    ("node-astro-static", "node", ["mkdir -p /app/node_modules/.cache", "npm install"], ["npm run build"], CADDY, {}),
    (
        "node-astro-server",
        "node",
        ["mkdir -p /app/node_modules/.cache", "npm install"],
        ["npm run build"],
        "npm run start",
        {},
    ),
    (
        "node-remix",
        "node",
        ["mkdir -p /app/node_modules/.cache", "npm install"],
        ["npm run build"],
        "npm run start",
        {},
    ),
    (
        "node-nuxt",
        "node",
        ["mkdir -p /app/node_modules/.cache", "npm install"],
        ["npm run build"],
        "node .output/server/index.mjs",
        {},
    ),
    ("node-angular", "node", ["mkdir -p /app/node_modules/.cache", "npm install"], ["npm run build"], CADDY, {}),
    ("node-cra", "node", ["mkdir -p /app/node_modules/.cache", "npm install"], ["npm run build"], CADDY, {}),
    (
        "node-tanstack-start",
        "node",
        ["mkdir -p /app/node_modules/.cache", "npm install"],
        ["npm run build"],
        "node .output/server/index.mjs",
        {},
    ),
    (
        "node-react-router-spa",
        "node",
        ["mkdir -p /app/node_modules/.cache", "npm install"],
        ["npm run build"],
        CADDY,
        {},
    ),
    (
        "python-pip",
        "python",
        ["python -m venv /app/.venv", "pip install -r requirements.txt"],
        [],
        "python main.py",
        {"python": "3.12"},
    ),
    (
        "python-uv",
        "python",
        ["uv sync --locked --no-dev --no-install-project"],
        ["uv sync --locked --no-dev --no-editable"],
        "python app.py",
        {"python": "3.11", "uv": "latest"},
    ),
    (
        "python-poetry",
        "python",
        ["python -m venv /app/.venv", "poetry install --no-interaction --no-ansi --only main --no-root"],
        [],
        "gunicorn --bind 0.0.0.0:${PORT:-8000} app:app",
        {"python": "3.11.9"},
    ),
    (
        "python-pdm",
        "python",
        ["python -m venv /app/.venv", "pdm install --check --prod --no-editable"],
        [],
        "uvicorn main:app --host 0.0.0.0 --port ${PORT:-8000}",
        {},
    ),
    (
        "python-pipenv",
        "python",
        ["python -m venv /app/.venv", "pipenv install --deploy --ignore-pipfile"],
        [],
        "python server.py",
        {"python": "3.10"},
    ),
    (
        "python-django",
        "python",
        ["python -m venv /app/.venv", "pip install -r requirements.txt"],
        [],
        "python manage.py migrate && gunicorn mysite.wsgi:application",
        {"python": "3.13.2"},
    ),
    (
        "python-fastapi",
        "python",
        ["python -m venv /app/.venv", "pip install -r requirements.txt"],
        [],
        "uvicorn main:app --host 0.0.0.0 --port ${PORT:-8000}",
        {},
    ),
    (
        "python-flask",
        "python",
        ["python -m venv /app/.venv", "pip install -r requirements.txt"],
        [],
        "gunicorn --bind 0.0.0.0:${PORT:-8000} app:app",
        {},
    ),
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
    ("staticfile", "staticfile", [], [], CADDY, {"caddy": "latest"}),
    ("static-index", "staticfile", [], [], CADDY, {}),
    ("shell-bash", "shell", [], ["chmod +x start.sh"], "bash start.sh", {}),
    ("shell-busybox", "shell", [], ["chmod +x start.sh"], "sh start.sh", {}),
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


def test_install_step_copies_only_manifests_so_source_edits_keep_it_cached(fixture_app) -> None:
    plan = generate_plan(fixture_app("node-npm")).plan
    install = plan.step("install")
    copied = [c.src for c in install.commands if isinstance(c, CopyCommand)]
    assert copied == ["package.json", "package-lock.json"]
    assert not any(layer.local for layer in install.inputs)
    assert plan.step("build").inputs[1].local


def test_workspace_package_manifests_are_copied_before_install(fixture_app) -> None:
    result = generate_plan(fixture_app("node-npm-workspaces"))
    copied = [c.src for c in result.plan.step("install").commands if isinstance(c, CopyCommand)]
    assert {"packages/ui/package.json", "packages/utils/package.json", "apps/web/package.json"} <= set(copied)
    assert result.info["metadata"]["workspaces"] == "3"
    assert "next-apps-web" in result.plan.caches


def test_pnpm_workspace_yaml_lists_packages(fixture_app) -> None:
    result = generate_plan(fixture_app("node-pnpm-workspaces"))
    copied = [c.src for c in result.plan.step("install").commands if isinstance(c, CopyCommand)]
    assert "pnpm-workspace.yaml" in copied
    assert {"apps/api/package.json", "libs/core/package.json"} <= set(copied)


def test_corepack_package_manager_field_pins_pnpm(fixture_app) -> None:
    result = generate_plan(fixture_app("node-corepack"))
    assert result.info["resolvedPackages"]["pnpm"]["requestedVersion"] == "9.12.3"
    assert any("corepack enable" in c for c in _exec(result.plan, "install"))
    assert "pnpm" not in result.plan.step("packages:mise").assets["mise.toml"], "corepack, not mise, installs it"


def test_install_scripts_need_the_whole_source(make_app) -> None:
    root = make_app({"package.json": '{"scripts": {"postinstall": "node scripts/patch.js", "start": "node index.js"}}'})
    install = generate_plan(root).plan.step("install")
    assert not any(isinstance(c, CopyCommand) for c in install.commands)
    assert install.inputs[-1].local and install.inputs[-1].include == ["."]


def test_bun_installs_node_only_when_scripts_need_it(fixture_app) -> None:
    assert "node" not in generate_plan(fixture_app("node-bun")).info["resolvedPackages"]
    assert "node" in generate_plan(fixture_app("node-bun-needs-node")).info["resolvedPackages"]


@pytest.mark.parametrize(
    ("name", "root"),
    [
        ("node-vite-react", "dist"),
        ("node-vite-svelte-outdir", "public/build"),
        ("node-angular", "dist/shop/browser"),
        ("node-cra", "build"),
        ("node-react-router-spa", "build/client"),
    ],
)
def test_spa_serves_the_build_output_with_caddy(fixture_app, name: str, root: str) -> None:
    plan = generate_plan(fixture_app(name)).plan
    build = plan.step("build")
    assert f"root * /app/{root}" in build.assets["Caddyfile"]
    assert "try_files {path} /index.html" in build.assets["Caddyfile"]
    assert plan.deploy.inputs[-1].include == ["/Caddyfile", root]


def test_next_caches_build_cache(fixture_app) -> None:
    plan = generate_plan(fixture_app("node-next")).plan
    assert plan.caches["next"].directory == "/app/.next/cache"
    assert "next" in plan.step("build").caches


def test_node_runtime_variables_are_set_in_the_image(fixture_app) -> None:
    deploy = generate_plan(fixture_app("node-npm")).plan.deploy
    assert [(i.include, i.exclude) for i in deploy.inputs[-2:]] == [
        (["/app/node_modules"], None),
        (["."], ["node_modules", ".yarn"]),
    ]
    assert deploy.variables["NODE_ENV"] == "production"
    assert deploy.variables["CI"] == "true"
    assert "/app/node_modules/.bin" in deploy.paths


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


def test_laravel_builds_assets_and_caches_config(fixture_app) -> None:
    result = generate_plan(fixture_app("php-laravel"))
    build = _exec(result.plan, "build")
    assert build[:2] == ["npm ci", "npm run build"]
    assert "php artisan config:cache" in build
    assert "install-php-extensions redis" in _exec(result.plan, "install")
    assert result.info["resolvedPackages"]["php"]["requestedVersion"] == "8.3"
    assert (
        result.plan.step("build").variables == {}
        and result.plan.step("install").variables["RAILPACK_PHP_ROOT_DIR"] == "/app/public"
    )
    assert "php artisan migrate --force" in result.plan.step("build").assets["start-container.sh"]
    assert result.plan.deploy.base.step == "build" and result.plan.deploy.inputs == []
    assert result.plan.steps[0].inputs[0].image == "dunglas/frankenphp:php8.3-bookworm"


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


def test_static_root_from_env(fixture_app) -> None:
    plan = generate_plan(fixture_app("static-index"), env={"RAILPACK_STATIC_FILE_ROOT": "public"}).plan
    assert "root * /app/public" in plan.step("build").assets["Caddyfile"]


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


def test_version_env_overrides_files(fixture_app) -> None:
    result = generate_plan(fixture_app("node-index-only"), env={"RAILPACK_NODE_VERSION": "23"})
    assert result.info["resolvedPackages"]["node"] == {
        "name": "node",
        "requestedVersion": "23",
        "source": "RAILPACK_NODE_VERSION",
    }
    assert '"node" = "23"' in result.plan.step("packages:mise").assets["mise.toml"]


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
