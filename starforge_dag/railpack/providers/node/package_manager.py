"""Package managers (npm, pnpm, bun, yarn 1, yarn berry): which one an app uses, and how it installs and prunes."""

from __future__ import annotations

import re
from enum import StrEnum

from starforge_dag.railpack.context import (
    CommandStepBuilder,
    GenerateContext,
    MiseStepBuilder,
    copy,
    local_layer,
    run,
    sh,
)
from starforge_dag.railpack.providers.node.package_json import PackageJson
from starforge_dag.railpack.providers.node.workspace import Workspace
from starforge_dag.railpack.resolver import fuzzy_version

DEFAULT_PNPM_VERSION = "9"
PNPM_HOME = "/opt/pnpm"
PNPM_STORE_DIR = f"{PNPM_HOME}/store"
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


class PackageManager(StrEnum):
    """The package manager of an app, named as Railpack's metadata names it."""

    NPM = "npm"
    PNPM = "pnpm"
    BUN = "bun"
    YARN1 = "yarn1"
    YARN_BERRY = "yarnberry"

    @property
    def tool(self) -> str:
        """The command that runs it (both yarns are `yarn`)."""
        return "yarn" if self in {PackageManager.YARN1, PackageManager.YARN_BERRY} else self.value

    def run_script(self, script: str) -> str:
        """Run a package.json script."""
        return f"{self.tool} run {script}"

    def run_file(self, path: str) -> str:
        """Run a JavaScript file with the app's runtime."""
        return f"bun {path}" if self is PackageManager.BUN else f"node {path}"

    def exec_command(self, cmd: str) -> str:
        """Run a package's binary."""
        return {PackageManager.PNPM: f"pnpm exec {cmd}", PackageManager.BUN: f"bunx {cmd}"}.get(self, f"npx {cmd}")

    def install_cache(self, ctx: GenerateContext) -> str:
        """The cache of downloaded packages, shared by install and prune."""
        caches = ctx.caches
        if self is PackageManager.NPM:
            return caches.add("npm-install", "/root/.npm")
        if self is PackageManager.PNPM:
            return caches.add("pnpm-install", PNPM_STORE_DIR)
        if self is PackageManager.BUN:
            return caches.add("bun-install", "/root/.bun/install/cache")
        if self is PackageManager.YARN1:
            return caches.add("yarn-install", "/usr/local/share/.cache/yarn", locked=True)
        return caches.add("yarn-install", "/app/.yarn/cache")

    def install_folders(self, ctx: GenerateContext) -> list[str]:
        """Where installed packages end up, to copy into the image."""
        if self is not PackageManager.YARN_BERRY:
            return ["/app/node_modules"]
        yarnrc = ctx.source.read_yaml(".yarnrc.yml") if ctx.source.has_file(".yarnrc.yml") else None
        yarnrc = yarnrc if isinstance(yarnrc, dict) else {}
        folders = ["/app/.yarn", str(yarnrc.get("globalFolder") or "/root/.yarn")]
        if (yarnrc.get("nodeLinker") or "pnp") == "node-modules":
            folders.append("/app/node_modules")
        return folders

    def mise_packages(self, ctx: GenerateContext, mise: MiseStepBuilder, pkg: PackageJson) -> None:
        """Request the manager itself, its version from the lockfile, engines or packageManager field."""
        pm_name, pm_version = pkg.package_manager_info()
        engines = pkg.engines
        if self is PackageManager.PNPM:
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
        if self in {PackageManager.YARN1, PackageManager.YARN_BERRY}:
            if self is PackageManager.YARN1:
                mise.add_apt_package("tar")
                mise.add_apt_package("gpg")
            yarn = mise.default("yarn", "1" if self is PackageManager.YARN1 else "2")
            if engines.get("yarn"):
                mise.version(yarn, engines["yarn"], "package.json > engines > yarn")
            if pm_name == "yarn" and pm_version:
                mise.version(yarn, pm_version, "package.json > packageManager")
                mise.skip_mise_install(yarn)
        if self is PackageManager.BUN:
            bun = mise.default("bun", "latest")
            if engines.get("bun"):
                mise.version(bun, engines["bun"], "package.json > engines > bun")
            if pm_name == "bun" and pm_version:
                mise.version(bun, pm_version, "package.json > packageManager")

    def install_dependencies(
        self, ctx: GenerateContext, workspace: Workspace, install: CommandStepBuilder, uses_corepack: bool
    ) -> None:
        """Copy what the install reads (the whole source when scripts or `file:` need it), then install."""
        packages = [wp.pkg for wp in workspace.all]
        lifecycle = any(p.has_script(s) for p in packages for s in ("preinstall", "postinstall", "prepare"))
        if lifecycle or workspace.uses_local_file():
            install.add_input(local_layer())
            install.use_secrets(["*"])
        else:
            install.add(*(copy(f) for f in self.supporting_install_files(ctx, workspace)))
        install.add_cache(self.install_cache(ctx))

        if self is PackageManager.NPM:
            install.add(run(ctx.env.railpack("NODE_NPM_INSTALL") or "npm install"))
        elif self is PackageManager.PNPM:
            install.variables.update({"PNPM_HOME": PNPM_HOME, "PNPM_STORE_DIR": PNPM_STORE_DIR})
            if not uses_corepack:
                requested = ctx.requests.get("pnpm")
                version = fuzzy_version(requested.version) if requested else ""
                install.add_paths(f"{PNPM_HOME}/bin" if _pnpm_bin_subdir(version) else PNPM_HOME)
                install.add(run("pnpm add -g node-gyp"))
            if ctx.source.exists("pnpm-lock.yaml"):
                install.add(run("pnpm install --frozen-lockfile --prefer-offline"))
            else:
                install.add(run("pnpm install"))
        elif self is PackageManager.BUN:
            install.add(run("bun install --frozen-lockfile"))
        elif self is PackageManager.YARN1:
            install.add(run("yarn install --frozen-lockfile"))
        else:
            install.add(run("yarn install --check-cache"))

    def supporting_install_files(self, ctx: GenerateContext, workspace: Workspace) -> list[str]:
        """Manifests, lockfiles and package-manager config at the root and in each workspace package.

        Railpack globs the whole tree for these names; looking only where a package can be keeps
        planning cost independent of the tree's size.
        """
        source = ctx.source
        files: list[str] = []
        for base in ["", *(wp.path for wp in workspace.packages)]:
            for entry in source.list_dir(base):
                if entry.name in INSTALL_NAMES or entry.name.startswith(".pnp."):
                    files.append(f"{base}/{entry.name}" if base else entry.name)
        for pattern in ctx.env.railpack_list("NODE_INSTALL_PATTERNS"):
            files += source.find_files(f"**/{pattern}")
        return sorted(dict.fromkeys(files))

    def prune_deps(self, ctx: GenerateContext, prune: CommandStepBuilder, pkg: PackageJson) -> None:
        """Drop development dependencies (RAILPACK_NODE_PRUNE_CMD replaces the manager's own command)."""
        prune.add_cache(self.install_cache(ctx))
        if custom := ctx.env.railpack("NODE_PRUNE_CMD"):
            prune.add(run(custom))
            return
        _, version = pkg.package_manager_info()
        if self is PackageManager.NPM:
            prune.add(run("npm prune --omit=dev --ignore-scripts"))
        elif self is PackageManager.PNPM:
            old = bool(version) and _semver_lt(version, (8, 15, 6))
            prune.add(run("pnpm prune --prod" if old else "pnpm prune --prod --ignore-scripts"))
        elif self is PackageManager.BUN:
            prune.add(sh("rm -rf node_modules && bun install --production --ignore-scripts"))
        elif self is PackageManager.YARN1:
            prune.add(run("yarn install --production=true"))
        elif version.startswith("3."):
            ctx.warn("Yarn 3 has no prune command; installing again instead")
            prune.add(run("yarn install --check-cache"))
        else:
            prune.add(run("yarn workspaces focus --production --all"))


def package_manager_for(ctx: GenerateContext, pkg: PackageJson) -> PackageManager:
    """The packageManager field, else the lockfile or yarnrc found, else engines; npm when nothing says."""
    name, version = pkg.package_manager_info()
    if pkg.package_manager is not None:
        if name == "yarn" and version:
            return _yarn(version)
        if name in {"pnpm", "npm", "bun"}:
            return PackageManager(name)
        if name:
            ctx.warn(f"Unknown package manager {name!r} in package.json; using npm")
    source = ctx.source
    if source.exists("pnpm-lock.yaml"):
        return PackageManager.PNPM
    if source.exists("bun.lockb") or source.exists("bun.lock"):
        return PackageManager.BUN
    if source.exists(".yarnrc.yml") or source.exists(".yarnrc.yaml"):
        return PackageManager.YARN_BERRY
    if source.exists("yarn.lock"):
        return PackageManager.YARN1
    engines = pkg.engines
    if engines.get("pnpm", "").strip():
        return PackageManager.PNPM
    if engines.get("bun", "").strip():
        return PackageManager.BUN
    if yarn := engines.get("yarn", "").strip():
        return _yarn(yarn)
    return PackageManager.NPM


def _yarn(version: str) -> PackageManager:
    return PackageManager.YARN1 if version.split(".")[0] == "1" else PackageManager.YARN_BERRY


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
