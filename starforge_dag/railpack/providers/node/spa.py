"""Static single-page apps: when a Node app is served as files by Caddy, from which directory, and how it deploys."""

from __future__ import annotations

from starforge_dag.railpack.context import CommandStepBuilder, GenerateContext, run, step_layer
from starforge_dag.railpack.plan import FileCommand, Layer
from starforge_dag.railpack.providers.node import frameworks as fw
from starforge_dag.railpack.providers.node.workspace import WorkspacePackage
from starforge_dag.railpack.providers.staticfile import SPA_CADDYFILE, index_fallback

CADDYFILE_PATH = "/Caddyfile"
# Start scripts that only run a dev server: an app whose start script is one of these can still be an SPA.
DEV_START_COMMANDS = {
    "ng serve",
    "react-scripts start",
    "expo start",
    "next start",
    "react-router-serve ./build/server/index.js",
}


def has_custom_start(ctx: GenerateContext, root: WorkspacePackage) -> bool:
    """A start command that runs more than a dev server: the app has a server of its own."""
    start = ctx.config.deploy.start_command or root.pkg.scripts.get("start", "")
    return bool(start) and start not in DEV_START_COMMANDS


def is_spa(ctx: GenerateContext, root: WorkspacePackage) -> bool:
    """Served as static files by Caddy rather than run by Node."""
    if ctx.env.is_truthy("NO_SPA"):
        return False
    if ctx.env.railpack("SPA_OUTPUT_DIR"):
        return True
    if has_custom_start(ctx, root):
        return False
    if fw.is_react_router(ctx, root):
        return fw.is_react_router_spa(ctx) and bool(output_dir(ctx, root))
    pkg = root.pkg
    kinds = (
        fw.is_vite(ctx, root),
        fw.is_astro_spa(ctx, root),
        fw.is_next_spa(ctx, pkg),
        fw.is_cra(pkg),
        fw.is_angular(ctx, pkg),
        fw.is_expo_spa(ctx, pkg),
    )
    return any(kinds) and bool(output_dir(ctx, root))


def spa_name(ctx: GenerateContext, root: WorkspacePackage) -> str:
    """The framework of the static site, empty when none is recognised."""
    if fw.is_react_router(ctx, root):
        return "react-router" if fw.is_react_router_spa(ctx) else ""
    pkg = root.pkg
    for name, check in (
        ("vite", lambda: fw.is_vite(ctx, root)),
        ("astro", lambda: fw.is_astro(ctx, root)),
        ("next", lambda: fw.is_next_spa(ctx, pkg)),
        ("cra", lambda: fw.is_cra(pkg)),
        ("angular", lambda: fw.is_angular(ctx, pkg)),
        ("expo", lambda: fw.is_expo_spa(ctx, pkg)),
    ):
        if check():
            return name
    return ""


def output_dir(ctx: GenerateContext, root: WorkspacePackage) -> str:
    """Where the build writes the site (RAILPACK_SPA_OUTPUT_DIR wins), empty when not a static site."""
    if custom := ctx.env.railpack("SPA_OUTPUT_DIR"):
        return custom
    pkg = root.pkg
    if fw.is_react_router(ctx, root):
        return fw.react_router_output_dir(ctx) if fw.is_react_router_spa(ctx) else ""
    if fw.is_vite(ctx, root):
        return fw.vite_output_dir(ctx, pkg)
    if fw.is_astro_spa(ctx, root):
        return fw.astro_output_dir(ctx)
    if fw.is_next_spa(ctx, pkg):
        return fw.next_output_dir(ctx)
    if fw.is_cra(pkg):
        return "build"
    if fw.is_angular(ctx, pkg):
        return fw.angular_output_dir(ctx)
    if fw.is_expo_spa(ctx, pkg):
        return "dist"
    return ""


def deploy_spa(ctx: GenerateContext, root: WorkspacePackage, build: CommandStepBuilder) -> None:
    """Deploy the built files with Caddy: a caddy step writes the Caddyfile, the image holds caddy and the files."""
    output = output_dir(ctx, root)
    ctx.info(f"Deploying as {spa_name(ctx, root) or 'static'} static site from {output}")
    fallback = index_fallback(ctx)
    data = {
        "DIST_DIR": "/".join(p for p in ("/app", output.strip("/")) if p),
        "IndexFallback": True if fallback is None else fallback,
    }
    _, caddyfile = ctx.render_template(["Caddyfile.template", "Caddyfile"], SPA_CADDYFILE, data)
    caddy_bin = ctx.new_install_bin_step("packages:caddy")
    caddy_bin.default("caddy", "latest")
    caddy = ctx.new_command_step("caddy")
    caddy.add_input(Layer(step=caddy_bin.name))
    caddy.add(
        FileCommand(path=CADDYFILE_PATH, name="Caddyfile"),
        run(f"caddy fmt --overwrite {CADDYFILE_PATH}"),
    )
    caddy.assets = {"Caddyfile": caddyfile}
    ctx.deploy.start_command = f"caddy run --config {CADDYFILE_PATH} --adapter caddyfile 2>&1"
    ctx.deploy.inputs += [
        caddy_bin.layer(),
        step_layer(caddy.name, include=[CADDYFILE_PATH]),
        step_layer(build.name, include=[output]),
    ]
