"""Deno apps run with `deno run --allow-all`."""

from __future__ import annotations

from starforge_dag.railpack.providers.base import Context, ProviderPlan, StepLayoutProvider, build_layer, sh

DEFAULT_DENO_VERSION = "2"
MAIN_FILES = ("main.ts", "main.js", "main.mjs", "main.mts")
DENO_DIR = "/root/.cache/deno"  # where `deno cache` puts dependencies; shipped so the app starts offline


class DenoProvider(StepLayoutProvider):
    """Apps with deno.json or deno.jsonc."""

    name = "deno"
    looked_for = "deno.json or deno.jsonc"

    def detect_app(self, ctx: Context) -> bool:
        """A deno.json(c) at the root."""
        return ctx.app.has_any("deno.json", "deno.jsonc")

    def start_command_help(self) -> str:
        """Deno's ways to name an entry file."""
        return "add a main.ts (or main.js) file"

    def plan_app(self, ctx: Context) -> ProviderPlan:
        """Cache the entry's deps, then run it."""
        version = ctx.resolve(
            "deno",
            DEFAULT_DENO_VERSION,
            ctx.env_version("deno"),
            ctx.version_file(".deno-version"),
            ctx.mise_version("deno"),
        )
        plan = ProviderPlan(
            packages={"deno": version},
            variables={"DENO_DIR": DENO_DIR},
            deploy_variables={"DENO_DIR": DENO_DIR},
        )
        main = ctx.app.first_file(*MAIN_FILES) or next(
            (f for pattern in ("*.ts", "*.js", "*.mjs", "*.mts") for f in ctx.app.glob(pattern)), None
        )
        if main:
            plan.build = [sh(f"deno cache {main}")]
            plan.start_command = f"deno run --allow-all {main}"
        plan.deploy_inputs = [build_layer(DENO_DIR), build_layer(".")]
        return plan
