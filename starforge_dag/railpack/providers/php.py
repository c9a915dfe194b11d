"""PHP apps on FrankenPHP: image chosen by PHP version, extensions, Composer, Laravel caches, a Node asset build."""

from __future__ import annotations

from typing import Any

from starforge_dag.railpack.context import CommandStepBuilder, GenerateContext, copy, local_layer, run, sh
from starforge_dag.railpack.plan import CopyCommand, FileCommand, Layer
from starforge_dag.railpack.providers.base import BaseProvider
from starforge_dag.railpack.providers.node import NodeProvider
from starforge_dag.railpack.resolver import ResolvedPackage

DEFAULT_PHP_VERSION = "8.4"
CADDYFILE_PATH = "/Caddyfile"
START_SCRIPT = "/start-container.sh"
COMPOSER_CACHE_DIR = "/opt/cache/composer"
LARAVEL_EXTENSIONS = [
    "ctype",
    "curl",
    "dom",
    "fileinfo",
    "filter",
    "hash",
    "mbstring",
    "openssl",
    "pcre",
    "pdo",
    "session",
    "tokenizer",
    "xml",
]
LARAVEL_CACHES = [
    sh(
        "mkdir -p storage/framework/{sessions,views,cache,testing} storage/logs bootstrap/cache "
        "&& chmod -R a+rw storage"
    ),
    run("php artisan config:cache"),
    run("php artisan event:cache"),
    run("php artisan route:cache"),
    run("php artisan view:cache"),
]

# The server config, PHP settings and entrypoint written into the image; an app's own file of the same name wins.
CADDYFILE_TEMPLATE = """{
\tadmin off
\tpersist_config off
\tauto_https off
\t{$CADDY_GLOBAL_OPTIONS}
\tlog {
\t\toutput stderr
\t\tformat json
\t}
\tfrankenphp {
\t\t{$FRANKENPHP_CONFIG}
\t}
}

{$CADDY_EXTRA_CONFIG}

:{$PORT:80} {
\troot * {{.RAILPACK_PHP_ROOT_DIR}}
\tencode zstd br gzip
\tfile_server {
\t\thide .git .env*
\t}
\t{$CADDY_SERVER_EXTRA_DIRECTIVES}
\tphp_server
}
"""
PHP_INI_TEMPLATE = """[PHP]
expose_php = Off
display_errors = Off
display_startup_errors = Off
log_errors = On
error_log = /dev/stderr
error_reporting = E_ALL & ~E_DEPRECATED & ~E_STRICT
memory_limit = 256M
max_execution_time = 60
post_max_size = 64M
upload_max_filesize = 64M
variables_order = "EGPCS"

[opcache]
opcache.enable = 1
opcache.enable_cli = 0
opcache.memory_consumption = 128
opcache.validate_timestamps = 0
"""
START_SCRIPT_TEMPLATE = """#!/bin/bash
set -e

if [ "$IS_LARAVEL" = "true" ]; then
  if [ "$RAILPACK_SKIP_MIGRATIONS" != "true" ]; then
    echo "Migrating the database"
    php artisan migrate --force
  fi
  php artisan storage:link
  php artisan optimize:clear
  php artisan optimize
fi

exec docker-php-entrypoint --config /Caddyfile --adapter caddyfile 2>&1
"""


def php_image(version: str) -> str:
    """The FrankenPHP image for a PHP version."""
    return f"dunglas/frankenphp:php{version}-trixie"


class PhpProvider(BaseProvider):
    """Apps with index.php or composer.json."""

    name = "php"
    looked_for = "composer.json or index.php"

    def detect(self, ctx: GenerateContext) -> bool:
        """An index.php or composer.json at the root."""
        return ctx.source.has_file("index.php") or ctx.source.has_file("composer.json")

    def start_command_help(self) -> str:
        """PHP apps start through the generated start-container.sh."""
        return "Railpack starts PHP apps with /start-container.sh, which runs FrankenPHP (after Laravel housekeeping)."

    def plan(self, ctx: GenerateContext) -> None:
        """packages:image → prepare → extensions → install:composer → build (with Node steps when there is a package.json)."""
        image = self._image_step(ctx)
        laravel = _laravel(ctx)

        prepare = ctx.new_command_step("prepare")
        prepare.add_input(Layer(step=image.name))
        self._prepare(ctx, prepare)

        extensions = ctx.new_command_step("extensions")
        extensions.add_input(Layer(step=prepare.name))
        if names := _extensions(ctx):
            extensions.add(run(f"install-php-extensions {' '.join(names)}"))
            extensions.caches += ctx.caches.apt()
        extensions.secrets = []

        composer = ctx.new_command_step("install:composer")
        composer.add_input(Layer(step=extensions.name))
        self._composer(ctx, composer)

        node = NodeProvider()
        ctx.set_metadata("phpLaravel", laravel)
        if node.detect(ctx):
            self._deploy_with_node(ctx, node, composer, laravel)
        else:
            build = ctx.new_command_step("build")
            build.add_input(Layer(step=composer.name))
            build.add_input(local_layer())
            ctx.deploy.base = Layer(step=build.name)
            self._include_mise(ctx)
        ctx.deploy.start_command = START_SCRIPT

    def _image_step(self, ctx: GenerateContext) -> Any:
        def image(resolved: dict[str, ResolvedPackage]) -> str:
            php = resolved.get("php")
            return php_image(php.resolved_version if php else DEFAULT_PHP_VERSION)

        step = ctx.new_image_step("packages:image", image)
        step.apt_packages += ["git", "zip", "unzip", "ca-certificates"]
        step.apt_packages += ctx.config.build_apt_packages or []
        step.apt_packages += ctx.config.deploy.apt_packages or []
        php = step.default("php", DEFAULT_PHP_VERSION)
        required = (_composer_json(ctx) or {}).get("require")
        version = required.get("php") if isinstance(required, dict) else None
        if isinstance(version, str):
            step.version(php, version.removeprefix("^"), "composer.json > require > php")
        return step

    def _prepare(self, ctx: GenerateContext, prepare: CommandStepBuilder) -> None:
        laravel = _laravel(ctx)
        root = ctx.env.get("RAILPACK_PHP_ROOT_DIR") or ("/app/public" if laravel else "/app")
        data = {"RAILPACK_PHP_ROOT_DIR": root, "IS_LARAVEL": laravel}
        for asset, default in (
            ("Caddyfile", CADDYFILE_TEMPLATE),
            ("php.ini", PHP_INI_TEMPLATE),
            ("start-container.sh", START_SCRIPT_TEMPLATE),
        ):
            found, text = ctx.render_template([asset], default, data)
            if found:
                ctx.info(f"Using the app's {found}")
            prepare.assets[asset] = text
        prepare.variables.update(
            {
                "APP_ENV": "production",
                "APP_DEBUG": "false",
                "APP_LOCALE": "en",
                "LOG_CHANNEL": "stderr",
                "LOG_LEVEL": "debug",
                "SERVER_NAME": ":80",
                "PHP_INI_DIR": "/usr/local/etc/php",
                "OCTANE_SERVER": "frankenphp",
                "IS_LARAVEL": "true" if laravel else "false",
            }
        )
        prepare.add(
            run("mkdir -p /usr/local/etc/php/conf.d"),
            run("mkdir -p /conf.d/"),
            FileCommand(path="/usr/local/etc/php/conf.d/php.ini", name="php.ini"),
            FileCommand(path=CADDYFILE_PATH, name="Caddyfile"),
            FileCommand(
                path=START_SCRIPT, name="start-container.sh", mode=0o755, custom_name="create start container script"
            ),
        )
        prepare.secrets = []

    def _composer(self, ctx: GenerateContext, composer: CommandStepBuilder) -> None:
        composer.secrets = []
        composer.use_secrets_with_prefixes("COMPOSER", "PHP")
        composer.variables.update({"COMPOSER_FUND": "0", "COMPOSER_CACHE_DIR": COMPOSER_CACHE_DIR})
        if _composer_json(ctx) is None:
            return
        composer.add_cache(ctx.caches.add("composer", COMPOSER_CACHE_DIR))
        composer.add(CopyCommand(image="composer:latest", src="/usr/bin/composer", dest="/usr/bin/composer"))
        composer.add(*(copy(f) for f in _composer_files(ctx)))
        composer.add(run("composer install --optimize-autoloader --no-scripts --no-interaction"))

    def _deploy_with_node(
        self, ctx: GenerateContext, node: NodeProvider, composer: CommandStepBuilder, laravel: bool
    ) -> None:
        node.initialize(ctx)
        ctx.info("Installing Node")
        mise = ctx.mise
        node.install_mise_packages(ctx, mise)
        install = ctx.new_command_step("install:node")
        install.add_input(Layer(step=mise.name))
        node.install_node_deps(ctx, install)
        prune = ctx.new_command_step("prune:node")
        prune.add_input(Layer(step=install.name))
        node.prune_node_deps(ctx, prune)
        build = ctx.new_command_step("build")
        build.inputs = [Layer(step=composer.name), Layer(step=install.name, include=[".", *mise.output_paths()])]
        node.build_node(ctx, build)
        if laravel:
            build.add(*LARAVEL_CACHES)
        ctx.deploy.base = Layer(step=composer.name)
        self._include_mise(ctx)
        ctx.deploy.inputs += [
            Layer(step=prune.name, include=["/app/node_modules"]),
            Layer(step=build.name, include=["."], exclude=["node_modules"]),
        ]

    def _include_mise(self, ctx: GenerateContext) -> None:
        if ctx.mise.packages:
            ctx.deploy.inputs.append(ctx.mise.layer())


def _laravel(ctx: GenerateContext) -> bool:
    return ctx.source.has_file("artisan")


def _composer_json(ctx: GenerateContext) -> dict[str, Any] | None:
    data = ctx.source.read_json("composer.json")
    return data if isinstance(data, dict) else None


def _composer_files(ctx: GenerateContext) -> list[str]:
    """Every composer.json and composer.lock (workspace packages included) and artisan."""
    files: list[str] = []
    for pattern in ("**/composer.json", "**/composer.lock", "artisan"):
        files += ctx.source.find_files(pattern)
        files += ctx.source.find_dirs(pattern)
    return files


def _extensions(ctx: GenerateContext) -> list[str]:
    """ext-* requirements, RAILPACK_PHP_EXTENSIONS, Laravel's set, the database driver, redis."""
    data = _composer_json(ctx)
    if data is None:
        return []
    found = data.get("require")
    required: dict[str, Any] = found if isinstance(found, dict) else {}
    names = [key.removeprefix("ext-") for key in required if key.startswith("ext-")]
    names += (ctx.env.railpack("PHP_EXTENSIONS") or "").replace(",", " ").split()
    if _laravel(ctx):
        names += LARAVEL_EXTENSIONS
    driver = {"mysql": "pdo_mysql", "pgsql": "pdo_pgsql"}.get(ctx.env.get("DB_CONNECTION") or "")
    if driver:
        names.append(driver)
    env = ctx.env
    if (
        env.get("REDIS_HOST")
        or env.get("REDIS_URL")
        or "redis" in {env.get("CACHE_DRIVER"), env.get("SESSION_DRIVER"), env.get("QUEUE_CONNECTION")}
        or any("redis" in key or "predis" in key for key in required)
    ):
        names.append("redis")
    return names
