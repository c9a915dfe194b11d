"""Go apps: modules, workspaces and cmd/ directories, built into one stripped binary named `out`."""

from __future__ import annotations

from starforge_dag.railpack.context import CommandStepBuilder, GenerateContext, MiseStepBuilder, copy, local_layer, run
from starforge_dag.railpack.plan import Layer, PathCommand
from starforge_dag.railpack.providers.base import BaseProvider

DEFAULT_GO_VERSION = "1.25"
GO_PATH = "/go"
BINARY = "out"
BUILD = f'go build -ldflags="-w -s" -o {BINARY}'


class GoProvider(BaseProvider):
    """Apps with go.mod, go.work or main.go."""

    name = "golang"
    looked_for = "go.mod, go.work or main.go"

    def detect(self, ctx: GenerateContext) -> bool:
        """A Go module, workspace or main file at the root."""
        return ctx.source.has_file("go.mod") or ctx.source.has_file("go.work") or ctx.source.has_file("main.go")

    def start_command_help(self) -> str:
        """What Railpack builds."""
        return (
            "Railpack builds main.go at the root, or the first command under cmd/ (RAILPACK_GO_BIN picks one); "
            "in a workspace RAILPACK_GO_WORKSPACE_MODULE picks the module to build."
        )

    def plan(self, ctx: GenerateContext) -> None:
        """mise (go), install (module downloads), build, the binary deployed."""
        mise = ctx.mise
        cgo = _cgo(ctx)
        if cgo:
            mise.apt_packages += ["gcc", "g++", "libc6-dev"]
        self._install_mise_packages(ctx, mise)

        install = ctx.new_command_step("install")
        install.add_input(Layer(step=mise.name))
        self._install(ctx, install)

        build = ctx.new_command_step("build")
        build.add_input(Layer(step=install.name))
        self._build(ctx, build)

        ctx.deploy.start_command = f"./{BINARY}"
        if cgo:
            ctx.info("CGO is enabled")
            ctx.deploy.apt_packages.append("libc6")
        ctx.deploy.inputs.append(Layer(step=build.name, include=["."]))
        ctx.set_metadata("goMod", ctx.source.has_file("go.mod"))
        ctx.set_metadata("goWorkspace", ctx.source.has_file("go.work"))
        ctx.set_metadata("goRootFile", _has_root_go_files(ctx))
        ctx.set_metadata("goGin", "github.com/gin-gonic/gin" in (ctx.source.read_text("go.mod") or ""))
        ctx.set_metadata("goCGO", cgo)

    def _install_mise_packages(self, ctx: GenerateContext, mise: MiseStepBuilder) -> None:
        go = mise.default("go", DEFAULT_GO_VERSION)
        if mod_version := _go_mod_version(ctx):
            mise.version(go, mod_version, "go.mod")
        if env_version := ctx.env.railpack("GO_VERSION"):
            mise.version(go, env_version, "RAILPACK_GO_VERSION")
        mise.use_mise_versions(["go"])

    def _install(self, ctx: GenerateContext, install: CommandStepBuilder) -> None:
        source = ctx.source
        install.variables.update({"GOPATH": GO_PATH, "GOBIN": f"{GO_PATH}/bin"})
        install.add(PathCommand(path=f"{GO_PATH}/bin"))
        is_mod, is_work = source.has_file("go.mod"), source.has_file("go.work")
        if not (is_mod or is_work):
            return
        install.add_cache(_build_cache(ctx))
        if is_mod:
            install.add(copy("go.mod"))
            if source.has_file("go.sum"):
                install.add(copy("go.sum"))
        if is_work:
            install.add(copy("go.work"))
            if source.has_file("go.work.sum"):
                install.add(copy("go.work.sum"))
        for module in _workspace_modules(ctx):
            install.add(copy(f"{module}/go.mod"))
            if source.has_file(f"{module}/go.sum"):
                install.add(copy(f"{module}/go.sum"))
        install.add(run("go mod download"))
        if not _cgo(ctx):
            install.variables["CGO_ENABLED"] = "0"

    def _build(self, ctx: GenerateContext, build: CommandStepBuilder) -> None:
        command = _build_command(ctx)
        build.add_input(local_layer())
        if command:
            build.add_cache(_build_cache(ctx))
            build.add(run(command))


def _build_command(ctx: GenerateContext) -> str:
    """RAILPACK_GO_WORKSPACE_MODULE, RAILPACK_GO_BIN, the root package, cmd/<first>, a workspace main, main.go."""
    source = ctx.source
    if module := ctx.env.railpack("GO_WORKSPACE_MODULE"):
        return f"{BUILD} ./{module}"
    if binary := ctx.env.railpack("GO_BIN"):
        return f"{BUILD} ./cmd/{binary}"
    is_mod = source.has_file("go.mod")
    if is_mod and _has_root_go_files(ctx):
        return BUILD
    if commands := source.find_dirs("cmd/*"):
        return f"{BUILD} ./cmd/{commands[0].rsplit('/', 1)[-1]}"
    if is_mod:
        return BUILD
    if source.has_file("go.work"):
        for module in _workspace_modules(ctx):
            if source.has_file(f"{module}/main.go"):
                return f"{BUILD} ./{module}"
        return ""
    if source.has_file("main.go"):
        return f"{BUILD} main.go"
    return ""


def _cgo(ctx: GenerateContext) -> bool:
    return ctx.env.get("CGO_ENABLED") == "1"


def _build_cache(ctx: GenerateContext) -> str:
    return ctx.caches.add("go-build", "/root/.cache/go-build")


def _go_mod_version(ctx: GenerateContext) -> str:
    """The `go 1.22` directive of go.mod."""
    for line in (ctx.source.read_text("go.mod") or "").split("\n"):
        if line.strip().startswith("go ") and (version := line.removeprefix("go").strip()):
            return version
    return ""


def _has_root_go_files(ctx: GenerateContext) -> bool:
    return bool(ctx.source.find_files("*.go", max_depth=0))


def _workspace_modules(ctx: GenerateContext) -> list[str]:
    """Directories below the root holding a go.mod."""
    return [f.rsplit("/", 1)[0] for f in ctx.source.find_files("**/go.mod") if f != "go.mod"]
