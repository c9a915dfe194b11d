"""Node.js, Bun and frontend apps: package managers, workspaces, frameworks and static SPAs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starforge_dag.railpack.plan import Cache, Command, FileCommand
from starforge_dag.railpack.providers.base import Context, ProviderPlan, build_layer, copy, loose_version, path, sh

DEFAULT_NODE_VERSION = "22"
DEFAULT_BUN_VERSION = "latest"

RUNTIME_VARIABLES = {
    "NODE_ENV": "production",
    "NPM_CONFIG_PRODUCTION": "false",
    "NPM_CONFIG_UPDATE_NOTIFIER": "false",
    "NPM_CONFIG_FUND": "false",
    "YARN_PRODUCTION": "false",
    "CI": "true",
}

CADDYFILE_PATH = "/Caddyfile"
CADDY_START = f"caddy run --config {CADDYFILE_PATH} --adapter caddyfile 2>&1"

# Framework files the install step needs besides manifests and lockfiles.
INSTALL_EXTRA_FILES = (
    ".npmrc",
    ".yarnrc",
    ".yarnrc.yml",
    ".yarnrc.yaml",
    "pnpm-workspace.yaml",
    ".pnpmfile.cjs",
    "bunfig.toml",
    ".node-version",
    ".nvmrc",
)
INSTALL_EXTRA_DIRS = (".yarn", "patches", "prisma")


@dataclass(frozen=True)
class PackageManager:
    """How one package manager installs, runs scripts and caches."""

    name: str
    lockfiles: tuple[str, ...]
    cache_name: str
    cache_dir: str

    def install(self, has_lock: bool) -> str:
        """The install command, frozen to the lockfile when there is one."""
        if self.name == "npm":
            return "npm ci" if has_lock else "npm install"
        if self.name == "pnpm":
            return "pnpm install --frozen-lockfile --prefer-offline" if has_lock else "pnpm install"
        if self.name == "bun":
            return "bun install --frozen-lockfile" if has_lock else "bun install"
        if self.name == "yarn1":
            return "yarn install --frozen-lockfile" if has_lock else "yarn install"
        return "yarn install --check-cache"

    def run(self, script: str) -> str:
        """Run a package.json script."""
        tool = "yarn" if self.name.startswith("yarn") else self.name
        return f"{tool} run {script}"

    def prune(self) -> str:
        """Drop development dependencies after the build."""
        return {
            "npm": "npm prune --omit=dev --ignore-scripts",
            "pnpm": "pnpm prune --prod --ignore-scripts",
            "bun": "rm -rf node_modules && bun install --production --ignore-scripts",
            "yarn1": "yarn install --production=true --frozen-lockfile --ignore-scripts",
        }.get(self.name, "yarn workspaces focus --production --all")


NPM = PackageManager("npm", ("package-lock.json", "npm-shrinkwrap.json"), "npm-install", "/root/.npm")
PNPM = PackageManager("pnpm", ("pnpm-lock.yaml",), "pnpm-install", "/root/.local/share/pnpm/store/v3")
BUN = PackageManager("bun", ("bun.lockb", "bun.lock"), "bun-install", "/root/.bun/install/cache")
YARN1 = PackageManager("yarn1", ("yarn.lock",), "yarn-install", "/usr/local/share/.cache/yarn")
YARN_BERRY = PackageManager("yarnberry", ("yarn.lock",), "yarn-install", "/app/.yarn/cache")


class NodeProvider:
    """Apps with a package.json."""

    name = "node"

    def detect(self, ctx: Context) -> bool:
        """A package.json at the root."""
        return ctx.app.has_file("package.json")

    def start_command_help(self) -> str:
        """Node's ways to name a start command."""
        return 'add a "start" script to package.json, a "main" entry, or an index.js/index.ts file'

    def plan(self, ctx: Context) -> ProviderPlan:
        """Install with the detected package manager, run the build script, start the app or serve the SPA."""
        pkg = _package_json(ctx)
        scripts: dict[str, str] = pkg.get("scripts") or {}
        pm, pm_version = _package_manager(ctx, pkg)
        ctx.metadata["packageManager"] = pm.name
        plan = ProviderPlan(variables=dict(RUNTIME_VARIABLES), paths=["/app/node_modules/.bin"])

        needs_node = pm.name != "bun" or _bun_needs_node(ctx, pkg, scripts)
        if needs_node:
            plan.packages["node"] = _node_version(ctx, pkg)
        if pm.name == "bun":
            plan.packages["bun"] = ctx.resolve(
                "bun",
                DEFAULT_BUN_VERSION,
                ctx.env_version("bun"),
                ctx.version_file(".bun-version"),
                (_engine(pkg, "bun"), "package.json > engines > bun"),
                ctx.mise_version("bun"),
            )
        elif pm.name != "npm" and pm_version:
            tool = "pnpm" if pm is PNPM else "yarn"
            version = ctx.resolve(tool, pm_version, (pm_version, "package.json"))
            if not pkg.get("packageManager"):
                plan.packages[tool] = version
        if pkg.get("packageManager"):
            ctx.metadata["corepack"] = "true"

        workspaces = _workspace_packages(ctx, pkg)
        if workspaces:
            ctx.metadata["workspaces"] = str(len(workspaces))

        has_lock = any(ctx.app.has_file(lock) for lock in pm.lockfiles)
        plan.caches[pm.cache_name] = Cache(directory=pm.cache_dir)
        plan.caches["node-modules"] = Cache(directory="/app/node_modules/.cache")
        plan.install_caches = [pm.cache_name]
        plan.install = [path("/app/node_modules/.bin"), sh("mkdir -p /app/node_modules/.cache")]
        if pkg.get("packageManager"):
            plan.install.append(sh("npm install -g corepack@latest && corepack enable && corepack prepare --activate"))
        if "preinstall" in scripts or "postinstall" in scripts:
            plan.install_needs_source = True
        else:
            plan.install += _install_copies(ctx, pm, workspaces)
        plan.install.append(sh(pm.install(has_lock)))

        framework = _framework(ctx, pkg, scripts)
        if framework:
            ctx.metadata["framework"] = framework
        plan.build_caches = ["node-modules"]
        for name, directory in _framework_caches(ctx, framework, workspaces).items():
            plan.caches[name] = Cache(directory=directory)
            plan.build_caches.append(name)
        if "build" in scripts:
            plan.build.append(sh(pm.run("build")))
        if ctx.env.is_truthy("PRUNE_DEPS"):
            plan.build.append(sh(ctx.env.railpack("NODE_PRUNE_CMD") or pm.prune()))

        spa_dir = _spa_output_dir(ctx, pkg, scripts, framework)
        if spa_dir is not None:
            ctx.metadata["spa"] = spa_dir
            plan.packages["caddy"] = ctx.resolve("caddy", "latest")
            plan.build_assets["Caddyfile"] = _caddyfile(ctx, spa_dir)
            plan.build.append(FileCommand(path=CADDYFILE_PATH, name="Caddyfile", custom_name="create Caddyfile"))
            plan.start_command = CADDY_START
            plan.deploy_inputs = [build_layer(CADDYFILE_PATH, spa_dir)]
            plan.deploy_variables = {}
            return plan

        plan.start_command = _start_command(ctx, pm, pkg, scripts, framework)
        plan.deploy_inputs = [build_layer("/app/node_modules"), build_layer(".", exclude=["node_modules", ".yarn"])]
        plan.deploy_variables = dict(RUNTIME_VARIABLES)
        return plan


def _package_json(ctx: Context) -> dict[str, Any]:
    data = ctx.app.read_json("package.json")
    if not isinstance(data, dict):
        ctx.warn("package.json is not a valid JSON object; treating it as empty")
        return {}
    return data


def _engine(pkg: dict[str, Any], name: str) -> str | None:
    engines = pkg.get("engines")
    return engines.get(name) if isinstance(engines, dict) else None


def _deps(pkg: dict[str, Any]) -> dict[str, str]:
    deps: dict[str, str] = {}
    for key in ("dependencies", "devDependencies"):
        if isinstance(pkg.get(key), dict):
            deps.update(pkg[key])
    return deps


def _package_manager(ctx: Context, pkg: dict[str, Any]) -> tuple[PackageManager, str | None]:
    """packageManager field, then lockfiles, then engines; npm by default."""
    field = pkg.get("packageManager")
    if isinstance(field, str) and "@" in field:
        name, _, version = field.partition("@")
        version = version.split("+")[0]
        if name == "yarn":
            return (YARN1 if version.startswith("1.") else YARN_BERRY), version
        manager = {"pnpm": PNPM, "bun": BUN, "npm": NPM}.get(name)
        if manager:
            return manager, version
    app = ctx.app
    if app.has_file("pnpm-lock.yaml"):
        return PNPM, None
    if app.has_any("bun.lockb", "bun.lock"):
        return BUN, None
    if app.has_any(".yarnrc.yml", ".yarnrc.yaml"):
        return YARN_BERRY, None
    if app.has_file("yarn.lock"):
        return YARN1, None
    if _engine(pkg, "pnpm"):
        return PNPM, _engine(pkg, "pnpm")
    if _engine(pkg, "bun"):
        return BUN, None
    if yarn := _engine(pkg, "yarn"):
        version = loose_version(yarn) or "1"
        return (YARN1 if version.startswith("1") else YARN_BERRY), yarn
    return NPM, None


def _node_version(ctx: Context, pkg: dict[str, Any]) -> str:
    return ctx.resolve(
        "node",
        DEFAULT_NODE_VERSION,
        ctx.env_version("node"),
        (_mise_spec(_engine(pkg, "node")), "package.json > engines > node"),
        (_mise_spec(ctx.version_file(".nvmrc")[0]), ".nvmrc"),
        (_mise_spec(ctx.version_file(".node-version")[0]), ".node-version"),
        ctx.mise_version("node"),
    )


def _mise_spec(spec: str | None) -> str | None:
    """A version mise can install from an npm-style spec: `v18.19.0` → 18.19.0, `>=20 <23` → 20, `lts/*` → lts."""
    if not spec:
        return None
    spec = spec.strip()
    if spec.startswith("lts/"):
        return "lts"
    if re.fullmatch(r"v?\d+(\.\d+){0,2}", spec):
        return spec.lstrip("v")
    return loose_version(spec)


def _bun_needs_node(ctx: Context, pkg: dict[str, Any], scripts: dict[str, str]) -> bool:
    if pkg.get("packageManager"):
        return True
    if any(re.search(r"\bnode\b", s) for s in scripts.values()):
        return True
    return "astro" in _deps(pkg)


def _workspace_packages(ctx: Context, pkg: dict[str, Any]) -> list[str]:
    """Directories of workspace packages, found by bounded globs of the declared patterns."""
    patterns: list[str] = []
    declared = pkg.get("workspaces")
    if isinstance(declared, list):
        patterns = declared
    elif isinstance(declared, dict) and isinstance(declared.get("packages"), list):
        patterns = declared["packages"]
    pnpm_ws = ctx.app.read_yaml("pnpm-workspace.yaml") if ctx.app.has_file("pnpm-workspace.yaml") else None
    if isinstance(pnpm_ws, dict) and isinstance(pnpm_ws.get("packages"), list):
        patterns = patterns + pnpm_ws["packages"]
    dirs: list[str] = []
    for pattern in patterns:
        if not isinstance(pattern, str) or pattern.startswith("!"):
            continue
        for match in ctx.app.glob(f"{pattern.rstrip('/')}/package.json"):
            dirs.append(match.rsplit("/", 1)[0])
    return sorted(set(dirs))


def _install_copies(ctx: Context, pm: PackageManager, workspaces: list[str]) -> list[Command]:
    """Only the files the install needs, so source edits keep the install layer cached."""
    files = ["package.json"] + [lock for lock in pm.lockfiles if ctx.app.has_file(lock)]
    files += [f for f in INSTALL_EXTRA_FILES if ctx.app.has_file(f)]
    files += [d for d in INSTALL_EXTRA_DIRS if ctx.app.has_dir(d)]
    files += [f"{ws}/package.json" for ws in workspaces]
    for pattern in ctx.env.railpack_list("NODE_INSTALL_PATTERNS"):
        files += ctx.app.glob(f"**/{pattern}")
    return copy(*dict.fromkeys(files))


def _has_config(ctx: Context, stem: str) -> str | None:
    return ctx.app.first_file(*(f"{stem}.{ext}" for ext in ("js", "ts", "mjs", "mts", "cjs")))


def _framework(ctx: Context, pkg: dict[str, Any], scripts: dict[str, str]) -> str | None:
    """The frontend or full-stack framework, most specific first."""
    deps = _deps(pkg)
    build = scripts.get("build", "")
    if "next" in deps or _has_config(ctx, "next.config"):
        return "next"
    if "nuxt" in deps or _has_config(ctx, "nuxt.config"):
        return "nuxt"
    if "@remix-run/node" in deps or "@remix-run/dev" in deps:
        return "remix"
    if "@tanstack/react-start" in deps or "@tanstack/start" in deps or "@tanstack/solid-start" in deps:
        return "tanstack-start"
    if "@sveltejs/kit" in deps:
        return "sveltekit"
    if _has_config(ctx, "astro.config") or "astro" in deps:
        return "astro"
    if ctx.app.has_file("angular.json"):
        return "angular"
    if _has_config(ctx, "react-router.config") or "react-router build" in build:
        return "react-router"
    if "react-scripts" in deps and "react-scripts build" in build:
        return "cra"
    if _has_config(ctx, "vite.config") or "vite build" in build:
        return "vite"
    return None


def _framework_caches(ctx: Context, framework: str | None, workspaces: list[str]) -> dict[str, str]:
    """Build caches of the framework, plus `.next/cache` of every Next.js app in the workspace."""
    caches = {
        "next": {"next": "/app/.next/cache"},
        "remix": {"remix": "/app/.cache"},
        "vite": {"vite": "/app/node_modules/.vite"},
        "tanstack-start": {"vite": "/app/node_modules/.vite"},
        "astro": {"astro": "/app/node_modules/.astro"},
    }.get(framework or "", {})
    for ws in workspaces:
        if _has_config_in(ctx, ws, "next.config"):
            caches[f"next-{ws.replace('/', '-')}"] = f"/app/{ws}/.next/cache"
    return caches


def _has_config_in(ctx: Context, base: str, stem: str) -> bool:
    return any(ctx.app.has_file(f"{base}/{stem}.{ext}") for ext in ("js", "ts", "mjs"))


def _spa_output_dir(ctx: Context, pkg: dict[str, Any], scripts: dict[str, str], framework: str | None) -> str | None:
    """Where a static SPA's build lands, or None when the app is not served as static files."""
    if ctx.env.is_truthy("NO_SPA") or ctx.env.railpack("START_CMD") or ctx.config.deploy.start_command:
        return None
    if framework not in {"vite", "astro", "cra", "angular", "react-router"} or "build" not in scripts:
        return None
    if framework == "astro" and not _astro_is_static(ctx):
        return None
    if framework == "react-router" and not _react_router_is_spa(ctx):
        return None
    if framework == "vite" and "start" in scripts and "vite" not in scripts["start"]:
        return None
    if custom := ctx.env.railpack("SPA_OUTPUT_DIR"):
        return custom.strip("/")
    if framework == "cra":
        return "build"
    if framework == "react-router":
        return "build/client"
    if framework == "angular":
        return _angular_output(ctx)
    if framework == "vite":
        config = _has_config(ctx, "vite.config")
        text = ctx.app.read_text(config) if config else None
        match = re.search(r"outDir\s*:\s*['\"]([^'\"]+)['\"]", text or "")
        if match:
            return match.group(1).strip("./") or "dist"
    return "dist"


def _astro_is_static(ctx: Context) -> bool:
    config = _has_config(ctx, "astro.config")
    text = ctx.app.read_text(config) if config else ""
    return not re.search(r"output\s*:\s*['\"]server['\"]", text or "")


def _react_router_is_spa(ctx: Context) -> bool:
    config = _has_config(ctx, "react-router.config")
    text = ctx.app.read_text(config) if config else ""
    return bool(re.search(r"ssr\s*:\s*false", text or ""))


def _angular_output(ctx: Context) -> str:
    data = ctx.app.read_json("angular.json") or {}
    projects = data.get("projects") or {}
    name = ctx.env.railpack("ANGULAR_PROJECT") or next(iter(projects), "")
    project = projects.get(name) or {}
    options = ((project.get("architect") or {}).get("build") or {}).get("options") or {}
    output = options.get("outputPath")
    if isinstance(output, dict):
        output = output.get("base")
    base = str(output or f"dist/{name}").strip("./")
    return f"{base}/browser"


def _caddyfile(ctx: Context, root: str) -> str:
    return ctx.app.read_text("Caddyfile") or render_static_caddyfile(f"/app/{root}", spa=True)


def render_static_caddyfile(root: str, spa: bool) -> str:
    """A Caddy config that serves `root` on $PORT, falling back to index.html for SPA routes."""
    fallback = "\ttry_files {path} /index.html\n" if spa else ""
    return (
        "{\n\tadmin off\n\tpersist_config off\n\tauto_https off\n}\n\n"
        ":{$PORT:80} {\n"
        f"\troot * {root}\n"
        "\tencode gzip\n"
        f"{fallback}"
        "\tfile_server\n"
        "}\n"
    )


def _start_command(
    ctx: Context, pm: PackageManager, pkg: dict[str, Any], scripts: dict[str, str], framework: str | None
) -> str | None:
    """start script, then framework default, then main, then index.js/index.ts."""
    runner = "bun" if pm is BUN else "node"
    if "start" in scripts:
        return pm.run("start")
    if framework in {"nuxt", "tanstack-start"}:
        return "node .output/server/index.mjs"
    main = pkg.get("main")
    if isinstance(main, str) and main:
        return f"{runner} {main}"
    index = ctx.app.first_file("index.js", "index.ts", "index.mjs", "index.cjs")
    if index:
        return (
            f"{runner} {index}"
            if pm is BUN or not index.endswith(".ts")
            else f"node --experimental-strip-types {index}"
        )
    return None
