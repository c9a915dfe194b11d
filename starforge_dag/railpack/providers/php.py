"""PHP apps served by FrankenPHP: Composer, Laravel and vanilla PHP, with a Node asset build."""

from __future__ import annotations

from starforge_dag.railpack.plan import Cache, FileCommand, Layer
from starforge_dag.railpack.providers.base import Context, ProviderPlan, StepLayoutProvider, copy, loose_version, sh

DEFAULT_PHP_VERSION = "8.4"
START_SCRIPT = "/start-container.sh"


def php_image(version: str) -> str:
    """The FrankenPHP image for a PHP minor version."""
    return f"dunglas/frankenphp:php{version}-bookworm"


class PhpProvider(StepLayoutProvider):
    """Apps with index.php or composer.json."""

    name = "php"
    looked_for = "composer.json or index.php"

    def detect_app(self, ctx: Context) -> bool:
        """An index.php or composer.json at the root."""
        return ctx.app.has_any("index.php", "composer.json")

    def start_command_help(self) -> str:
        """PHP apps start through the generated start-container.sh."""
        return "add an index.php or a start-container.sh"

    def plan_app(self, ctx: Context) -> ProviderPlan:
        """Install extensions and Composer deps, cache Laravel config, start FrankenPHP."""
        composer = ctx.app.read_json("composer.json") or {}
        require = composer.get("require") or {}
        version = ctx.resolve(
            "php", DEFAULT_PHP_VERSION, (loose_version(require.get("php")), "composer.json"), ctx.env_version("php")
        )
        version = ".".join(version.split(".")[:2]) if "." in version else f"{version}.0"
        laravel = ctx.app.has_file("artisan")
        root = ctx.env.railpack("PHP_ROOT_DIR") or ("/app/public" if laravel else "/app")
        image = ctx.env.railpack("PHP_IMAGE") or php_image(version)
        runtime_variables = {
            "SERVER_NAME": ":80",
            "RAILPACK_PHP_ROOT_DIR": root,
            "APP_ENV": "production",
            "APP_DEBUG": "false",
            "LOG_CHANNEL": "stderr",
            "IS_LARAVEL": "true" if laravel else "false",
        }
        plan = ProviderPlan(
            step_image=image,
            deploy_base=Layer(step="build"),
            runtime_packages=False,
            variables={**runtime_variables, "COMPOSER_CACHE_DIR": "/opt/cache/composer", "COMPOSER_FUND": "0"},
            deploy_variables=runtime_variables,
            caches={"composer": Cache(directory="/opt/cache/composer")},
            install_caches=["composer"],
        )
        extensions = sorted(
            {k[len("ext-") :] for k in require if k.startswith("ext-")}
            | {e for e in (ctx.env.railpack("PHP_EXTENSIONS") or "").replace(",", " ").split() if e}
        )
        if extensions:
            plan.install.append(sh(f"install-php-extensions {' '.join(extensions)}"))
        if ctx.app.has_file("composer.json"):
            files = [f for f in ("composer.json", "composer.lock") if ctx.app.has_file(f)]
            plan.install += [*copy(*files), sh("composer install --optimize-autoloader --no-scripts --no-interaction")]
        if ctx.app.has_file("package.json"):
            plan.packages["node"] = ctx.resolve("node", "22", ctx.env_version("node"), ctx.version_file(".nvmrc"))
            plan.build.append(sh("npm ci" if ctx.app.has_file("package-lock.json") else "npm install"))
            scripts = (ctx.app.read_json("package.json") or {}).get("scripts") or {}
            if "build" in scripts:
                plan.build.append(sh("npm run build"))
            plan.build.append(sh("npm prune --omit=dev --ignore-scripts"))
        if laravel:
            ctx.metadata["framework"] = "laravel"
            plan.build += [
                sh(
                    "mkdir -p storage/framework/sessions storage/framework/views storage/framework/cache storage/logs bootstrap/cache"
                ),
                sh("chmod -R a+rw storage bootstrap/cache"),
                sh("php artisan config:cache"),
                sh("php artisan event:cache"),
                sh("php artisan route:cache"),
                sh("php artisan view:cache"),
            ]
        plan.build_assets["start-container.sh"] = ctx.app.read_text("start-container.sh") or _start_script(
            laravel, ctx.env.is_truthy("SKIP_MIGRATIONS")
        )
        plan.build.append(
            FileCommand(
                path=START_SCRIPT, name="start-container.sh", mode=0o755, custom_name="create start-container.sh"
            )
        )
        if caddyfile := ctx.app.read_text("Caddyfile"):
            plan.build_assets["Caddyfile"] = caddyfile
            plan.build.append(FileCommand(path="/etc/caddy/Caddyfile", name="Caddyfile"))
        plan.start_command = START_SCRIPT
        return plan


def _start_script(laravel: bool, skip_migrations: bool) -> str:
    """Container entry: Laravel housekeeping, then FrankenPHP serving the document root (the image's default PATH has it)."""
    lines = ["#!/bin/sh", "set -e"]
    if laravel:
        if not skip_migrations:
            lines.append("php artisan migrate --force")
        lines += ["php artisan storage:link || true", "php artisan optimize"]
    lines.append('exec frankenphp php-server --listen ":${PORT:-80}" --root "${RAILPACK_PHP_ROOT_DIR:-/app}"')
    return "\n".join(lines) + "\n"
