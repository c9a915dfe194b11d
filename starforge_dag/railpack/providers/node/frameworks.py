"""Frameworks the Node provider recognises (Railpack's vite, astro, next, cra, angular, expo, react-router, svelte and tanstack files)."""

from __future__ import annotations

import re

from starforge_dag.railpack.context import GenerateContext
from starforge_dag.railpack.providers.node.package_json import PackageJson
from starforge_dag.railpack.providers.node.workspace import WorkspacePackage

NEXT_CONFIGS = ("next.config.js", "next.config.mjs", "next.config.ts")
ASTRO_CONFIGS = ("astro.config.mjs", "astro.config.ts")
VITE_CONFIGS = ("vite.config.js", "vite.config.ts")
REACT_ROUTER_CONFIGS = ("react-router.config.js", "react-router.config.ts")
_OUT_DIR = re.compile(r"""outDir:\s*['"](.+?)['"]""")
_VITE_CLI_OUT_DIR = re.compile(r"vite\s+build(?:\s+-[^\s]*)*\s+(?:--outDir)\s+([^-\s;]+)")
_RR_SPA = re.compile(r"""(?m)(?:^|[{,])\s*['"]?ssr['"]?\s*:\s*false\b""")
_RR_BUILD_DIR = re.compile(r"""buildDirectory:\s*['"](.+?)['"]""")
_NEXT_DIST_DIR = re.compile(r"""distDir:\s*['"](.+?)['"]""")


def read_first(ctx: GenerateContext, *names: str) -> str:
    """The text of the first of `names` that exists, empty when none does."""
    found = ctx.source.read_first(*names)
    return found[1] if found else ""


def _has_any(ctx: GenerateContext, wp: WorkspacePackage, names: tuple[str, ...]) -> bool:
    return any(ctx.source.has_file(f"{wp.path}/{name}" if wp.path else name) for name in names)


# ---- svelte, tanstack -----------------------------------------------------------------------------------------


def is_sveltekit(wp: WorkspacePackage) -> bool:
    """SvelteKit: svelte with @sveltejs/kit."""
    return wp.pkg.has_dependency("svelte") and wp.pkg.has_dependency("@sveltejs/kit")


def is_tanstack(wp: WorkspacePackage) -> bool:
    """TanStack Start."""
    return "@tanstack/react-start" in wp.pkg.dependencies


# ---- vite -----------------------------------------------------------------------------------------------------


def is_vite(ctx: GenerateContext, wp: WorkspacePackage) -> bool:
    """Vite builds it (and it is not SvelteKit or TanStack Start, which use Vite underneath)."""
    if is_sveltekit(wp) or is_tanstack(wp):
        return False
    vite_build = "vite build" in wp.pkg.script("build").lower()
    return (
        wp.pkg.has_dependency("vite") and wp.pkg.has_script("build") and (vite_build or _has_any(ctx, wp, VITE_CONFIGS))
    )


def vite_output_dir(ctx: GenerateContext, pkg: PackageJson) -> str:
    """outDir of the Vite config, else --outDir of the build script, else dist."""
    match = _OUT_DIR.search(read_first(ctx, *VITE_CONFIGS))
    if match:
        return match.group(1)
    match = _VITE_CLI_OUT_DIR.search(pkg.script("build"))
    return match.group(1) if match else "dist"


# ---- astro ----------------------------------------------------------------------------------------------------


def is_astro(ctx: GenerateContext, wp: WorkspacePackage) -> bool:
    """An Astro config and an `astro build` script."""
    return _has_any(ctx, wp, ASTRO_CONFIGS) and "astro build" in wp.pkg.script("build").lower()


def is_astro_spa(ctx: GenerateContext, root: WorkspacePackage) -> bool:
    """Astro without server output or a server adapter: static files."""
    if not is_astro(ctx, root):
        return False
    server = "output: 'server'" in read_first(ctx, *ASTRO_CONFIGS)
    adapters = ("@astrojs/node", "@astrojs/vercel", "@astrojs/cloudflare", "@astrojs/netlify")
    return not server and not any(root.pkg.has_dependency(a) for a in adapters)


def astro_output_dir(ctx: GenerateContext) -> str:
    """outDir of the Astro config, else dist."""
    match = _OUT_DIR.search(read_first(ctx, *ASTRO_CONFIGS))
    return match.group(1) if match else "dist"


# ---- next -----------------------------------------------------------------------------------------------------


def is_next_spa(ctx: GenerateContext, pkg: PackageJson) -> bool:
    """Next.js with `output: 'export'`."""
    if not pkg.has_dependency("next"):
        return False
    text = read_first(ctx, *NEXT_CONFIGS)
    return "output: 'export'" in text or 'output: "export"' in text


def next_output_dir(ctx: GenerateContext) -> str:
    """distDir of the Next config, else out."""
    match = _NEXT_DIST_DIR.search(read_first(ctx, *NEXT_CONFIGS))
    return match.group(1) if match else "out"


def is_next_app(ctx: GenerateContext, wp: WorkspacePackage) -> bool:
    """A Next.js app package: a Next config, or next with a `next build` script (any package below the root)."""
    if _has_any(ctx, wp, NEXT_CONFIGS):
        return True
    if not wp.pkg.has_dependency("next"):
        return False
    return "next build" in wp.pkg.script("build") or wp.path != ""


# ---- create-react-app -----------------------------------------------------------------------------------------


def is_cra(pkg: PackageJson) -> bool:
    """Create React App: react-scripts builds it."""
    return pkg.has_dependency("react-scripts") and "react-scripts build" in pkg.script("build").lower()


# ---- angular --------------------------------------------------------------------------------------------------


def is_angular(ctx: GenerateContext, pkg: PackageJson) -> bool:
    """Angular with angular.json and an `ng build` script."""
    return (
        pkg.has_dependency("@angular/core")
        and ctx.source.has_file("angular.json")
        and "ng build" in pkg.script("build").lower()
    )


def angular_output_dir(ctx: GenerateContext) -> str:
    """The outputPath of the chosen project (RAILPACK_ANGULAR_PROJECT, else the first), `/browser` for the application builder."""
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


# ---- expo -----------------------------------------------------------------------------------------------------


def is_expo_spa(ctx: GenerateContext, pkg: PackageJson) -> bool:
    """Expo for the web with static or single output."""
    if not (pkg.has_dependency("expo") and pkg.has_dependency("react-native-web")):
        return False
    data = ctx.source.read_json("app.json") if ctx.source.has_file("app.json") else None
    web = ((data or {}).get("expo") or {}).get("web") or {} if isinstance(data, dict) else {}
    return str(web.get("output", "")).lower() in {"static", "single"}


# ---- react router ---------------------------------------------------------------------------------------------


def is_react_router(ctx: GenerateContext, wp: WorkspacePackage) -> bool:
    """React Router (framework mode): its config, its build command or @react-router/dev."""
    rr_build = "react-router build" in wp.pkg.script("build").lower()
    return wp.pkg.has_script("build") and (
        _has_any(ctx, wp, REACT_ROUTER_CONFIGS) or rr_build or wp.pkg.has_dependency("@react-router/dev")
    )


def is_react_router_spa(ctx: GenerateContext) -> bool:
    """React Router with `ssr: false`."""
    return bool(_RR_SPA.search(read_first(ctx, *REACT_ROUTER_CONFIGS)))


def react_router_output_dir(ctx: GenerateContext) -> str:
    """buildDirectory of the React Router config, else build/client/."""
    match = _RR_BUILD_DIR.search(read_first(ctx, *REACT_ROUTER_CONFIGS))
    return match.group(1) if match else "build/client/"
