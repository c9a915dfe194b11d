"""Static sites served by Caddy: a Staticfile's root, a public/ directory or an index.html."""

from __future__ import annotations

from starforge_dag.railpack.context import GenerateContext, local_layer, run, step_layer
from starforge_dag.railpack.plan import FileCommand, Layer
from starforge_dag.railpack.providers.base import BaseProvider

CADDYFILE = "Caddyfile"

_CADDY_GLOBAL = """{
\tadmin off
\tpersist_config off
\tauto_https off
\tlog {
\t\tformat json
\t}
\tservers {
\t\ttrusted_proxies static private_ranges
\t}
}
"""

# Served on $PORT: /health answers 200, dotfiles stay hidden, paths resolve as file, file.html, dir/index.html.
STATIC_CADDYFILE = (
    _CADDY_GLOBAL
    + """
:{$PORT:80} {
\tlog {
\t\tformat json
\t}
\trespond /health 200
\theader {
\t\tX-Content-Type-Options "nosniff"
\t\tX-XSS-Protection "1; mode=block"
\t\tReferrer-Policy "strict-origin-when-cross-origin"
\t\t-Server
\t}
\troot * {{.StaticFileRoot}}
\tencode gzip zstd
\ttry_files {path} {path}.html {path}/index.html{{if .IndexFallback}} /index.html{{end}}
\tfile_server {
\t\thide .git .env*
\t}
\thandle_errors {
\t\trewrite * /{err.status_code}.html
\t\tfile_server
\t}
}
"""
)

SPA_CADDYFILE = (
    _CADDY_GLOBAL
    + """
:{$PORT:80} {
\tlog {
\t\tformat json
\t}
\trespond /health 200
\theader {
\t\tX-Content-Type-Options "nosniff"
\t\t-Server
\t}
\troot * {{.DIST_DIR}}
\tencode gzip zstd
\ttry_files {path} {path}.html {path}/index.html{{if .IndexFallback}} /index.html{{end}}
\tfile_server {
\t\thide .git .env*
\t}
}
"""
)


def _staticfile(ctx: GenerateContext) -> dict[str, object]:
    data = ctx.source.read_yaml("Staticfile") if ctx.source.has_file("Staticfile") else None
    return data if isinstance(data, dict) else {}


def index_fallback(ctx: GenerateContext) -> bool | None:
    """The Staticfile's `index_fallback`, when it sets one."""
    value = _staticfile(ctx).get("index_fallback")
    return value if isinstance(value, bool) else None


def root_dir(ctx: GenerateContext) -> str | None:
    """RAILPACK_STATIC_FILE_ROOT, the Staticfile's root, public/, or the app root when it has an index.html."""
    if root := ctx.env.railpack("STATIC_FILE_ROOT"):
        return root
    root = str(_staticfile(ctx).get("root") or "").strip()
    if root:
        return root
    if ctx.source.exists("public"):
        return "public"
    if ctx.source.has_file("index.html"):
        return "."
    return None


class StaticfileProvider(BaseProvider):
    """Static files served by Caddy."""

    name = "staticfile"
    looked_for = "Staticfile, a public/ directory or index.html (or RAILPACK_STATIC_FILE_ROOT)"

    def detect(self, ctx: GenerateContext) -> bool:
        """A root directory to serve."""
        return root_dir(ctx) is not None

    def plan(self, ctx: GenerateContext) -> None:
        """Install Caddy, write the Caddyfile into the app, serve it."""
        root = root_dir(ctx) or "."
        caddy_bin = ctx.new_install_bin_step("packages:caddy")
        caddy_bin.default("caddy", "2")
        build = ctx.new_command_step("build")
        build.add_input(Layer(step=caddy_bin.name))
        build.add_input(local_layer())
        fallback = index_fallback(ctx)
        data = {"StaticFileRoot": root, "IndexFallback": bool(fallback)}
        _, caddyfile = ctx.render_template(["Caddyfile.template", "Caddyfile"], STATIC_CADDYFILE, data)
        build.add(FileCommand(path=CADDYFILE, name="Caddyfile"), run("caddy fmt --overwrite Caddyfile"))
        build.assets = {"Caddyfile": caddyfile}
        ctx.deploy.inputs += [caddy_bin.layer(), step_layer(build.name, include=["."])]
        ctx.deploy.start_command = f"caddy run --config {CADDYFILE} --adapter caddyfile 2>&1"

    def start_command_help(self) -> str:
        """Where the served directory comes from."""
        return (
            "Railpack serves static files with Caddy from RAILPACK_STATIC_FILE_ROOT, the `root` of a Staticfile, "
            "a public/ directory, or the app root when it has an index.html. `index_fallback: true` in the "
            "Staticfile serves index.html for unknown paths."
        )
