"""Static sites served by Caddy from a root directory."""

from __future__ import annotations

from starforge_dag.railpack.plan import FileCommand
from starforge_dag.railpack.providers.base import Context, ProviderPlan, build_layer
from starforge_dag.railpack.providers.node import CADDY_START, CADDYFILE_PATH, render_static_caddyfile


class StaticfileProvider:
    """Apps with a Staticfile, an index.html, a public/ dir or RAILPACK_STATIC_FILE_ROOT."""

    name = "staticfile"

    def detect(self, ctx: Context) -> bool:
        """Any sign of a static site."""
        return (
            bool(ctx.env.railpack("STATIC_FILE_ROOT"))
            or ctx.app.has_any("Staticfile", "index.html")
            or ctx.app.has_dir("public")
        )

    def start_command_help(self) -> str:
        """Static sites need only files to serve."""
        return "add an index.html or a Staticfile naming the root directory"

    def plan(self, ctx: Context) -> ProviderPlan:
        """Write a Caddyfile for the root and serve it."""
        staticfile = ctx.app.read_yaml("Staticfile") if ctx.app.has_file("Staticfile") else None
        staticfile = staticfile if isinstance(staticfile, dict) else {}
        root = (
            ctx.env.railpack("STATIC_FILE_ROOT")
            or staticfile.get("root")
            or ("public" if ctx.app.has_dir("public") else ".")
        )
        root = str(root).strip("/") or "."
        ctx.metadata["staticRoot"] = root
        caddyfile = ctx.app.read_text("Caddyfile") or render_static_caddyfile(
            "/app" if root == "." else f"/app/{root}", spa=bool(staticfile.get("index_fallback"))
        )
        plan = ProviderPlan(packages={"caddy": ctx.resolve("caddy", "latest", ctx.mise_version("caddy"))})
        plan.build_assets["Caddyfile"] = caddyfile
        plan.build = [FileCommand(path=CADDYFILE_PATH, name="Caddyfile", custom_name="create Caddyfile")]
        plan.start_command = CADDY_START
        plan.deploy_inputs = [build_layer(CADDYFILE_PATH, root)]
        return plan
