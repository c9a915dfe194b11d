"""Node.js and Bun apps: package managers, workspaces, frameworks, and static SPAs served by Caddy."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

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
from starforge_dag.railpack.plan import BuildPlan, ExecCommand, FileCommand, Layer
from starforge_dag.railpack.providers.base import BaseProvider
from starforge_dag.railpack.providers.staticfile import SPA_CADDYFILE, index_fallback
from starforge_dag.railpack.resolver import fuzzy_version

DEFAULT_NODE_VERSION = "lts"
DEFAULT_BUN_VERSION = "latest"
DEFAULT_PNPM_VERSION = "9"
NODE_MODULES_CACHE = "/app/node_modules/.cache"
COREPACK_HOME = "/opt/corepack"
PNPM_HOME = "/opt/pnpm"
PNPM_STORE_DIR = f"{PNPM_HOME}/store"
CADDYFILE_PATH = "/Caddyfile"
MANIFESTS = ("package.json", "package.json5")

NPM, PNPM, BUN, YARN1, YARN_BERRY = "npm", "pnpm", "bun", "yarn1", "yarnberry"

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

# Start scripts that only run a dev server: an app whose start script is one of these can still be an SPA.
DEV_START_COMMANDS = {
    "ng serve",
    "react-scripts start",
    "expo start",
    "next start",
    "react-router-serve ./build/server/index.js",
}
NEXT_CONFIGS = ("next.config.js", "next.config.mjs", "next.config.ts")
INSTALL_NAMES = frozenset(
    {
        "package.json",
        "package.json5",
        "package-lock.json",
        "pnpm-workspace.yaml",
        "yarn.lock",
        "pnpm-lock.yaml",
        "bun.lockb",
        "bun.lock",
        "bunfig.toml",
        ".yarn",
        ".yarnrc.yml",
        ".npmrc",
        ".node-version",
        ".nvmrc",
        "patches",
        ".pnpm-patches",
        "prisma",
    }
)  # and .pnp.*
_BUN_COMMAND = re.compile(r"(^|\s|;|&|&&|\||\|\|)bunx?\s")
_OUT_DIR = re.compile(r"""outDir:\s*['"](.+?)['"]""")
_VITE_CLI_OUT_DIR = re.compile(r"vite\s+build(?:\s+-[^\s]*)*\s+(?:--outDir)\s+([^-\s;]+)")
_RR_SPA = re.compile(r"""(?m)(?:^|[{,])\s*['"]?ssr['"]?\s*:\s*false\b""")
_RR_BUILD_DIR = re.compile(r"""buildDirectory:\s*['"](.+?)['"]""")
_NEXT_DIST_DIR = re.compile(r"""distDir:\s*['"](.+?)['"]""")
_NPM_CI = re.compile(r"(?i)\bnpm\s+ci\b")
_RM_NODE_MODULES = re.compile(r"(?i)\b(?:rm\s+-r[f]?|rmdir|rimraf)\s+(?:\S*/)?node_modules\b")


@dataclass
class PackageJson:
    """The fields of a package manifest that decide a plan."""

    name: str = ""
    scripts: dict[str, str] = field(default_factory=dict)
    package_manager: str | None = None
    dependencies: dict[str, str] = field(default_factory=dict)
    dev_dependencies: dict[str, str] = field(default_factory=dict)
    engines: dict[str, str] = field(default_factory=dict)
    main: str = ""
    workspaces: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, data: Any) -> PackageJson:
        """Read a parsed manifest, ignoring fields of the wrong type."""
        if not isinstance(data, dict):
            return cls()

        def strmap(key: str) -> dict[str, str]:
            value = data.get(key)
            return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

        workspaces = data.get("workspaces")
        if isinstance(workspaces, dict):
            workspaces = workspaces.get("packages")
        pm = data.get("packageManager")
        main = data.get("main")
        return cls(
            name=str(data.get("name") or ""),
            scripts=strmap("scripts"),
            package_manager=pm if isinstance(pm, str) else None,
            dependencies=strmap("dependencies"),
            dev_dependencies=strmap("devDependencies"),
            engines=strmap("engines"),
            main=main if isinstance(main, str) else "",
            workspaces=[w for w in workspaces if isinstance(w, str)] if isinstance(workspaces, list) else [],
        )

    def script(self, name: str) -> str:
        """A script's text, empty when absent."""
        return self.scripts.get(name, "")

    def has_script(self, name: str) -> bool:
        """True when the script exists and is not empty."""
        return bool(self.scripts.get(name))

    def has_dependency(self, name: str) -> bool:
        """A production or development dependency."""
        return name in self.dependencies or name in self.dev_dependencies

    def has_local_dependency(self) -> bool:
        """A `file:` dependency, which needs the whole source at install time."""
        return any(v.startswith("file:") for v in {**self.dependencies, **self.dev_dependencies}.values())

    def package_manager_info(self) -> tuple[str, str]:
        """(name, version) of the packageManager field, without a `+sha` suffix."""
        if not self.package_manager:
            return "", ""
        parts = self.package_manager.strip().split("@")
        if len(parts) != 2:
            return "", ""
        return parts[0].strip(), parts[1].split("+")[0].strip()


@dataclass
class WorkspacePackage:
    """A package of the workspace; the root has the path ''."""

    path: str
    pkg: PackageJson


def find_manifest(ctx: GenerateContext) -> str | None:
    """package.json, else package.json5."""
    return ctx.source.first_file(*MANIFESTS)


class NodeProvider(BaseProvider):
    """Apps with a package.json (or package.json5)."""

    name = "node"
    looked_for = "package.json or package.json5"

    def __init__(self) -> None:
        self.pkg = PackageJson()
        self.pm = NPM
        self.root = WorkspacePackage("", self.pkg)
        self.packages: list[WorkspacePackage] = []

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
        self.root = WorkspacePackage("", self.pkg)
        self.pm = self._package_manager(ctx)
        self.packages = self._workspace_packages(ctx)

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
        spa = self.is_spa(ctx)
        ctx.set_metadata("nodeRuntime", self._runtime(ctx))
        ctx.set_metadata("nodePackageManager", self.pm)
        ctx.set_metadata("nodeIsSPA", spa)
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
        if pruning and not spa:
            prune.variables["NPM_CONFIG_PRODUCTION"] = "true"
            prune.secrets = []
            self._prune(ctx, prune)

        build = ctx.new_command_step("build")
        build.add_input(Layer(step=install.name))
        self._build(ctx, build)

        ctx.deploy.start_command = self._start_command(ctx)
        ctx.deploy.variables.update(self._env_vars(ctx))

        if spa:
            self._deploy_spa(ctx, build)
            return

        if self._is_sveltekit(self.root) and self.pkg.has_dependency("@sveltejs/adapter-auto"):
            build.variables["GCP_BUILDPACKS"] = "true"

        include = ["/root/.cache", "."]
        if self.uses_corepack():
            include += [COREPACK_HOME, "/mise/installs", "/mise/shims"]
        runtime_apt: list[str] = []
        if self._any_dependency("puppeteer"):
            runtime_apt += PUPPETEER_DEPS
        if ctx.env.is_truthy("NODE_PLAYWRIGHT_INSTALL"):
            runtime_apt += PLAYWRIGHT_DEPS
            install.add(ExecCommand(cmd=self._exec("playwright install --only-shell")))
        folders = self._install_folders(ctx)
        modules = step_layer(prune.name if pruning else build.name, include=folders)
        ctx.deploy.apt_packages += runtime_apt
        ctx.deploy.inputs += [
            mise.layer(),
            modules,
            step_layer(build.name, include=include, exclude=["node_modules", ".yarn"]),
        ]

    def cleanse_plan(self, plan: BuildPlan) -> None:
        """A step after install that deletes node_modules cannot have a cache mounted inside it."""
        key = next((k for k, c in plan.caches.items() if c.directory == NODE_MODULES_CACHE), None)
        if key is None:
            return
        for step in plan.steps:
            if step.name == "install":
                continue
            if any(_NPM_CI.search(c) or _RM_NODE_MODULES.search(c) for c in step.exec_commands()):
                step.caches = [c for c in step.caches if c and c != key]

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
        self._prune(ctx, prune)

    def build_node(self, ctx: GenerateContext, build: CommandStepBuilder) -> None:
        """Fill a build step with the build script and framework caches."""
        self._build(ctx, build)

    # ---- package manager --------------------------------------------------------------------------------------

    def _package_manager(self, ctx: GenerateContext) -> str:
        name, version = self.pkg.package_manager_info()
        if self.pkg.package_manager is not None:
            if name == "yarn" and version:
                return YARN1 if version.split(".")[0] == "1" else YARN_BERRY
            if name in {PNPM, NPM, BUN}:
                return name
            if name:
                ctx.warn(f"Unknown package manager {name!r} in package.json; using npm")
        source = ctx.source
        if source.exists("pnpm-lock.yaml"):
            return PNPM
        if source.exists("bun.lockb") or source.exists("bun.lock"):
            return BUN
        if source.exists(".yarnrc.yml") or source.exists(".yarnrc.yaml"):
            return YARN_BERRY
        if source.exists("yarn.lock"):
            return YARN1
        engines = self.pkg.engines
        if engines.get("pnpm", "").strip():
            return PNPM
        if engines.get("bun", "").strip():
            return BUN
        if yarn := engines.get("yarn", "").strip():
            return YARN1 if yarn.split(".")[0] == "1" else YARN_BERRY
        return NPM

    def _tool(self) -> str:
        return "yarn" if self.pm in {YARN1, YARN_BERRY} else self.pm

    def _run(self, script: str) -> str:
        return f"{self._tool()} run {script}"

    def _run_file(self, path: str) -> str:
        return f"bun {path}" if self.pm == BUN else f"node {path}"

    def _exec(self, cmd: str) -> str:
        return {PNPM: f"pnpm exec {cmd}", BUN: f"bunx {cmd}"}.get(self.pm, f"npx {cmd}")

    def uses_corepack(self) -> bool:
        """A packageManager field means corepack installs the manager (bun excepted)."""
        return self.pkg.package_manager is not None and self.pm != BUN

    def _install_cache(self, ctx: GenerateContext) -> str:
        caches = ctx.caches
        if self.pm == NPM:
            return caches.add("npm-install", "/root/.npm")
        if self.pm == PNPM:
            return caches.add("pnpm-install", PNPM_STORE_DIR)
        if self.pm == BUN:
            return caches.add("bun-install", "/root/.bun/install/cache")
        if self.pm == YARN1:
            return caches.add("yarn-install", "/usr/local/share/.cache/yarn", locked=True)
        return caches.add("yarn-install", "/app/.yarn/cache")

    def _install_folders(self, ctx: GenerateContext) -> list[str]:
        if self.pm != YARN_BERRY:
            return ["/app/node_modules"]
        yarnrc = ctx.source.read_yaml(".yarnrc.yml") if ctx.source.has_file(".yarnrc.yml") else None
        yarnrc = yarnrc if isinstance(yarnrc, dict) else {}
        folders = ["/app/.yarn", str(yarnrc.get("globalFolder") or "/root/.yarn")]
        if (yarnrc.get("nodeLinker") or "pnp") == "node-modules":
            folders.append("/app/node_modules")
        return folders

    # ---- mise packages ----------------------------------------------------------------------------------------

    def _requires_node(self, ctx: GenerateContext) -> bool:
        if self.pm != BUN or self.pkg.package_manager is not None:
            return True
        if any("node" in script for script in self.pkg.scripts.values()):
            return True
        return self._is_astro(ctx, self.root) or self._is_vite(ctx, self.root)

    def _requires_bun(self, ctx: GenerateContext) -> bool:
        if self.pm == BUN or any(_BUN_COMMAND.search(s) for s in self.pkg.scripts.values()):
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
        self._package_manager_packages(ctx, mise)
        if self.pm in {PNPM, BUN, YARN1, YARN_BERRY}:
            tools.append("yarn" if self.pm in {YARN1, YARN_BERRY} else self.pm)
        if self.uses_corepack():
            mise.add_setting("node.corepack", True)
        if tools:
            mise.use_mise_versions(tools)

    def _package_manager_packages(self, ctx: GenerateContext, mise: MiseStepBuilder) -> None:
        pm_name, pm_version = self.pkg.package_manager_info()
        engines = self.pkg.engines
        if self.pm == PNPM:
            pnpm = mise.default("pnpm", DEFAULT_PNPM_VERSION)
            lockfile = ctx.source.read_text("pnpm-lock.yaml") if ctx.source.has_file("pnpm-lock.yaml") else None
            if lockfile is not None:
                major = _pnpm_major_from_lockfile(lockfile)
                if major:
                    mise.version(pnpm, major, "pnpm-lock.yaml")
            if engines.get("pnpm"):
                mise.version(pnpm, engines["pnpm"], "package.json > engines > pnpm")
            if pm_name == "pnpm" and pm_version:
                mise.version(pnpm, pm_version, "package.json > packageManager")
                mise.skip_mise_install(pnpm)
        if self.pm in {YARN1, YARN_BERRY}:
            if self.pm == YARN1:
                mise.add_apt_package("tar")
                mise.add_apt_package("gpg")
            yarn = mise.default("yarn", "1" if self.pm == YARN1 else "2")
            if engines.get("yarn"):
                mise.version(yarn, engines["yarn"], "package.json > engines > yarn")
            if pm_name == "yarn" and pm_version:
                mise.version(yarn, pm_version, "package.json > packageManager")
                mise.skip_mise_install(yarn)
        if self.pm == BUN:
            bun = mise.default("bun", "latest")
            if engines.get("bun"):
                mise.version(bun, engines["bun"], "package.json > engines > bun")
            if pm_name == "bun" and pm_version:
                mise.version(bun, pm_version, "package.json > packageManager")

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

        all_pkgs = [self.pkg] + [p.pkg for p in self.packages]
        lifecycle = any(p.has_script(s) for p in all_pkgs for s in ("preinstall", "postinstall", "prepare"))
        if lifecycle or self._uses_local_file(ctx):
            install.add_input(local_layer())
            install.use_secrets(["*"])
        else:
            install.add(*(copy(f) for f in self._supporting_install_files(ctx)))
        install.add_cache(self._install_cache(ctx))

        if self.pm == NPM:
            install.add(run(ctx.env.railpack("NODE_NPM_INSTALL") or "npm install"))
        elif self.pm == PNPM:
            install.variables.update({"PNPM_HOME": PNPM_HOME, "PNPM_STORE_DIR": PNPM_STORE_DIR})
            if not self.uses_corepack():
                requested = ctx.requests.get("pnpm")
                version = fuzzy_version(requested.version) if requested else ""
                install.add_paths(f"{PNPM_HOME}/bin" if _pnpm_bin_subdir(version) else PNPM_HOME)
                install.add(run("pnpm add -g node-gyp"))
            if ctx.source.exists("pnpm-lock.yaml"):
                install.add(run("pnpm install --frozen-lockfile --prefer-offline"))
            else:
                install.add(run("pnpm install"))
        elif self.pm == BUN:
            install.add(run("bun install --frozen-lockfile"))
        elif self.pm == YARN1:
            install.add(run("yarn install --frozen-lockfile"))
        else:
            install.add(run("yarn install --check-cache"))

    def _supporting_install_files(self, ctx: GenerateContext) -> list[str]:
        """Manifests, lockfiles and package-manager config at the root and in each workspace package.

        Railpack globs the whole tree for these names; looking only where a package can be keeps
        planning cost independent of the tree's size.
        """
        source = ctx.source
        files: list[str] = []
        for base in ["", *(wp.path for wp in self.packages)]:
            for entry in source.list_dir(base):
                if entry.name in INSTALL_NAMES or entry.name.startswith(".pnp."):
                    files.append(f"{base}/{entry.name}" if base else entry.name)
        for pattern in ctx.env.railpack_list("NODE_INSTALL_PATTERNS"):
            files += source.find_files(f"**/{pattern}")
        return sorted(dict.fromkeys(files))

    def _uses_local_file(self, ctx: GenerateContext) -> bool:
        return any(wp.pkg.has_local_dependency() for wp in [self.root, *self.packages])

    def _prune(self, ctx: GenerateContext, prune: CommandStepBuilder) -> None:
        prune.add_cache(self._install_cache(ctx))
        if custom := ctx.env.railpack("NODE_PRUNE_CMD"):
            prune.add(run(custom))
            return
        _, version = self.pkg.package_manager_info()
        if self.pm == NPM:
            prune.add(run("npm prune --omit=dev --ignore-scripts"))
        elif self.pm == PNPM:
            old = bool(version) and _semver_lt(version, (8, 15, 6))
            prune.add(run("pnpm prune --prod" if old else "pnpm prune --prod --ignore-scripts"))
        elif self.pm == BUN:
            prune.add(sh("rm -rf node_modules && bun install --production --ignore-scripts"))
        elif self.pm == YARN1:
            prune.add(run("yarn install --production=true"))
        elif version.startswith("3."):
            ctx.warn("Yarn 3 has no prune command; installing again instead")
            prune.add(run("yarn install --check-cache"))
        else:
            prune.add(run("yarn workspaces focus --production --all"))

    # ---- build ------------------------------------------------------------------------------------------------

    def _build(self, ctx: GenerateContext, build: CommandStepBuilder) -> None:
        build.add_input(local_layer())
        if self.pkg.has_script("build"):
            build.add(run(self._run("build")))
            if self.pkg.has_dependency("next"):
                build.variables["NEXT_TELEMETRY_DISABLED"] = "1"
        elif nx := self._nx_deploy_package(ctx):
            build.add(run(f"nx build {nx[1]}"))
            build.variables["NEXT_TELEMETRY_DISABLED"] = "1"
        build.add_cache(ctx.caches.add("node-modules", NODE_MODULES_CACHE))
        checks = (
            ("next", lambda p: "next build" in p.pkg.script("build") or self._is_next_app(ctx, p), ".next/cache"),
            ("remix", lambda p: p.pkg.has_dependency("@remix-run/node"), ".cache"),
            ("vite", lambda p: self._is_vite(ctx, p), "node_modules/.vite"),
            ("tanstack-start", lambda p: self._is_tanstack(p), "node_modules/.vite"),
            ("astro", lambda p: self._is_astro(ctx, p), "node_modules/.astro"),
            ("react-router", lambda p: self._is_react_router(ctx, p), ".react-router"),
        )
        for framework, check, sub in checks:
            for wp in [self.root, *self.packages]:
                if check(wp):
                    name = framework if not wp.path else f"{framework}-{wp.path.rstrip('/').replace('/', '-')}"
                    directory = "/".join(p for p in ("/app", wp.path, sub) if p)
                    build.add_cache(ctx.caches.add(name, directory))

    # ---- start ------------------------------------------------------------------------------------------------

    def _start_command(self, ctx: GenerateContext) -> str:
        if self.pkg.has_script("start"):
            return self._run("start")
        if self.pkg.main:
            return self._run_file(self.pkg.main)
        index = ctx.source.find_files("{index.js,index.ts}", max_depth=0)
        if index:
            return self._run_file(index[0])
        if self.pkg.has_dependency("nuxt"):
            return "node .output/server/index.mjs"
        if self._is_tanstack(self.root):
            ctx.info("No start script found; using srvx as the production server")
            return self._exec("srvx --prod -s ../client dist/server/server.js")
        if self._is_sveltekit(self.root) and self.pkg.has_dependency("@sveltejs/adapter-auto"):
            return "node build"
        if nx := self._nx_deploy_package(ctx):
            wp = nx[0]
            if self._is_next_app(ctx, wp):
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
        if self.pm == YARN1:
            env["YARN_PRODUCTION"] = "false"
        if self._is_astro(ctx, self.root) and not self._is_astro_spa(ctx):
            env["HOST"] = "0.0.0.0"
        return env

    # ---- SPA --------------------------------------------------------------------------------------------------

    def _has_custom_start(self, ctx: GenerateContext) -> bool:
        start = ctx.config.deploy.start_command or self.pkg.scripts.get("start", "")
        return bool(start) and start not in DEV_START_COMMANDS

    def is_spa(self, ctx: GenerateContext) -> bool:
        """Served as static files by Caddy rather than run by Node."""
        if ctx.env.is_truthy("NO_SPA"):
            return False
        if ctx.env.railpack("SPA_OUTPUT_DIR"):
            return True
        if self._has_custom_start(ctx):
            return False
        if self._is_react_router(ctx, self.root):
            return self._is_react_router_spa(ctx) and bool(self._output_dir(ctx))
        kinds = (
            self._is_vite(ctx, self.root),
            self._is_astro_spa(ctx),
            self._is_next_spa(ctx),
            self._is_cra(),
            self._is_angular(ctx),
            self._is_expo_spa(ctx),
        )
        return any(kinds) and bool(self._output_dir(ctx))

    def _spa_name(self, ctx: GenerateContext) -> str:
        if self._is_react_router(ctx, self.root):
            return "react-router" if self._is_react_router_spa(ctx) else ""
        for name, check in (
            ("vite", lambda: self._is_vite(ctx, self.root)),
            ("astro", lambda: self._is_astro(ctx, self.root)),
            ("next", lambda: self._is_next_spa(ctx)),
            ("cra", self._is_cra),
            ("angular", lambda: self._is_angular(ctx)),
            ("expo", lambda: self._is_expo_spa(ctx)),
        ):
            if check():
                return name
        return ""

    def _output_dir(self, ctx: GenerateContext) -> str:
        if custom := ctx.env.railpack("SPA_OUTPUT_DIR"):
            return custom
        if self._is_react_router(ctx, self.root):
            if not self._is_react_router_spa(ctx):
                return ""
            match = _RR_BUILD_DIR.search(self._read_first(ctx, "react-router.config.js", "react-router.config.ts"))
            return match.group(1) if match else "build/client/"
        if self._is_vite(ctx, self.root):
            match = _OUT_DIR.search(self._read_first(ctx, "vite.config.js", "vite.config.ts"))
            if match:
                return match.group(1)
            match = _VITE_CLI_OUT_DIR.search(self.pkg.script("build"))
            return match.group(1) if match else "dist"
        if self._is_astro_spa(ctx):
            match = _OUT_DIR.search(self._read_first(ctx, "astro.config.mjs", "astro.config.ts"))
            return match.group(1) if match else "dist"
        if self._is_next_spa(ctx):
            match = _NEXT_DIST_DIR.search(self._read_first(ctx, *NEXT_CONFIGS))
            return match.group(1) if match else "out"
        if self._is_cra():
            return "build"
        if self._is_angular(ctx):
            return self._angular_output(ctx)
        if self._is_expo_spa(ctx):
            return "dist"
        return ""

    def _deploy_spa(self, ctx: GenerateContext, build: CommandStepBuilder) -> None:
        output = self._output_dir(ctx)
        ctx.info(f"Deploying as {self._spa_name(ctx) or 'static'} static site from {output}")
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

    # ---- frameworks -------------------------------------------------------------------------------------------

    def _read_first(self, ctx: GenerateContext, *names: str) -> str:
        found = ctx.source.read_first(*names)
        return found[1] if found else ""

    def _in(self, wp: WorkspacePackage, name: str) -> str:
        return f"{wp.path}/{name}" if wp.path else name

    def _runtime(self, ctx: GenerateContext) -> str:
        if self.is_spa(ctx):
            return self._spa_name(ctx) or "static"
        if self.pkg.has_dependency("next"):
            return "next"
        if self.pkg.has_dependency("nuxt"):
            return "nuxt"
        if self.pkg.has_dependency("@remix-run/node"):
            return "remix"
        if self._is_tanstack(self.root):
            return "tanstack-start"
        if self._is_vite(ctx, self.root):
            return "vite"
        if self._is_react_router(ctx, self.root):
            return "react-router"
        if self._is_astro(ctx, self.root):
            return "astro"
        return "bun" if self.pm == BUN else "node"

    def _is_sveltekit(self, wp: WorkspacePackage) -> bool:
        return wp.pkg.has_dependency("svelte") and wp.pkg.has_dependency("@sveltejs/kit")

    def _is_tanstack(self, wp: WorkspacePackage) -> bool:
        return "@tanstack/react-start" in wp.pkg.dependencies

    def _is_vite(self, ctx: GenerateContext, wp: WorkspacePackage) -> bool:
        if self._is_sveltekit(wp) or self._is_tanstack(wp):
            return False
        has_config = ctx.source.has_file(self._in(wp, "vite.config.js")) or ctx.source.has_file(
            self._in(wp, "vite.config.ts")
        )
        vite_build = "vite build" in wp.pkg.script("build").lower()
        return wp.pkg.has_dependency("vite") and wp.pkg.has_script("build") and (vite_build or has_config)

    def _is_astro(self, ctx: GenerateContext, wp: WorkspacePackage) -> bool:
        has_config = ctx.source.has_file(self._in(wp, "astro.config.mjs")) or ctx.source.has_file(
            self._in(wp, "astro.config.ts")
        )
        return has_config and "astro build" in wp.pkg.script("build").lower()

    def _is_astro_spa(self, ctx: GenerateContext) -> bool:
        if not self._is_astro(ctx, self.root):
            return False
        server = "output: 'server'" in self._read_first(ctx, "astro.config.mjs", "astro.config.ts")
        adapters = ("@astrojs/node", "@astrojs/vercel", "@astrojs/cloudflare", "@astrojs/netlify")
        return not server and not any(self.pkg.has_dependency(a) for a in adapters)

    def _is_next_spa(self, ctx: GenerateContext) -> bool:
        if not self.pkg.has_dependency("next"):
            return False
        text = self._read_first(ctx, *NEXT_CONFIGS)
        return "output: 'export'" in text or 'output: "export"' in text

    def _is_cra(self) -> bool:
        return self.pkg.has_dependency("react-scripts") and "react-scripts build" in self.pkg.script("build").lower()

    def _is_angular(self, ctx: GenerateContext) -> bool:
        return (
            self.pkg.has_dependency("@angular/core")
            and ctx.source.has_file("angular.json")
            and "ng build" in self.pkg.script("build").lower()
        )

    def _angular_output(self, ctx: GenerateContext) -> str:
        data = ctx.source.read_json("angular.json")
        projects = data.get("projects") if isinstance(data, dict) else None
        if not isinstance(projects, dict):
            return ""
        wanted = ctx.env.railpack("ANGULAR_PROJECT")
        for name, project in projects.items():
            if wanted and wanted != name:
                continue
            build = ((project or {}).get("architect") or {}).get("build") or {}
            options = build.get("options") or {}
            output = str(options.get("outputPath") or "")
            if build.get("builder") == "@angular-devkit/build-angular:application" or options.get("browser"):
                return f"{output}/browser" if output else "browser"
            return output
        return ""

    def _is_expo_spa(self, ctx: GenerateContext) -> bool:
        if not (self.pkg.has_dependency("expo") and self.pkg.has_dependency("react-native-web")):
            return False
        data = ctx.source.read_json("app.json") if ctx.source.has_file("app.json") else None
        web = ((data or {}).get("expo") or {}).get("web") or {} if isinstance(data, dict) else {}
        return str(web.get("output", "")).lower() in {"static", "single"}

    def _is_react_router(self, ctx: GenerateContext, wp: WorkspacePackage) -> bool:
        has_config = ctx.source.has_file(self._in(wp, "react-router.config.js")) or ctx.source.has_file(
            self._in(wp, "react-router.config.ts")
        )
        rr_build = "react-router build" in wp.pkg.script("build").lower()
        return wp.pkg.has_script("build") and (has_config or rr_build or wp.pkg.has_dependency("@react-router/dev"))

    def _is_react_router_spa(self, ctx: GenerateContext) -> bool:
        text = self._read_first(ctx, "react-router.config.js", "react-router.config.ts")
        return bool(_RR_SPA.search(text))

    def _is_next_app(self, ctx: GenerateContext, wp: WorkspacePackage) -> bool:
        if any(ctx.source.has_file(self._in(wp, name)) for name in NEXT_CONFIGS):
            return True
        if not wp.pkg.has_dependency("next"):
            return False
        return "next build" in wp.pkg.script("build") or wp.path != ""

    def _nx_deploy_package(self, ctx: GenerateContext) -> tuple[WorkspacePackage, str] | None:
        if not ctx.source.has_file("nx.json") or not self._any_dependency("nx"):
            return None
        apps = [wp for wp in [self.root, *self.packages] if self._is_next_app(ctx, wp)]
        if not apps:
            return None

        def project(wp: WorkspacePackage) -> str:
            return wp.pkg.name or (wp.path.rsplit("/", 1)[-1] if wp.path else "")

        if selector := ctx.env.railpack("NX_APP"):
            for wp in apps:
                base = wp.path.rsplit("/", 1)[-1] if wp.path else ""
                if selector in {wp.pkg.name, wp.path, base} or wp.pkg.name.rsplit("/", 1)[-1] == selector:
                    return wp, project(wp)
            ctx.warn(f"RAILPACK_NX_APP={selector} did not match any Next.js app package")
            return None
        if len(apps) == 1:
            return apps[0], project(apps[0])
        names = ", ".join(project(wp) for wp in apps)
        ctx.warn(f"Multiple Next.js apps found in the Nx workspace ({names}); set RAILPACK_NX_APP to choose one.")
        return None

    # ---- workspace --------------------------------------------------------------------------------------------

    def _workspace_packages(self, ctx: GenerateContext) -> list[WorkspacePackage]:
        patterns = list(self.pkg.workspaces)
        if ctx.source.has_file("pnpm-workspace.yaml"):
            data = ctx.source.read_yaml("pnpm-workspace.yaml")
            pnpm = data.get("packages") if isinstance(data, dict) else None
            if isinstance(pnpm, list) and pnpm:
                patterns = [p for p in pnpm if isinstance(p, str)]
        found: list[WorkspacePackage] = []
        for pattern in patterns:
            if pattern.endswith("/*"):
                glob = pattern[:-1] + "*/package.json"
            elif pattern.endswith("/**"):
                glob = pattern[:-2] + "**/package.json"
            else:
                glob = pattern.rstrip("/") + "/package.json"
            for match in ctx.source.find_files(glob):
                data = ctx.source.read_json(match)
                if data is not None:
                    found.append(WorkspacePackage(match.rsplit("/", 1)[0], PackageJson.parse(data)))
        return found

    def _any_dependency(self, name: str) -> bool:
        return any(wp.pkg.has_dependency(name) for wp in [self.root, *self.packages])


def _pnpm_major_from_lockfile(text: str) -> str | None:
    """The pnpm major a lockfile's version implies."""
    for prefix, major in (
        ("lockfileVersion: 5.3", "6"),
        ("lockfileVersion: 5.4", "7"),
        ("lockfileVersion: '6.0'", "8"),
        ("lockfileVersion: 6.0", "8"),
        ("lockfileVersion: '6.1'", "8"),
        ("lockfileVersion: '9.0'", "9"),
        ("lockfileVersion: 9.0", "9"),
    ):
        if text.startswith(prefix):
            return major
    return None


def _semver(version: str) -> tuple[int, int, int] | None:
    match = re.fullmatch(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:[-+].*)?", version.strip())
    if not match:
        return None
    return int(match.group(1)), int(match.group(2) or 0), int(match.group(3) or 0)


def _semver_lt(version: str, other: tuple[int, int, int]) -> bool:
    parsed = _semver(version)
    return parsed is not None and parsed < other


def _pnpm_bin_subdir(version: str) -> bool:
    """pnpm 11 and later keep global binaries in PNPM_HOME/bin."""
    version = version.strip()
    if version == "latest":
        return True
    parsed = _semver(version)
    return parsed is not None and parsed >= (11, 0, 0)
