"""The Node.js and Bun provider: mise packages, install, prune, build and start of an app with a package.json."""

from __future__ import annotations

import re

from starforge_dag.railpack.context import (
    PLAYWRIGHT_DEPS,
    CommandStepBuilder,
    GenerateContext,
    MiseStepBuilder,
    copy,
    local_layer,
    run,
    sh,
    step_layer,
)
from starforge_dag.railpack.plan import BuildPlan, ExecCommand, Layer
from starforge_dag.railpack.providers.base import BaseProvider
from starforge_dag.railpack.providers.node import frameworks as fw
from starforge_dag.railpack.providers.node import spa
from starforge_dag.railpack.providers.node.cleanse import NODE_MODULES_CACHE, cleanse_plan
from starforge_dag.railpack.providers.node.nx import nx_deploy_package
from starforge_dag.railpack.providers.node.package_json import PackageJson, find_manifest
from starforge_dag.railpack.providers.node.package_manager import PackageManager, package_manager_for
from starforge_dag.railpack.providers.node.workspace import Workspace, WorkspacePackage, read_workspace

DEFAULT_NODE_VERSION = "lts"
DEFAULT_BUN_VERSION = "latest"
COREPACK_HOME = "/opt/corepack"

PUPPETEER_DEPS = [
    "xvfb",
    "libasound2",
    "libatk1.0-0",
    "libc6",
    "libcairo2",
    "libcups2",
    "libdbus-1-3",
    "libexpat1",
    "libfontconfig1",
    "libgbm1",
    "libgcc1",
    "libgdk-pixbuf-2.0-0",
    "libglib2.0-0",
    "libgtk-3-0",
    "libnspr4",
    "libpango-1.0-0",
    "libpangocairo-1.0-0",
    "libstdc++6",
    "libx11-6",
    "libx11-xcb1",
    "libxcb1",
    "libxcomposite1",
    "libxcursor1",
    "libxdamage1",
    "libxext6",
    "libxfixes3",
    "libxi6",
    "libxrandr2",
    "libxrender1",
    "libxss1",
    "libxtst6",
    "ca-certificates",
    "fonts-liberation",
    "libnss3",
    "lsb-release",
    "xdg-utils",
    "wget",
]
_BUN_COMMAND = re.compile(r"(^|\s|;|&|&&|\||\|\|)bunx?\s")


class NodeProvider(BaseProvider):
    """Apps with a package.json (or package.json5)."""

    name = "node"
    looked_for = "package.json or package.json5"

    def __init__(self) -> None:
        self.pkg = PackageJson()
        self.pm = PackageManager.NPM
        self.workspace = Workspace(WorkspacePackage("", self.pkg))

    @property
    def root(self) -> WorkspacePackage:
        """The app's own package, at the root of the workspace."""
        return self.workspace.root

    def detect(self, ctx: GenerateContext) -> bool:
        """A package manifest at the root."""
        return find_manifest(ctx) is not None

    def initialize(self, ctx: GenerateContext) -> None:
        """Read the manifest, the package manager and the workspace."""
        manifest = find_manifest(ctx) or "package.json"
        data = ctx.source.read_json(manifest) if ctx.source.has_file(manifest) else {}
        if data is None:
            ctx.warn(f"{manifest} could not be parsed; treating it as empty")
        self.pkg = PackageJson.parse(data)
        self.pm = package_manager_for(ctx, self.pkg)
        self.workspace = read_workspace(ctx, self.pkg)

    def start_command_help(self) -> str:
        """Node's ways to name a start command."""
        return (
            'Railpack looks for a "start" script in package.json, a "main" field, an index.js or index.ts at the '
            "root, or an Nx workspace with one Next.js app (RAILPACK_NX_APP chooses among several). For a static "
            "site set RAILPACK_SPA_OUTPUT_DIR to the directory of the built files."
        )

    # ---- plan -------------------------------------------------------------------------------------------------

    def plan(self, ctx: GenerateContext) -> None:
        """mise packages, install, optional prune, build, then a Node or Caddy deploy."""
        is_spa = spa.is_spa(ctx, self.root)
        ctx.set_metadata("nodeRuntime", self._runtime(ctx))
        ctx.set_metadata("nodePackageManager", self.pm.value)
        ctx.set_metadata("nodeIsSPA", is_spa)
        ctx.set_metadata("nodeUsesCorepack", self.uses_corepack())

        mise = ctx.mise
        self._install_mise_packages(ctx, mise)

        install = ctx.new_command_step("install")
        install.add_input(Layer(step=mise.name))
        self._install_deps(ctx, install)

        prune = ctx.new_command_step("prune")
        prune.add_input(Layer(step=install.name))
        prune.secrets = []
        pruning = ctx.env.is_truthy("PRUNE_DEPS")
        if pruning and not is_spa:
            prune.variables["NPM_CONFIG_PRODUCTION"] = "true"
            prune.secrets = []
            self.pm.prune_deps(ctx, prune, self.pkg)

        build = ctx.new_command_step("build")
        build.add_input(Layer(step=install.name))
        self._build(ctx, build)

        ctx.deploy.start_command = self._start_command(ctx)
        ctx.deploy.variables.update(self._env_vars(ctx))

        if is_spa:
            spa.deploy_spa(ctx, self.root, build)
            return

        if fw.is_sveltekit(self.root) and self.pkg.has_dependency("@sveltejs/adapter-auto"):
            build.variables["GCP_BUILDPACKS"] = "true"

        include = ["/root/.cache", "."]
        if self.uses_corepack():
            include += [COREPACK_HOME, "/mise/installs", "/mise/shims"]
        runtime_apt: list[str] = []
        if self.workspace.has_dependency("puppeteer"):
            runtime_apt += PUPPETEER_DEPS
        if ctx.env.is_truthy("NODE_PLAYWRIGHT_INSTALL"):
            runtime_apt += PLAYWRIGHT_DEPS
            install.add(ExecCommand(cmd=self.pm.exec_command("playwright install --only-shell")))
        folders = self.pm.install_folders(ctx)
        modules = step_layer(prune.name if pruning else build.name, include=folders)
        ctx.deploy.apt_packages += runtime_apt
        ctx.deploy.inputs += [
            mise.layer(),
            modules,
            step_layer(build.name, include=include, exclude=["node_modules", ".yarn"]),
        ]

    def cleanse_plan(self, plan: BuildPlan) -> None:
        """A step after install that deletes node_modules cannot have a cache mounted inside it."""
        cleanse_plan(plan)

    # ---- entry points other providers (Ruby, PHP, Elixir) plan Node through ---------------------------------------

    def install_mise_packages(self, ctx: GenerateContext, mise: MiseStepBuilder) -> None:
        """Request node, bun and the package manager on a mise step."""
        self._install_mise_packages(ctx, mise)

    def install_node_deps(self, ctx: GenerateContext, install: CommandStepBuilder) -> None:
        """Fill an install step with the package manager's install."""
        self._install_deps(ctx, install)

    def prune_node_deps(self, ctx: GenerateContext, prune: CommandStepBuilder) -> None:
        """Fill a prune step that drops development dependencies."""
        prune.variables["NPM_CONFIG_PRODUCTION"] = "true"
        prune.secrets = []
        self.pm.prune_deps(ctx, prune, self.pkg)

    def build_node(self, ctx: GenerateContext, build: CommandStepBuilder) -> None:
        """Fill a build step with the build script and framework caches."""
        self._build(ctx, build)

    def uses_corepack(self) -> bool:
        """A packageManager field means corepack installs the manager (bun excepted)."""
        return self.pkg.package_manager is not None and self.pm is not PackageManager.BUN

    # ---- mise packages ----------------------------------------------------------------------------------------

    def _requires_node(self, ctx: GenerateContext) -> bool:
        if self.pm is not PackageManager.BUN or self.pkg.package_manager is not None:
            return True
        if any("node" in script for script in self.pkg.scripts.values()):
            return True
        return fw.is_astro(ctx, self.root) or fw.is_vite(ctx, self.root)

    def _requires_bun(self, ctx: GenerateContext) -> bool:
        if self.pm is PackageManager.BUN or any(_BUN_COMMAND.search(s) for s in self.pkg.scripts.values()):
            return True
        return bool(ctx.config.deploy.start_command and _BUN_COMMAND.search(ctx.config.deploy.start_command))

    def _install_mise_packages(self, ctx: GenerateContext, mise: MiseStepBuilder) -> None:
        requires_node = self._requires_node(ctx)
        tools: list[str] = []
        if self._requires_bun(ctx):
            bun = mise.default("bun", DEFAULT_BUN_VERSION)
            tools.append("bun")
            if version := ctx.env.railpack("BUN_VERSION"):
                mise.version(bun, version, "RAILPACK_BUN_VERSION")
            needs_node_for_install = bool(
                self.pkg.dependencies or self.pkg.dev_dependencies or self.pkg.has_local_dependency()
            )
            requires_node = requires_node or needs_node_for_install
        if requires_node:
            node = mise.default("node", DEFAULT_NODE_VERSION)
            tools.append("node")
            if engine := self.pkg.engines.get("node"):
                mise.version(node, engine, "package.json > engines > node")
            if version := ctx.env.railpack("NODE_VERSION"):
                mise.version(node, version, "RAILPACK_NODE_VERSION")
            ctx.deploy.apt_packages.append("libatomic1")
        self.pm.mise_packages(ctx, mise, self.pkg)
        if self.pm is not PackageManager.NPM:
            tools.append(self.pm.tool)
        if self.uses_corepack():
            mise.add_setting("node.corepack", True)
        if tools:
            mise.use_mise_versions(tools)

    # ---- install ----------------------------------------------------------------------------------------------

    def _install_deps(self, ctx: GenerateContext, install: CommandStepBuilder) -> None:
        install.variables.update(self._env_vars(ctx))
        install.secrets = []
        install.use_secrets_with_prefixes("NODE", "NPM", "BUN", "PNPM", "YARN", "CI")
        install.add_paths("/app/node_modules/.bin")
        if ctx.source.exists("node_modules"):
            ctx.warn("node_modules directory found in the project root; add it to .gitignore")
        if self.uses_corepack():
            install.variables["COREPACK_HOME"] = COREPACK_HOME
            install.add(
                copy(find_manifest(ctx) or "package.json"),
                sh("npm i -g corepack@latest && corepack enable && corepack prepare --activate"),
            )
        install.add(run(f"mkdir -p {NODE_MODULES_CACHE}"))
        self.pm.install_dependencies(ctx, self.workspace, install, self.uses_corepack())

    # ---- build ------------------------------------------------------------------------------------------------

    def _build(self, ctx: GenerateContext, build: CommandStepBuilder) -> None:
        build.add_input(local_layer())
        if self.pkg.has_script("build"):
            build.add(run(self.pm.run_script("build")))
            if self.pkg.has_dependency("next"):
                build.variables["NEXT_TELEMETRY_DISABLED"] = "1"
        elif nx := nx_deploy_package(ctx, self.workspace):
            build.add(run(f"nx build {nx[1]}"))
            build.variables["NEXT_TELEMETRY_DISABLED"] = "1"
        build.add_cache(ctx.caches.add("node-modules", NODE_MODULES_CACHE))
        checks = (
            ("next", lambda p: "next build" in p.pkg.script("build") or fw.is_next_app(ctx, p), ".next/cache"),
            ("remix", lambda p: p.pkg.has_dependency("@remix-run/node"), ".cache"),
            ("vite", lambda p: fw.is_vite(ctx, p), "node_modules/.vite"),
            ("tanstack-start", fw.is_tanstack, "node_modules/.vite"),
            ("astro", lambda p: fw.is_astro(ctx, p), "node_modules/.astro"),
            ("react-router", lambda p: fw.is_react_router(ctx, p), ".react-router"),
        )
        for framework, check, sub in checks:
            for wp in self.workspace.all:
                if check(wp):
                    name = framework if not wp.path else f"{framework}-{wp.path.rstrip('/').replace('/', '-')}"
                    directory = "/".join(p for p in ("/app", wp.path, sub) if p)
                    build.add_cache(ctx.caches.add(name, directory))

    # ---- start ------------------------------------------------------------------------------------------------

    def _start_command(self, ctx: GenerateContext) -> str:
        if self.pkg.has_script("start"):
            return self.pm.run_script("start")
        if self.pkg.main:
            return self.pm.run_file(self.pkg.main)
        index = ctx.source.find_files("{index.js,index.ts}", max_depth=0)
        if index:
            return self.pm.run_file(index[0])
        if self.pkg.has_dependency("nuxt"):
            return "node .output/server/index.mjs"
        if fw.is_tanstack(self.root):
            ctx.info("No start script found; using srvx as the production server")
            return self.pm.exec_command("srvx --prod -s ../client dist/server/server.js")
        if fw.is_sveltekit(self.root) and self.pkg.has_dependency("@sveltejs/adapter-auto"):
            return "node build"
        if nx := nx_deploy_package(ctx, self.workspace):
            wp = nx[0]
            if fw.is_next_app(ctx, wp):
                return "next start" if not wp.path else f"cd {wp.path} && next start"
        return ""

    def _env_vars(self, ctx: GenerateContext) -> dict[str, str]:
        env = {
            "NODE_ENV": "production",
            "NPM_CONFIG_PRODUCTION": "false",
            "NPM_CONFIG_UPDATE_NOTIFIER": "false",
            "NPM_CONFIG_FUND": "false",
            "NPM_CONFIG_FETCH_RETRIES": "5",
            "CI": "true",
        }
        if self.pm is PackageManager.YARN1:
            env["YARN_PRODUCTION"] = "false"
        if fw.is_astro(ctx, self.root) and not fw.is_astro_spa(ctx, self.root):
            env["HOST"] = "0.0.0.0"
        return env

    def _runtime(self, ctx: GenerateContext) -> str:
        if spa.is_spa(ctx, self.root):
            return spa.spa_name(ctx, self.root) or "static"
        if self.pkg.has_dependency("next"):
            return "next"
        if self.pkg.has_dependency("nuxt"):
            return "nuxt"
        if self.pkg.has_dependency("@remix-run/node"):
            return "remix"
        if fw.is_tanstack(self.root):
            return "tanstack-start"
        if fw.is_vite(ctx, self.root):
            return "vite"
        if fw.is_react_router(ctx, self.root):
            return "react-router"
        if fw.is_astro(ctx, self.root):
            return "astro"
        return "bun" if self.pm is PackageManager.BUN else "node"
