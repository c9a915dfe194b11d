"""Go apps: modules, workspaces and cmd/ directories, built as a static binary named `out`."""

from __future__ import annotations

import re

from starforge_dag.railpack.plan import Cache
from starforge_dag.railpack.providers.base import Context, ProviderPlan, StepLayoutProvider, build_layer, copy, path, sh

DEFAULT_GO_VERSION = "1.23"


class GoProvider(StepLayoutProvider):
    """Apps with go.mod, go.work or main.go."""

    name = "golang"
    looked_for = "go.mod, go.work or main.go"

    def detect_app(self, ctx: Context) -> bool:
        """A Go module, workspace or main file at the root."""
        return ctx.app.has_any("go.mod", "go.work", "main.go")

    def start_command_help(self) -> str:
        """Go's ways to name what to build."""
        return "add a main package at the root or under cmd/, or set RAILPACK_GO_BIN"

    def plan_app(self, ctx: Context) -> ProviderPlan:
        """Download modules, build `out` with stripped symbols, run it."""
        version = ctx.resolve(
            "go", DEFAULT_GO_VERSION, _go_directive(ctx, "go.mod"), _go_directive(ctx, "go.work"), ctx.env_version("go")
        )
        cgo = ctx.env.get("CGO_ENABLED") == "1"
        plan = ProviderPlan(
            packages={"go": version},
            runtime_packages=False,
            variables={"CGO_ENABLED": "1" if cgo else "0", "GOPATH": "/go", "GOBIN": "/go/bin"},
            caches={"go-build": Cache(directory="/root/.cache/go-build")},
            install_caches=["go-build"],
            build_caches=["go-build"],
            deploy_apt=["tzdata"],
        )
        if cgo:
            plan.build_apt += ["gcc", "g++", "libc6-dev"]
            plan.deploy_apt.append("libc6")
        workspace_modules = _workspace_modules(ctx)
        if workspace_modules:
            ctx.metadata["workspace"] = "true"
            plan.install_needs_source = True
            plan.install = [path("/go/bin"), sh("go mod download")]
        elif ctx.app.has_file("go.mod"):
            plan.install = [
                path("/go/bin"),
                *copy(*[f for f in ("go.mod", "go.sum") if ctx.app.has_file(f)]),
                sh("go mod download"),
            ]
        target = _target(ctx, workspace_modules)
        if target is None:
            ctx.warn("no main package found for the Go build")
            target = "."
        ctx.metadata["goTarget"] = target
        build = 'go build -ldflags="-w -s" -o out'
        plan.build = [sh(build if target == "." else f"{build} {target}")]
        plan.start_command = "./out"
        plan.deploy_inputs = [build_layer(".")]
        return plan


def _go_directive(ctx: Context, rel: str) -> tuple[str | None, str]:
    """The `go 1.22` line of go.mod or go.work."""
    match = re.search(r"(?m)^go\s+(\d+\.\d+(?:\.\d+)?)", ctx.app.read_text(rel) or "")
    return (match.group(1) if match else None), rel


def _workspace_modules(ctx: Context) -> list[str]:
    """Module directories named by `use` in go.work."""
    text = ctx.app.read_text("go.work")
    if not text:
        return []
    modules: list[str] = []
    for block in re.findall(r"use\s*\(([^)]*)\)", text):
        modules += block.split()
    modules += re.findall(r"(?m)^use\s+([^\s(]+)", text)
    return [m.strip("./") or "." for m in modules if not m.startswith("//")]


def _has_go_files(ctx: Context, directory: str) -> bool:
    return bool(ctx.app.glob(f"{directory}/*.go" if directory else "*.go"))


def _target(ctx: Context, workspace_modules: list[str]) -> str | None:
    """RAILPACK_GO_WORKSPACE_MODULE, RAILPACK_GO_BIN, the root, the first cmd/ dir, the first workspace main."""
    if module := ctx.env.railpack("GO_WORKSPACE_MODULE"):
        return f"./{module.strip('./')}"
    if binary := ctx.env.railpack("GO_BIN"):
        return f"./cmd/{binary}"
    if ctx.app.has_file("go.mod") and _has_go_files(ctx, ""):
        return "."
    cmd_dirs = [e.name for e in ctx.app.list_dir("cmd") if e.is_dir()]
    if cmd_dirs:
        return f"./cmd/{cmd_dirs[0]}"
    for module in workspace_modules:
        if ctx.app.has_file(f"{module}/main.go"):
            return f"./{module}"
    if ctx.app.has_file("main.go"):
        return "."
    return None
