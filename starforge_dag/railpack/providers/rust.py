"""Rust apps: dependencies compiled against a stub main, release binaries copied to bin/, workspaces and WASI."""

from __future__ import annotations

import re
from typing import Any

from starforge_dag.railpack.context import CommandStepBuilder, GenerateContext, MiseStepBuilder, copy, local_layer, run
from starforge_dag.railpack.plan import FileCommand, Layer
from starforge_dag.railpack.providers.base import BaseProvider
from starforge_dag.railpack.semver import extract_semver

DEFAULT_RUST_VERSION = "1.89"
STUB_SOURCE = "fn main() { }"
# The oldest toolchain of each edition's era, for manifests that name only an edition.
EDITION_VERSIONS = {"2015": "1.30.0", "2018": "1.55.0", "2021": "1.84.0", "2024": "1.85.1"}
_WASI_TARGET = re.compile(r'target\s*=\s*"wasm32-wasi"')


class RustProvider(BaseProvider):
    """Apps with a Cargo.toml."""

    name = "rust"
    looked_for = "Cargo.toml"

    def detect(self, ctx: GenerateContext) -> bool:
        """A Cargo.toml at the root."""
        return ctx.source.has_file("Cargo.toml")

    def start_command_help(self) -> str:
        """How the binary is chosen."""
        return (
            "Railpack builds the release binaries (src/main.rs, src/bin/*) and starts ./bin/<name>; with several "
            "binaries set RAILPACK_RUST_BIN or default-run, in a workspace RAILPACK_CARGO_WORKSPACE."
        )

    def plan(self, ctx: GenerateContext) -> None:
        """mise (rust), install (dependencies only), build, the app without target/ deployed."""
        mise = ctx.mise
        self._install_mise_packages(ctx, mise)

        install = ctx.new_command_step("install")
        install.add_input(Layer(step=mise.name))
        self._install(ctx, install)

        build = ctx.new_command_step("build")
        build.add_input(Layer(step=mise.name))
        build.add_input(Layer(step=install.name, exclude=["/app/"]))
        self._build(ctx, build)

        ctx.deploy.variables["ROCKET_ADDRESS"] = "0.0.0.0"
        ctx.deploy.inputs.append(Layer(step=build.name, include=["."], exclude=["target"]))
        ctx.deploy.start_command = self._start_command(ctx)

    def _install_mise_packages(self, ctx: GenerateContext, mise: MiseStepBuilder) -> None:
        rust = mise.default("rust", DEFAULT_RUST_VERSION)
        package = _package(ctx)
        if version := EDITION_VERSIONS.get(str(package.get("edition", ""))):
            mise.version(rust, version, "Cargo.toml")
        if version := ctx.env.railpack("RUST_VERSION"):
            mise.version(rust, version, "RAILPACK_RUST_VERSION")
        for name in ("rust-version.txt", ".rust-version"):
            text = ctx.source.read_text(name)
            if text is not None and (version := extract_semver(text).strip()):
                mise.version(rust, version, name)
        if isinstance(package.get("rust-version"), str) and (version := extract_semver(package["rust-version"])):
            mise.version(rust, version, "Cargo.toml")
        channel = _toolchain_channel(ctx)
        if channel is not None and (version := extract_semver(channel)):
            mise.version(rust, version, "rust-toolchain.toml")
        mise.use_mise_versions(["rust"])

    def _install(self, ctx: GenerateContext, install: CommandStepBuilder) -> None:
        install.add_cache(ctx.caches.add("cargo_registry", "/root/.cargo/registry"))
        install.add_cache(ctx.caches.add("cargo_git", "/root/.cargo/git"))
        install.add(copy("Cargo.toml*", "."), copy("Cargo.lock*", "."))
        target = _target(ctx)
        target_arg = f" --target {target}" if target else ""
        target_path = f"{target}/" if target else ""
        if target:
            install.add(run(f"rustup target add {target}"))
        # A workspace's members are not copied yet, so its dependencies are compiled in the build step.
        if _workspace_binary(ctx):
            return
        install.assets["main.rs"] = STUB_SOURCE
        lib = (ctx.source.read_toml("Cargo.toml") or {}).get("lib")
        if isinstance(lib, dict) and lib.get("name"):
            install.assets["lib.rs"] = STUB_SOURCE
        install.add(
            run("mkdir -p src"),
            FileCommand(path="src/main.rs", name="main.rs", custom_name="compile dependencies"),
        )
        if "lib.rs" in install.assets:
            install.add(FileCommand(path="src/lib.rs", name="lib.rs"))
        install.add(
            run(f"cargo build --release{target_arg}"),
            run(f"rm -rf src target/{target_path}release/{_app_name(ctx)}*"),
        )

    def _build(self, ctx: GenerateContext, build: CommandStepBuilder) -> None:
        build.add_input(local_layer())
        build.add(run("mkdir -p bin"))
        suffix = _bin_suffix(ctx)
        target = _target(ctx)
        target_arg = f" --target {target}" if target else ""
        target_path = f"{target}/" if target else ""
        if target:
            build.add(run(f"rustup target add {target}"))
        if workspace := _workspace_binary(ctx):
            build.add(
                run(f"cargo build --release --package {workspace}{target_arg}"),
                run(f"cp target/{target_path}release/{workspace}{suffix} bin"),
            )
        elif bins := _bins(ctx):
            build.add(run(f"cargo build --release{target_arg}"))
            build.add(*(run(f"cp target/{target_path}release/{b}{suffix} bin") for b in bins))
        if _app_name(ctx):
            build.add_cache(ctx.caches.add("cargo_target", "target"))

    def _start_command(self, ctx: GenerateContext) -> str:
        if workspace := _workspace_binary(ctx):
            return f"./bin/{workspace}"
        bins = _bins(ctx)
        if not bins:
            return ""
        binary = ""
        if len(bins) == 1:
            binary = bins[0]
        elif wanted := ctx.env.railpack("RUST_BIN"):
            binary = wanted if wanted in bins else ""
            if not binary:
                ctx.warn(f"RAILPACK_RUST_BIN is {wanted!r}, but Cargo.toml has no such binary")
        else:
            default_run = _package(ctx).get("default-run")
            binary = default_run if isinstance(default_run, str) else ""
        return f"./bin/{binary}{_bin_suffix(ctx)}" if binary else ""


def _package(ctx: GenerateContext) -> dict[str, Any]:
    package = (ctx.source.read_toml("Cargo.toml") or {}).get("package")
    return package if isinstance(package, dict) else {}


def _app_name(ctx: GenerateContext) -> str:
    name = _package(ctx).get("name")
    return name if isinstance(name, str) else ""


def _is_wasi(ctx: GenerateContext) -> bool:
    return bool(_WASI_TARGET.search(ctx.source.read_text(".cargo/config.toml") or ""))


def _target(ctx: GenerateContext) -> str:
    return "wasm32-wasi" if _is_wasi(ctx) else ""


def _bin_suffix(ctx: GenerateContext) -> str:
    return ".wasm" if _is_wasi(ctx) else ""


def _bins(ctx: GenerateContext) -> list[str]:
    """The package's binary (when src/main.rs exists) then one per file in src/bin, named without extension."""
    bins = []
    name = _app_name(ctx)
    if name and ctx.source.has_file("src/main.rs"):
        bins.append(name)
    for path in ctx.source.find_files("src/bin/*"):
        filename = path.rsplit("/", 1)[-1]
        if "." in filename:
            bins.append(filename.rsplit(".", 1)[0])
    return bins


def _toolchain_channel(ctx: GenerateContext) -> str | None:
    """rust-toolchain.toml's channel (or its deprecated version), else the plain rust-toolchain file."""
    if ctx.source.has_file("rust-toolchain.toml"):
        data = ctx.source.read_toml("rust-toolchain.toml")
        if data is not None:
            found = data.get("toolchain")
            toolchain: dict[str, Any] = found if isinstance(found, dict) else {}
            channel = str(toolchain.get("channel") or "")
            if version := str(toolchain.get("version") or ""):
                ctx.warn("rust-toolchain.toml's `version` is deprecated; use `channel`")
                channel = channel or version
            return channel
    text = ctx.source.read_text("rust-toolchain")
    return text.strip() if text is not None else None


def _workspace_binary(ctx: GenerateContext) -> str:
    """RAILPACK_CARGO_WORKSPACE, else the first workspace member that builds a binary (default members first)."""
    if name := ctx.env.railpack("CARGO_WORKSPACE"):
        return name
    workspace = (ctx.source.read_toml("Cargo.toml") or {}).get("workspace")
    if not isinstance(workspace, dict) or workspace.get("members") is None:
        return ""
    excluded = _strings(workspace.get("exclude"))
    for members in (_strings(workspace.get("default-members")), _strings(workspace.get("members"))):
        for member in members:
            if member in excluded:
                continue
            dirs = ctx.source.find_dirs(member) if "*" in member or "?" in member else [member]
            for directory in dirs:
                if binary := _member_binary(ctx, directory):
                    return binary
    return ""


def _member_binary(ctx: GenerateContext, member: str) -> str:
    manifest = ctx.source.read_toml(f"{member}/Cargo.toml")
    if manifest is None:
        return ""
    found = manifest.get("package")
    package: dict[str, Any] = found if isinstance(found, dict) else {}
    name = package.get("name") if isinstance(package.get("name"), str) else ""
    if not name:
        return ""
    source = ctx.source
    if source.has_file(f"{member}/src/main.rs") or source.has_match(f"{member}/src/bin") or manifest.get("bin"):
        return name
    return "" if source.has_file(f"{member}/src/lib.rs") else name


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
